"""A fake Philips Hue bridge (API v1) over real HTTP, for tests and for trying without hardware.

It serves what phue and thermalcount use: pairing (``POST /api`` with or without the link
button), ``GET /api/<key>`` and its ``config``, ``lights`` and ``groups``, and ``PUT``
``lights/<id>/state`` and ``groups/<id>/action``. Like a real bridge it answers errors as
JSON arrays with HTTP 200 (1 unauthorized user, 2 invalid JSON, 3 resource not available,
4 method not available, 6 parameter not available, 101 link button not pressed).

Every accepted state change is recorded in :attr:`FakeHueBridge.history` as
``Change(time, kind, id, state)`` (``time`` from ``time.monotonic()``, ``kind`` ``"light"`` or
``"group"``, ``state`` e.g. ``{"on": True}``), so tests assert on what reached the bridge.

Faults, each optionally for ``seconds`` (else until :meth:`heal`):
``go_down`` (stops listening: connection refused), ``hang`` (accepts, never answers, drops
the connection when the hang ends), ``fail`` (error arrays), ``garbage`` (non-JSON bodies),
``drip`` (a correct answer, one byte every ``interval`` seconds: no socket timeout ever
fires) and ``revoke(key)`` (unauthorized from then on).

    with FakeHueBridge(lights={"1": "Hall"}) as bridge:
        key = bridge.create_key()          # as if paired
        ...talk to bridge.host ("127.0.0.1:PORT") with phue...
        assert bridge.history[-1].state == {"on": True}

Standalone: ``python -m thermalcount.testing.fake_hue --port 8000``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Union

DEFAULT_LIGHTS = {"1": "Hall", "2": "Desk", "3": "Porch"}
DEFAULT_GROUPS = {"1": ("Living room", ["1", "2"])}
_SETTABLE = {"on", "bri", "hue", "sat", "xy", "ct", "alert", "effect", "transitiontime"}


class Change(NamedTuple):
    time: float  # time.monotonic() when the bridge accepted it
    kind: str  # "light" or "group"
    id: str
    state: dict  # what was set, without transitiontime, e.g. {"on": True}


def _error(error_type: int, address: str, description: str) -> list:
    return [{"error": {"type": error_type, "address": address, "description": description}}]


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeHue/1.0"
    protocol_version = "HTTP/1.0"  # one request per connection, as phue does anyway

    def log_message(self, format, *args):  # keep test output and the user's terminal clean
        pass

    def _handle(self, method: str) -> None:
        bridge: FakeHueBridge = self.server.bridge
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        bridge._record(method, self.path)
        mode = bridge._fault()
        if mode == "hang":
            bridge._hold()
            self.close_connection = True
            return  # no answer at all: the client sees a timeout or a dropped connection
        if mode == "garbage":
            self._send(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
            return
        payload = bridge._dispatch(method, self.path, body)
        if mode == "drip":
            self._drip(bridge, json.dumps(payload).encode())
            return
        self._send(200, json.dumps(payload).encode(), "application/json")

    def _drip(self, bridge: "FakeHueBridge", data: bytes) -> None:
        """The whole answer, status line included, a byte at a time until the drip ends."""
        answer = (f"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(data)}\r\n\r\n").encode() + data
        self.close_connection = True
        try:
            for index in range(len(answer)):
                if not bridge._drip_wait():
                    self.wfile.write(answer[index:])  # healed: the rest at once
                    break
                self.wfile.write(answer[index:index + 1])
                self.wfile.flush()
        except OSError:
            pass  # the client gave up

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (e.g. timed out): nothing to do

    def do_GET(self):
        self._handle("GET")

    def do_PUT(self):
        self._handle("PUT")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeHueBridge:
    """A Hue bridge on ``127.0.0.1`` (random port unless ``port`` is given). A context manager.

    ``lights``: ``{"id": "name"}`` or a list of names (ids 1..n). ``groups``:
    ``{"id": ("name", ["light ids"])}``. ``link_button=True`` keeps the button pressed.
    ``on_change(change)`` is called for every accepted state change.
    """

    def __init__(
        self,
        lights: Union[Dict[str, str], Iterable[str], None] = None,
        groups: Optional[Dict[str, tuple]] = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        link_button: bool = False,
        on_change: Optional[Callable[[Change], None]] = None,
    ):
        if lights is None:
            lights = DEFAULT_LIGHTS
        if not isinstance(lights, dict):
            lights = {str(i): name for i, name in enumerate(lights, start=1)}
        if groups is None:
            groups = {gid: g for gid, g in DEFAULT_GROUPS.items() if set(g[1]) <= set(lights)}
        self._lock = threading.Lock()
        self._fault_changed = threading.Condition(self._lock)
        self.lights = {
            str(lid): {
                "state": {"on": False, "bri": 254, "alert": "none", "mode": "homeautomation", "reachable": True},
                "type": "Dimmable light", "name": name, "modelid": "LWB014",
                "manufacturername": "Signify Netherlands B.V.",
                "uniqueid": f"00:17:88:01:03:c2:b6:{int(lid) % 256:02x}-0b" if str(lid).isdigit() else str(lid),
                "swversion": "1.0",
            }
            for lid, name in lights.items()
        }
        self.groups = {
            str(gid): {"name": name, "lights": [str(x) for x in members], "type": "Room",
                       "class": "Living room", "action": {"on": False, "bri": 254}, "recycle": False}
            for gid, (name, members) in groups.items()
        }
        self.keys: set = set()
        self.history: List[Change] = []
        # Every request that reached the bridge, faults included: (time, method, path), the
        # key in the path shown as <key>.
        self.requests: List[tuple] = []
        self.on_change = on_change
        self._host, self._port = host, port
        self._button_until = float("inf") if link_button else 0.0
        self._fault_mode: Optional[str] = None
        self._fault_until = float("inf")
        self._fault_error = (901, "Internal error, 404")
        self._drip_interval = 5.0
        self._stopping = False
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._up_timer: Optional[threading.Timer] = None

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> "FakeHueBridge":
        self._listen()
        return self

    def _listen(self) -> None:
        server = _Server((self._host, self._port), _Handler)
        server.bridge = self
        self._port = server.server_address[1]  # keep the port so it can come back on it
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-hue", daemon=True)
        self._thread.start()

    def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._fault_changed.notify_all()
        if self._up_timer is not None:
            self._up_timer.cancel()
        self._unlisten()

    def __enter__(self) -> "FakeHueBridge":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: what to give ``--bridge``."""
        return f"{self._host}:{self._port}"

    # --- pairing and keys --------------------------------------------------------------------

    def create_key(self, key: Optional[str] = None) -> str:
        """Authorise a key, as if it had been paired. Returns it."""
        key = key or secrets.token_hex(20)
        with self._lock:
            self.keys.add(key)
        return key

    def revoke(self, key: str) -> None:
        """Forget a key: every request with it gets error 1 (unauthorized user)."""
        with self._lock:
            self.keys.discard(key)

    def press_link_button(self, seconds: float = 30.0) -> None:
        """Pairing works for the next ``seconds``, like the real round button."""
        with self._lock:
            self._button_until = time.monotonic() + seconds

    # --- faults ------------------------------------------------------------------------------

    def _set_fault(self, mode: Optional[str], seconds: Optional[float]) -> None:
        with self._lock:
            self._fault_mode = mode
            self._fault_until = float("inf") if seconds is None else time.monotonic() + seconds
            self._fault_changed.notify_all()

    def go_down(self, seconds: Optional[float] = None) -> None:
        """Stop listening (clients get connection refused); back after ``seconds`` if given."""
        self._unlisten()
        if seconds is not None:
            self._up_timer = threading.Timer(seconds, self.come_up)
            self._up_timer.daemon = True
            self._up_timer.start()

    def come_up(self) -> None:
        """Listen again on the same port."""
        with self._lock:
            if self._stopping or self._server is not None:
                return
        self._listen()

    def hang(self, seconds: Optional[float] = None) -> None:
        """Accept requests but never answer them; held ones are dropped when the hang ends."""
        self._set_fault("hang", seconds)

    def fail(self, error_type: int = 901, description: str = "Internal error, 404",
             seconds: Optional[float] = None) -> None:
        """Answer every authorised request with an error array of ``error_type``."""
        with self._lock:
            self._fault_error = (error_type, description)
        self._set_fault("fail", seconds)

    def drip(self, interval: float = 5.0, seconds: Optional[float] = None) -> None:
        """Answer every request correctly but one byte every ``interval`` seconds."""
        with self._lock:
            self._drip_interval = interval
        self._set_fault("drip", seconds)

    def _drip_wait(self) -> bool:
        """Wait one drip interval; False once the drip ended (healed, expired or stopping)."""
        with self._fault_changed:
            until = time.monotonic() + self._drip_interval
            while not self._stopping and self._fault_mode == "drip" and time.monotonic() < self._fault_until:
                remaining = until - time.monotonic()
                if remaining <= 0:
                    return True
                self._fault_changed.wait(remaining)
            return False

    def garbage(self, seconds: Optional[float] = None) -> None:
        """Answer every request with an HTML page (HTTP 502), as a confused proxy would."""
        self._set_fault("garbage", seconds)

    def heal(self) -> None:
        """End every fault (and come back up if down). Revoked keys stay revoked."""
        self._set_fault(None, None)
        if self._up_timer is not None:
            self._up_timer.cancel()
        self.come_up()

    def _record(self, method: str, raw_path: str) -> None:
        parts = [p for p in raw_path.split("?")[0].split("/") if p]
        with self._lock:
            shown = "/".join("<key>" if i == 1 and p in self.keys else p for i, p in enumerate(parts))
            self.requests.append((time.monotonic(), method, "/" + shown))

    def _fault(self) -> Optional[str]:
        with self._lock:
            if self._fault_mode is not None and time.monotonic() >= self._fault_until:
                self._fault_mode = None
            return self._fault_mode

    def _hold(self) -> None:
        with self._fault_changed:
            while not self._stopping and self._fault_mode == "hang":
                remaining = self._fault_until - time.monotonic()
                if remaining <= 0:
                    self._fault_mode = None
                    break
                self._fault_changed.wait(min(remaining, 1.0))

    # --- inspection and manual switching -------------------------------------------------------

    def is_on(self, light_id: str) -> bool:
        with self._lock:
            return self.lights[str(light_id)]["state"]["on"]

    def switch_by_hand(self, light_id: str, on: bool) -> None:
        """Change a light as a wall switch or app would (not recorded in ``history``)."""
        with self._lock:
            self.lights[str(light_id)]["state"]["on"] = bool(on)

    def changes(self, kind: Optional[str] = None) -> List[Change]:
        with self._lock:
            return [c for c in self.history if kind is None or c.kind == kind]

    # --- the API -------------------------------------------------------------------------------

    def _group_view(self, gid: str, group: dict) -> dict:
        members = [self.lights[m]["state"]["on"] for m in group["lights"] if m in self.lights]
        return {**group, "state": {"all_on": bool(members) and all(members), "any_on": any(members)}}

    def _all_lights_group(self) -> dict:
        return {"name": "Lightset 0", "lights": list(self.lights), "type": "LightGroup",
                "action": {"on": False, "bri": 254}}

    def _dispatch(self, method: str, raw_path: str, body: bytes):
        parts = [p for p in raw_path.split("?")[0].split("/") if p]
        now = time.monotonic()
        if not parts or parts[0] != "api":
            return _error(4, raw_path, f"method, {method}, not available for resource, {raw_path}")
        if len(parts) == 1:
            if method != "POST":
                return _error(4, "/", f"method, {method}, not available for resource, /")
            return self._register(body)
        key, rest = parts[1], parts[2:]
        address = "/" + "/".join(rest)
        with self._lock:
            if key not in self.keys:
                return _error(1, address, "unauthorized user")
            if self._fault_mode == "fail":
                return _error(self._fault_error[0], address, self._fault_error[1])
            if method == "GET":
                return self._get(rest, address)
            if method == "PUT":
                return self._put(rest, address, body, now)
        return _error(4, address, f"method, {method}, not available for resource, {address}")

    def _register(self, body: bytes):
        try:
            request = json.loads(body or b"null")
        except ValueError:
            return _error(2, "", "body contains invalid json")
        if not isinstance(request, dict) or not isinstance(request.get("devicetype"), str):
            return _error(5, "/", "invalid/missing parameters in body")
        with self._lock:
            if time.monotonic() > self._button_until:
                return _error(101, "", "link button not pressed")
            key = secrets.token_hex(20)
            self.keys.add(key)
        return [{"success": {"username": key}}]

    def _get(self, rest: List[str], address: str):
        groups = {gid: self._group_view(gid, g) for gid, g in self.groups.items()}
        if not rest:
            return {"lights": self.lights, "groups": groups, "config": self._config()}
        if rest == ["config"]:
            return self._config()
        if rest == ["lights"]:
            return self.lights
        if rest == ["groups"]:
            return groups
        if len(rest) == 2 and rest[0] == "lights" and rest[1] in self.lights:
            return self.lights[rest[1]]
        if len(rest) == 2 and rest[0] == "groups" and rest[1] == "0":
            return self._group_view("0", self._all_lights_group())
        if len(rest) == 2 and rest[0] == "groups" and rest[1] in groups:
            return groups[rest[1]]
        return _error(3, address, f"resource, {address}, not available")

    def _config(self) -> dict:
        return {"name": "Fake Hue", "apiversion": "1.50.0", "swversion": "1950207110",
                "modelid": "BSB002", "bridgeid": "001788FFFE000000"}

    def _put(self, rest: List[str], address: str, body: bytes, now: float):
        if len(rest) == 3 and rest[0] == "lights" and rest[2] == "state":
            kind, oid = "light", rest[1]
            if oid not in self.lights:
                return _error(3, "/" + "/".join(rest[:2]), f"resource, /lights/{oid}, not available")
            members = [oid]
        elif len(rest) == 3 and rest[0] == "groups" and rest[2] == "action":
            kind, oid = "group", rest[1]
            if oid == "0":
                members = list(self.lights)
            elif oid in self.groups:
                members = self.groups[oid]["lights"]
            else:
                return _error(3, "/" + "/".join(rest[:2]), f"resource, /groups/{oid}, not available")
        else:
            return _error(4, address, f"method, PUT, not available for resource, {address}")
        try:
            request = json.loads(body or b"null")
        except ValueError:
            return _error(2, address, "body contains invalid json")
        if not isinstance(request, dict):
            return _error(2, address, "body contains invalid json")
        answers, accepted = [], {}
        for name, value in request.items():
            if name not in _SETTABLE:
                answers += _error(6, f"{address}/{name}", f"parameter, {name}, not available")
                continue
            answers.append({"success": {f"{address}/{name}": value}})
            if name != "transitiontime":
                accepted[name] = value
        for member in members:
            if member in self.lights:
                self.lights[member]["state"].update({k: v for k, v in accepted.items() if k in ("on", "bri")})
        if kind == "group" and oid in self.groups:
            self.groups[oid]["action"].update({k: v for k, v in accepted.items() if k in ("on", "bri")})
        if accepted:
            change = Change(now, kind, oid, accepted)
            self.history.append(change)
            if self.on_change is not None:
                self.on_change(change)
        return answers


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m thermalcount.testing.fake_hue",
        description="Run a fake Hue bridge to try thermalcount's Hue path without hardware.",
    )
    parser.add_argument("--port", type=int, default=8000, help="TCP port on 127.0.0.1 (default 8000; 0 = any)")
    parser.add_argument("--lights", default=",".join(DEFAULT_LIGHTS.values()),
                        help="comma-separated light names (ids 1..n); default Hall,Desk,Porch")
    parser.add_argument("--button-pressed", action="store_true",
                        help="keep the link button pressed, so pairing works at once")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.lights.split(",") if n.strip()]

    def show(change: Change) -> None:
        print(f"{time.strftime('%H:%M:%S')} {change.kind} {change.id} -> {json.dumps(change.state)}", flush=True)

    bridge = FakeHueBridge(names, port=args.port, link_button=args.button_pressed, on_change=show)
    try:
        bridge.start()
    except OSError as error:
        sys.exit(f"Error: cannot listen on 127.0.0.1:{args.port} ({error.strerror}); try another --port")
    print(f"Fake Hue bridge at {bridge.host} with lights {', '.join(names)}.", flush=True)
    print(f"Pair with: thermalcount hue pair --bridge {bridge.host}", flush=True)
    if not args.button_pressed:
        print("Press Enter here to press the link button (it stays pressed 30 s). Ctrl-C stops.", flush=True)
    try:
        while True:
            line = sys.stdin.readline()
            if not line:  # no terminal: just serve
                while True:
                    time.sleep(3600)
            bridge.press_link_button(30.0)
            print("Link button pressed (30 s).", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        bridge.stop()


if __name__ == "__main__":
    main()
