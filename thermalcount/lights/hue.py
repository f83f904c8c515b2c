"""Philips Hue through the phue 1.1 client (the only module that imports phue).

What phue does that we work around (see docs/lights.md):

* Its constructor registers and writes ``~/.python_hue`` unless given both ip and username:
  we always pass both (and ``os.devnull`` as its config file), and keep our own key file 0600.
* Every call may block 10 s and raise anything (refused, timeout, JSON or type errors):
  calls happen only in the worker thread or in the one-shot ``hue`` commands.
* API errors come back as arrays with HTTP 200 and are only logged by phue: we inspect every
  answer ourselves.
* It maps unknown light names to ``PUT /lights/False``: we resolve names ourselves and only
  ever pass numeric ids.
* It logs the key (``Using username: ...`` and in request paths): a filter on its logger
  redacts our keys, and drops its warnings, which we report ourselves, once.
* Its 10 s timeout is per socket operation, so a bridge that sends one byte every few
  seconds keeps a request alive for ever and the lights worker never reports the outage:
  :class:`_Bridge` sends phue's requests through a connection with a total deadline.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Optional

import phue

from thermalcount import config
from thermalcount.errors import LightsError
from thermalcount.support.redaction import redact, remember_secret
from thermalcount.lights.base import BridgeRefusal, Target
from thermalcount.lights.worker import WorkerLights

log = logging.getLogger(__name__)

UNAUTHORIZED = 1
RESOURCE_NOT_AVAILABLE = 3
LINK_BUTTON_NOT_PRESSED = 101
#: Seconds a whole request may take (connect, send, every byte of the answer).
REQUEST_DEADLINE = 10.0


class HueApiError(BridgeRefusal):
    """An error object in a Hue v1 answer: ``{"error": {"type", "address", "description"}}``."""

    def __init__(self, error_type, description: str, address: str = ""):
        super().__init__(f"error {error_type}: {description}")
        self.type = error_type
        self.description = description
        self.address = address


# --- keeping the key out of logs -----------------------------------------------------------

# Keys also show up before we know them (the pairing answer) and in every request path.
_KEY_PATTERNS = (
    (re.compile(r"""(['"]username['"]\s*:\s*['"])[^'"]+"""), r"\1***"),
    (re.compile(r"/api/[^/\s'\"]+"), "/api/***"),
    (re.compile(r"(Using username: ).+"), r"\1***"),
)


def _redact(text: str) -> str:
    for pattern, replacement in _KEY_PATTERNS:
        text = pattern.sub(replacement, text)
    return redact(text)  # and every key already read (thermalcount/support/redaction.py)


class _PhueLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return False  # phue's own error lines would repeat per retry; we report once
        record.msg = _redact(record.getMessage())
        record.args = ()
        return True


_phue_logger = logging.getLogger("phue")
if not any(isinstance(f, _PhueLogFilter) for f in _phue_logger.filters):
    _phue_logger.addFilter(_PhueLogFilter())


def _client(host: str, key: str) -> "phue.Bridge":
    remember_secret(key)  # masked in every Error: and log line, not only phue's
    # Both ip and username given: the constructor makes no network call and reads no file.
    return _Bridge(ip=host, username=key, config_file_path=os.devnull)


# --- a total deadline per request ----------------------------------------------------------


class _DeadlineSocket(socket.socket):
    """A socket whose every send and receive gets only the time left until ``deadline``."""

    deadline = float("inf")

    def _arm(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no complete answer within {REQUEST_DEADLINE:g} s")
        self.settimeout(remaining)

    def recv_into(self, *args, **kwargs):  # what the response's makefile() reads with
        self._arm()
        return super().recv_into(*args, **kwargs)

    def sendall(self, *args, **kwargs):
        self._arm()
        return super().sendall(*args, **kwargs)


class _DeadlineConnection(http.client.HTTPConnection):
    """``HTTPConnection`` whose whole exchange must end within ``seconds`` of its creation."""

    def __init__(self, host: str, seconds: float):
        super().__init__(host, timeout=seconds)
        self._deadline = time.monotonic() + seconds

    def connect(self) -> None:
        self.timeout = max(0.001, self._deadline - time.monotonic())
        super().connect()
        plain, self.sock = self.sock, None
        wrapped = _DeadlineSocket(fileno=plain.detach())
        wrapped.deadline = self._deadline
        self.sock = wrapped


class _Bridge(phue.Bridge):
    """phue's Bridge with :meth:`request` on a :class:`_DeadlineConnection`; the rest is phue's."""

    def request(self, mode="GET", address=None, data=None):
        connection = _DeadlineConnection(self.ip, REQUEST_DEADLINE)
        try:
            if mode in ("PUT", "POST"):
                connection.request(mode, address, json.dumps(data))
            else:
                connection.request(mode, address)
            _phue_logger.debug("%s %s %s", mode, address, data)  # as phue logs it (the filter redacts the key)
            response = connection.getresponse().read()
        finally:
            connection.close()
        return json.loads(response.decode("utf-8"))


# --- addresses and answers -----------------------------------------------------------------

_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::(\d{1,5}))?$")


