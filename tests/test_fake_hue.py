"""The fake bridge itself, spoken to with plain http.client (no phue), and run standalone."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time

import pytest

from thermalcount.testing import FakeHueBridge


def call(bridge, method, path, body=None, timeout=5.0):
    connection = http.client.HTTPConnection(bridge.host, timeout=timeout)
    try:
        connection.request(method, path, None if body is None else json.dumps(body))
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def call_json(bridge, method, path, body=None):
    status, text = call(bridge, method, path, body)
    assert status == 200
    return json.loads(text)


@pytest.fixture
def bridge():
    with FakeHueBridge() as fake:
        yield fake


def test_pairing_needs_the_link_button(bridge):
    answer = call_json(bridge, "POST", "/api", {"devicetype": "test#x"})
    assert answer[0]["error"]["type"] == 101
    bridge.press_link_button(5)
    key = call_json(bridge, "POST", "/api", {"devicetype": "test#x"})[0]["success"]["username"]
    assert key in bridge.keys
    assert "lights" in call_json(bridge, "GET", f"/api/{key}")


def test_shapes_and_errors(bridge):
    key = bridge.create_key()
    lights = call_json(bridge, "GET", f"/api/{key}/lights/")
    assert lights["1"]["name"] == "Hall" and lights["1"]["state"]["on"] is False
    assert call_json(bridge, "GET", f"/api/{key}/groups")["1"]["lights"] == ["1", "2"]
    assert call_json(bridge, "GET", f"/api/{key}/groups/0")["name"] == "Lightset 0"
    # Errors are arrays with HTTP 200, like a real bridge.
    assert call_json(bridge, "GET", "/api/wrong/lights")[0]["error"]["type"] == 1
    missing = call_json(bridge, "PUT", f"/api/{key}/lights/99/state", {"on": True})[0]["error"]
    assert missing == {"type": 3, "address": "/lights/99", "description": "resource, /lights/99, not available"}
    assert call_json(bridge, "PUT", f"/api/{key}/lights/1/state", {"colour": 1})[0]["error"]["type"] == 6
    status, text = call(bridge, "PUT", f"/api/{key}/lights/1/state")
    assert json.loads(text)[0]["error"]["type"] == 2
    assert bridge.history == []


def test_state_changes_are_recorded(bridge):
    key = bridge.create_key()
    ok = call_json(bridge, "PUT", f"/api/{key}/lights/2/state", {"on": True, "transitiontime": 4})
    assert ok == [{"success": {"/lights/2/state/on": True}}, {"success": {"/lights/2/state/transitiontime": 4}}]
    call_json(bridge, "PUT", f"/api/{key}/groups/1/action", {"on": False})
    assert [(c.kind, c.id, c.state) for c in bridge.history] == [
        ("light", "2", {"on": True}), ("group", "1", {"on": False})]
    assert bridge.history[0].time <= bridge.history[1].time
    assert bridge.is_on("2") is False and bridge.is_on("1") is False
    assert any(path == "/api/<key>/groups/1/action" for _, _, path in bridge.requests)


def test_faults(bridge):
    key = bridge.create_key()
    port = bridge.port
    bridge.go_down()
    with pytest.raises(ConnectionRefusedError):
        call(bridge, "GET", f"/api/{key}/lights")
    bridge.come_up()
    assert bridge.port == port and call_json(bridge, "GET", f"/api/{key}/lights")

    bridge.garbage()
    status, text = call(bridge, "GET", f"/api/{key}/lights")
    with pytest.raises(ValueError):
        json.loads(text)
    bridge.fail(901, "Internal error, 404")
    assert call_json(bridge, "GET", f"/api/{key}/lights")[0]["error"]["type"] == 901
    bridge.heal()

    bridge.hang(0.5)
    started = time.monotonic()
    with pytest.raises(http.client.RemoteDisconnected):
        call(bridge, "GET", f"/api/{key}/lights", timeout=5)
    assert time.monotonic() - started >= 0.4  # held until the hang ended, then dropped
    assert call_json(bridge, "GET", f"/api/{key}/lights")

    bridge.revoke(key)
    assert call_json(bridge, "GET", f"/api/{key}/lights")[0]["error"]["type"] == 1


@pytest.mark.slow
def test_timed_down_comes_back_by_itself(bridge):
    key = bridge.create_key()
    bridge.go_down(seconds=0.3)
    with pytest.raises(ConnectionRefusedError):
        call(bridge, "GET", f"/api/{key}/lights")
    time.sleep(0.6)
    assert call_json(bridge, "GET", f"/api/{key}/lights")


def test_standalone_module():
    process = subprocess.Popen(
        [sys.executable, "-m", "thermalcount.testing.fake_hue", "--port", "0", "--lights", "Hall,Stairs"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = process.stdout.readline()
        assert "Fake Hue bridge at 127.0.0.1:" in first and "Stairs" in first
        host = first.split(" at ")[1].split(" ")[0]

        class Remote:
            pass

        remote = Remote()
        remote.host = host
        assert call_json(remote, "POST", "/api", {"devicetype": "t#t"})[0]["error"]["type"] == 101
        process.stdin.write("\n")  # Enter presses the link button
        process.stdin.flush()
        deadline = time.monotonic() + 5
        while True:
            answer = call_json(remote, "POST", "/api", {"devicetype": "t#t"})
            if "success" in answer[0] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert "success" in answer[0]
    finally:
        process.terminate()
        process.communicate(timeout=10)
