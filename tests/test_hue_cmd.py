"""`thermalcount hue pair` and `thermalcount hue lights` through the CLI."""

from __future__ import annotations

import os
import stat
import threading

import pytest
from click.testing import CliRunner

from thermalcount import config
from thermalcount.cli import cli
from thermalcount.testing import FakeHueBridge


@pytest.fixture
def bridge():
    with FakeHueBridge({"1": "Hall", "2": "Desk"}) as fake:
        yield fake


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_pair_then_list(bridge):
    threading.Timer(0.5, bridge.press_link_button).start()
    result = invoke("hue", "pair", "--bridge", f"http://{bridge.host}", "--wait", "10")
    assert result.exit_code == 0, result.output
    assert "Press the round link button" in result.output and "s left" in result.output
    key = config.hue_key(bridge.host)
    assert key and key not in result.output
    assert stat.S_IMODE(os.stat(config.credentials_path()).st_mode) == 0o600

    bridge.switch_by_hand("2", True)
    listed = invoke("hue", "lights")  # the paired bridge is the default
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[1:] == [
        "light\t1\tHall\toff\tyes\tDimmable light",
        "light\t2\tDesk\ton\tyes\tDimmable light",
        "group\t1\tLiving room\tsome\t1,2\tRoom",
    ]
    assert key not in listed.output


@pytest.mark.slow
def test_pair_without_button_is_one_line_error(bridge):
    result = invoke("hue", "pair", "--bridge", bridge.host, "--wait", "1")
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: the link button") and "run this command again" in last
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["hue", "lights"], "no Hue bridge configured: run thermalcount hue pair"),
        (["hue", "lights", "--bridge", "127.0.0.1:9"], "not paired: run thermalcount hue pair --bridge 127.0.0.1:9"),
        (["hue", "pair", "--bridge", "https://bridge"], "plain HTTP"),
        (["hue", "pair", "--bridge", "127.0.0.1:1", "--wait", "1"], "cannot reach the Hue bridge at 127.0.0.1:1"),
    ],
)
def test_setup_errors(args, message):
    result = invoke(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) <= 2  # the prompt line, if any, and one error


def test_revoked_key_when_listing(bridge):
    key = bridge.create_key()
    config.save_hue_key(bridge.host, key)
    bridge.revoke(key)
    result = invoke("hue", "lights", "--bridge", bridge.host)
    assert result.exit_code == 1
    assert "rejected the stored key" in result.output and key not in result.output


def test_help():
    for args in (["hue", "--help"], ["hue", "pair", "--help"], ["hue", "lights", "--help"]):
        result = invoke(*args)
        assert result.exit_code == 0 and "Example:" in result.output