def normalize_host(text: str) -> str:
    """``HOST[:PORT]`` as phue wants it. Strips ``http://`` and a trailing ``/`` or ``/api``."""
    host = str(text).strip()
    if host.lower().startswith("https://"):
        raise LightsError(
            f"bridge {text!r}: phue speaks plain HTTP only; give the address without https://, e.g. 192.168.1.20"
        )
    if host.lower().startswith("http://"):
        host = host[len("http://"):]
    host = host.rstrip("/")
    if host.endswith("/api"):
        host = host[: -len("/api")]
    match = _HOST.match(host)
    if not match or (match.group(1) and not 0 < int(match.group(1)) < 65536):
        raise LightsError(f"bridge {text!r} is not an address; use HOST or HOST:PORT, e.g. 192.168.1.20")
    return host


def _api_errors(response) -> List[HueApiError]:
    if not isinstance(response, list):
        return []
    return [
        HueApiError(item["error"].get("type"), str(item["error"].get("description", "")),
                    str(item["error"].get("address", "")))
        for item in response
        if isinstance(item, dict) and isinstance(item.get("error"), dict)
    ]


def _as_object(response, what: str) -> dict:
    """A GET answer must be an object; an error array becomes HueApiError."""
    if isinstance(response, dict):
        return response
    errors = _api_errors(response)
    if errors:
        raise errors[0]
    raise BridgeRefusal(f"the bridge answered {what} with something that is not a Hue object")


def _check_put(results) -> None:
    """``set_light``/``set_group`` return one answer per id; every answer must be successes."""
    if not isinstance(results, list) or not results:
        raise BridgeRefusal("the bridge gave no answer to the command")
    for answer in results:
        errors = _api_errors(answer)
        if errors:
            raise errors[0]
        if not isinstance(answer, list) or not any(isinstance(i, dict) and "success" in i for i in answer):
            raise BridgeRefusal("the bridge answered the command with something that is not a Hue result")


def rejected_key_error(host: str) -> LightsError:
    """The bridge refused the stored key: the one fix is to pair again."""
    return LightsError(f"the Hue bridge {host} rejected the stored key (unauthorized user); "
                       f"run thermalcount hue pair --bridge {host}")


def describe_error(error: BaseException, host: str) -> str:
    """One line for a phue failure, with any key redacted."""
    if isinstance(error, HueApiError):
        if error.type == UNAUTHORIZED:
            text = f"the bridge rejected the key (unauthorized user); run thermalcount hue pair --bridge {host}"
        elif error.type == RESOURCE_NOT_AVAILABLE:
            text = f"the bridge says {error.description} (was it deleted? check thermalcount hue lights)"
        else:
            text = f"the bridge answered error {error.type}: {error.description}"
    elif isinstance(error, (LightsError, BridgeRefusal)):
        text = str(error)
    elif isinstance(error, ConnectionRefusedError):
        text = "connection refused (is the bridge on, and is this its address?)"
    elif isinstance(error, (TimeoutError, socket.timeout, phue.PhueRequestTimeout)):
        text = f"no answer within {REQUEST_DEADLINE:g} s"
    elif isinstance(error, json.JSONDecodeError):
        text = "it answered something that is not Hue JSON"
    elif isinstance(error, http.client.HTTPException):
        text = f"it dropped the connection ({type(error).__name__})"
    elif isinstance(error, OSError):
        text = f"network error: {error.strerror or error}"
    else:
        text = f"unexpected answer ({type(error).__name__}: {error})"
    return _redact(" ".join(text.split()))[:300]


