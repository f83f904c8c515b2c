"""The Hue back-end with the real phue client against the fake bridge over real HTTP."""

from __future__ import annotations

import logging
import os
import stat
import threading

import pytest

from thermalcount import config
from thermalcount.errors import LightsError
from thermalcount.lights import open_lights
from thermalcount.lights.hue import list_bridge, normalize_host, pair
from thermalcount.testing import FakeHueBridge


@pytest.fixture
def bridge():
    with FakeHueBridge(["Hall", "Desk", "Porch", "Desk lamp"], {"1": ("Living room", ["1", "2"])}) as fake:
        yield fake


@pytest.fixture
def paired(bridge):
    key = bridge.create_key()
    config.save_hue_key(bridge.host, key)
    return bridge, key


def open_hue(bridge, **kw):
    kw.setdefault("check_interval", None)
    return open_lights("hue", bridge=bridge.host, **kw)


def settle(lights, timeout=5.0):
    assert lights.wait_in_sync(timeout), lights.status()


@pytest.mark.slow
def test_pair_waits_for_the_button_then_stores_the_key_0600(bridge):
    waits = []
    threading.Timer(1.2, bridge.press_link_button).start()
    path = pair(bridge.host, timeout=10, interval=0.2, on_wait=waits.append)
    assert waits and waits[0] > waits[-1]  # a countdown while the button was not pressed
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key = config.hue_key(bridge.host)
    assert key in bridge.keys
    assert config.paired_bridge() == bridge.host
    assert not (config.config_dir().parent / ".python_hue").exists()
    assert not os.path.exists(os.path.join(os.environ["HOME"], ".python_hue"))


@pytest.mark.slow
def test_pair_gives_up_with_one_line(bridge):
    with pytest.raises(LightsError, match="link button .* was not pressed within 1 s"):
        pair(bridge.host, timeout=1, interval=0.2)
    bridge.go_down()
    with pytest.raises(LightsError, match="cannot reach the Hue bridge .* connection refused"):
        pair(bridge.host, timeout=1)
    assert not config.credentials_path().exists()


def test_list_bridge(paired):
    bridge, _ = paired
    bridge.switch_by_hand("2", True)
    inventory = list_bridge(bridge.host)
    assert [(l.id, l.name, l.on, l.reachable) for l in inventory.lights] == [
        ("1", "Hall", False, True), ("2", "Desk", True, True), ("3", "Porch", False, True),
        ("4", "Desk lamp", False, True)]
    assert [(g.id, g.name, g.any_on, g.all_on, g.lights) for g in inventory.groups] == [
        ("1", "Living room", True, False, ("1", "2"))]


def test_switching_sends_only_changes(paired):
    bridge, _ = paired
    reported = []
    with open_hue(bridge, lights=["Hall", "2"], on_status=reported.append) as lights:
        for _ in range(20):
            lights.set_on(True)
        settle(lights)
        assert bridge.is_on("1") and bridge.is_on("2") and not bridge.is_on("3")
        for _ in range(20):
            lights.set_on(False)
        settle(lights)
        status = lights.status()
    assert [(c.id, c.state) for c in bridge.history] == [
        ("1", {"on": True}), ("2", {"on": True}), ("1", {"on": False}), ("2", {"on": False})]
    assert status.commands_sent == 4 and status.applied is False and status.error is None
    assert "Hall" in status.target and "Desk" in status.target
    assert [r.commands_sent for r in reported] == [1, 2, 3, 4]  # the worker reports each command
    assert reported[1].applied is True and reported[3].applied is False


def test_coalescing_skips_intermediate_states(paired):
    bridge, _ = paired
    with open_hue(bridge, group="Living room") as lights:
        lights.set_on(True)  # group commands are spaced 1 s: the flips below land while waiting
        for _ in range(10):
            lights.set_on(False)
            lights.set_on(True)
        lights.set_on(False)
        settle(lights)
    states = [c.state["on"] for c in bridge.changes("group")]
    assert states[-1] is False
    assert len(states) <= 2  # at most the first "on" and the final "off", nothing between


@pytest.mark.slow
def test_rate_limits_seen_in_the_bridge_history(paired):
    bridge, _ = paired
    with open_hue(bridge, lights=["1", "2", "3", "4"], group="0") as lights:
        for value in (True, False, True):
            lights.set_on(value)
            settle(lights, timeout=10)
    light_times = [c.time for c in bridge.changes("light")]
    group_times = [c.time for c in bridge.changes("group")]
    assert len(light_times) == 12 and len(group_times) == 3
    assert min(b - a for a, b in zip(light_times, light_times[1:])) >= 0.095
    assert min(b - a for a, b in zip(group_times, group_times[1:])) >= 0.95


def test_names_resolve_by_id_name_and_case(paired):
    bridge, _ = paired
    with open_hue(bridge, lights=["porch", "4", "Hall"]) as lights:
        lights.set_on(True)
        settle(lights)
    assert sorted(c.id for c in bridge.history) == ["1", "3", "4"]
    assert all("False" not in path for _, _, path in bridge.requests)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"lights": ["Kitchen"]}, "no light named or numbered 'Kitchen' .* available: Hall \\(1\\), Desk \\(2\\)"),
        ({"group": "Attic"}, "no group named or numbered 'Attic' .* available: Living room \\(1\\)"),
        ({"lights": ["desk LAMP", "Nope"]}, "'Nope'"),
    ],
)
def test_unknown_names_on_a_reachable_bridge_are_setup_errors(paired, options, message):
    bridge, _ = paired
    with pytest.raises(LightsError, match=message) as caught:
        open_hue(bridge, **options)
    assert "\n" not in str(caught.value)
    assert bridge.history == []
    assert all(method == "GET" for _, method, _ in bridge.requests)


def test_unpaired_and_unchosen(bridge):
    with pytest.raises(LightsError, match="no Hue bridge configured: run thermalcount hue pair"):
        open_lights("hue", lights=["Hall"])
    with pytest.raises(LightsError, match=f"not paired: run thermalcount hue pair --bridge {bridge.host}"):
        open_hue(bridge, lights=["Hall"])
    config.save_hue_key(bridge.host, bridge.create_key())
    with pytest.raises(LightsError, match="no lights chosen"):
        open_hue(bridge)


def test_revoked_key_at_start_is_a_setup_error(paired):
    bridge, key = paired
    bridge.revoke(key)
    with pytest.raises(LightsError, match="rejected the stored key .* hue pair"):
        open_hue(bridge, lights=["Hall"])


def test_defaults_from_config_and_environment_key(bridge, monkeypatch):
    key = bridge.create_key()
    monkeypatch.setenv("THERMALCOUNT_HUE_KEY", key)
    path = config.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[hue]\nbridge = "http://{bridge.host}/"\nlights = ["Desk"]\n')
    with open_lights("hue", check_interval=None) as lights:
        lights.set_on(True)
        settle(lights)
    assert [(c.id, c.state) for c in bridge.history] == [("2", {"on": True})]


@pytest.mark.parametrize("text", ["http://10.0.0.2", "10.0.0.2/", "http://10.0.0.2/api"])
def test_host_prefix_is_stripped(text):
    assert normalize_host(text) == "10.0.0.2"


@pytest.mark.parametrize("text, message", [("https://10.0.0.2", "plain HTTP"), ("10.0.0.2:99999", "not an address"),
                                           ("my bridge", "not an address"), ("", "not an address")])
def test_bad_hosts(text, message):
    with pytest.raises(LightsError, match=message):
        normalize_host(text)


def test_key_never_printed_or_logged(bridge, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    bridge.press_link_button()
    pair(bridge.host)
    key = config.hue_key(bridge.host)
    list_bridge(bridge.host)
    with open_hue(bridge, lights=["Hall"]) as lights:
        lights.set_on(True)
        settle(lights)
        bridge.go_down()
        lights.set_on(False)
        bridge.come_up()
        settle(lights)
    bridge.revoke(key)
    with pytest.raises(LightsError) as caught:
        list_bridge(bridge.host)
    out, err = capsys.readouterr()
    assert "phue" in caplog.text  # phue's debug lines were captured (redacted), so the check means something
    for text in (caplog.text, out, err, str(caught.value)):
        assert key not in text