def _match(kind: str, spec: str, objects: dict, host: str) -> Target:
    spec = str(spec).strip()
    if spec in objects:
        return Target(kind, spec, str(objects[spec].get("name", spec)))
    names = {oid: str(obj.get("name", "")) for oid, obj in objects.items() if isinstance(obj, dict)}
    for exact in (True, False):
        hits = [oid for oid, name in names.items() if (name == spec if exact else name.lower() == spec.lower())]
        if len(hits) == 1:
            return Target(kind, hits[0], names[hits[0]])
        if len(hits) > 1:
            raise LightsError(
                f"several {kind}s on the Hue bridge {host} are named {spec!r} (ids {', '.join(sorted(hits))}); "
                f"use the id"
            )
    available = ", ".join(f"{name} ({oid})" for oid, name in sorted(names.items(), key=_id_order)) or "none"
    raise LightsError(
        f"no {kind} named or numbered {spec!r} on the Hue bridge {host}; available: {available}"
    )


def _id_order(item):
    oid = item[0]
    return (0, int(oid), "") if str(oid).isdigit() else (1, 0, str(oid))


# --- the driver the worker runs --------------------------------------------------------------


class HueDriver:
    """Resolves and switches lights/groups on one bridge. Used from one thread at a time."""

    # Philips' guidance for the v1 API: about 10 commands per second to lights, at most one
    # per second to groups (a group command fans out over ZigBee to every member).
    min_interval = {"light": 0.1, "group": 1.0}

    def __init__(self, host: str, key: str, lights: Iterable[str] = (), group: Optional[str] = None):
        self.host = host
        self.description = f"Hue bridge {host}"
        self._key = key
        self._light_specs = [str(spec) for spec in lights]
        self._group_spec = None if group is None else str(group)
        self._api = _client(host, key)

    def resolve(self) -> List[Target]:
        try:
            targets = []
            if self._light_specs:
                lights = _as_object(self._api.get_light(), "the light list")
                targets += [_match("light", spec, lights, self.host) for spec in self._light_specs]
            if self._group_spec is not None:
                if self._group_spec == "0":
                    targets.append(Target("group", "0", "all lights"))
                else:
                    groups = _as_object(self._api.get_group(), "the group list")
                    targets.append(_match("group", self._group_spec, groups, self.host))
        except HueApiError as error:
            if error.type == UNAUTHORIZED:
                raise rejected_key_error(self.host) from None
            raise
        # The same light named twice (by name and by id) is one target.
        return list(dict.fromkeys(targets))

    def send(self, target: Target, on: bool) -> None:
        if target.kind == "light":
            _check_put(self._api.set_light(int(target.id), "on", bool(on)))
        else:
            _check_put(self._api.set_group(int(target.id), "on", bool(on)))

    def check(self, targets: List[Target]) -> None:
        target = targets[0]
        if target.kind == "light":
            _as_object(self._api.get_light(int(target.id)), f"light {target.id}")
        else:
            _as_object(self._api.get_group(int(target.id)), f"group {target.id}")

    def describe(self, error: BaseException) -> str:
        return describe_error(error, self.host)


# --- set-up: which bridge, which key ---------------------------------------------------------


def bridge_host(bridge: Optional[str] = None) -> str:
    """``--bridge``, else ``[hue] bridge`` in config.toml, else the last paired bridge."""
    host = bridge or config.load_config().hue_bridge or config.paired_bridge()
    if not host:
        raise LightsError(
            "no Hue bridge configured: run thermalcount hue pair --bridge HOST (or pass --bridge HOST)"
        )
    return normalize_host(host)


def bridge_key(host: str) -> str:
    key = config.hue_key(host)
    if not key:
        raise LightsError(
            f"the Hue bridge {host} is not paired: run thermalcount hue pair --bridge {host}"
        )
    return key


# --- the registry's entry points for ``--lights hue`` (thermalcount.lights.registry) -------

TAKES_TARGETS = True


def open_lights(settings, on_status=None, *, start_timeout: float = 3.0, **worker_options) -> WorkerLights:
    """Start Hue lights for ``settings`` (a :class:`thermalcount.lights.registry.LightsSettings`).

    Raises :class:`LightsError` for set-up problems on a bridge that answers (unknown light
    or group, rejected key) or no key; an unreachable bridge is not an error: the worker
    keeps trying and the lights catch up when it answers.

    ``start_timeout`` bounds how long we wait for the bridge to answer the name lookup.
    ``worker_options`` go to :class:`WorkerLights` (``backoff_max``, ``check_interval``...).
    """
    host = bridge_host(settings.bridge)
    key = bridge_key(host)
    lights, group = tuple(str(light) for light in settings.names), settings.group
    if not lights and group is None:
        configured = config.load_config()
        lights, group = configured.hue_lights, configured.hue_group
    if not lights and group is None:
        raise LightsError(
            "no lights chosen: pass --light NAME_OR_ID (repeatable) or --group NAME_OR_ID "
            "(see thermalcount hue lights), or set them in config.toml"
        )
    driver = HueDriver(host, key, lights, group)
    worker = WorkerLights(driver, backend="hue", on_status=on_status, **worker_options).start()
    setup_error = worker.wait_started(start_timeout)
    if setup_error is not None:
        worker.close(timeout=0)
        raise setup_error
    return worker


# --- the `hue` commands ----------------------------------------------------------------------


def pair(
    bridge: str,
    *,
    timeout: float = 30.0,
    interval: float = 1.0,
    on_wait: Optional[Callable[[float], None]] = None,
) -> Path:
    """Link-button pairing: ask for a key until the button is pressed or ``timeout`` passes.

    Stores the key (0600) for the bridge and returns the credentials file. ``on_wait`` is
    called with the seconds left while the bridge says the button was not pressed."""
    host = normalize_host(bridge)
    api = _Bridge(ip=host, username="", config_file_path=os.devnull)
    devicetype = "thermalcount#" + (socket.gethostname() or "pi")[:19]
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = api.request("POST", "/api", {"devicetype": devicetype})
        except Exception as error:
            raise LightsError(
                f"cannot reach the Hue bridge at {host}: {describe_error(error, host)}; check the address"
            ) from None
        if isinstance(answer, list):
            for item in answer:
                key = item.get("success", {}).get("username") if isinstance(item, dict) else None
                if isinstance(key, str) and key:
                    remember_secret(key)
                    return config.save_hue_key(host, key)
        errors = _api_errors(answer)
        if not errors:
            raise LightsError(f"{host} did not answer like a Hue bridge; check the address")
        if errors[0].type != LINK_BUTTON_NOT_PRESSED:
            raise LightsError(
                f"the Hue bridge at {host} refused pairing (error {errors[0].type}: {errors[0].description})"
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LightsError(
                f"the link button on the Hue bridge at {host} was not pressed within {timeout:.0f} s; "
                "press the round button on the bridge, then run this command again"
            )
        if on_wait is not None:
            on_wait(remaining)
        time.sleep(min(interval, remaining))


@dataclass(frozen=True)
class LightInfo:
    id: str
    name: str
    on: Optional[bool]
    reachable: Optional[bool]
    type: str


@dataclass(frozen=True)
class GroupInfo:
    id: str
    name: str
    any_on: Optional[bool]
    all_on: Optional[bool]
    lights: tuple
    type: str


@dataclass(frozen=True)
class BridgeInventory:
    host: str
    lights: tuple
    groups: tuple


def list_bridge(bridge: Optional[str] = None) -> BridgeInventory:
    """The lights and groups on the (paired) bridge. Raises :class:`LightsError` in one line."""
    host = bridge_host(bridge)
    api = _client(host, bridge_key(host))
    try:
        lights = _as_object(api.get_light(), "the light list")
        groups = _as_object(api.get_group(), "the group list")
    except HueApiError as error:
        if error.type == UNAUTHORIZED:
            raise rejected_key_error(host) from None
        raise LightsError(f"the Hue bridge {host}: {describe_error(error, host)}") from None
    except Exception as error:
        raise LightsError(f"cannot reach the Hue bridge at {host}: {describe_error(error, host)}") from None

    def flag(mapping, key):
        value = mapping.get(key) if isinstance(mapping, dict) else None
        return value if isinstance(value, bool) else None

    light_rows = tuple(
        LightInfo(oid, str(obj.get("name", "")), flag(obj.get("state"), "on"),
                  flag(obj.get("state"), "reachable"), str(obj.get("type", "")))
        for oid, obj in sorted(lights.items(), key=_id_order) if isinstance(obj, dict)
    )
    group_rows = tuple(
        GroupInfo(oid, str(obj.get("name", "")), flag(obj.get("state"), "any_on"),
                  flag(obj.get("state"), "all_on"), tuple(obj.get("lights") or ()), str(obj.get("type", "")))
        for oid, obj in sorted(groups.items(), key=_id_order) if isinstance(obj, dict)
    )
    return BridgeInventory(host, light_rows, group_rows)
