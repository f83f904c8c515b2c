"""The ``Lights`` interface the live loop talks to, the ``Driver`` interface a networked
light system implements, and the ``none`` back-end.

``set_on()`` only records what the lights SHOULD be and returns at once: it is called from
the frame loop, which must never wait on a network. Back-ends that talk to hardware give a
:class:`Driver` to :class:`thermalcount.lights.worker.WorkerLights`, which applies the desired
state from its own thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import List, Mapping, Optional, Protocol


@dataclass(frozen=True)
class Target:
    """One thing to switch: a light or a group, by id, with its name for messages."""

    kind: str  # a key of the driver's ``min_interval``: "light" or "group" for Hue
    id: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r} ({self.id})" if self.name != self.id else f"{self.kind} {self.id}"


class BridgeRefusal(Exception):
    """The device answered, but refused the command (bad key, missing light...).

    Only the refused target is then re-sent later; any other exception from a driver means
    the device is unreachable, and every target's state becomes unknown."""


class Driver(Protocol):
    """A light system's network client, run by one worker thread (never the frame loop).

    Every call may block and raise anything; the worker reports and retries. Raise
    :class:`thermalcount.errors.LightsError` for a set-up problem the user must fix (unknown
    light, rejected key) and :class:`BridgeRefusal` for a command the device refused."""

    #: Names the device in messages: "Hue bridge 192.168.1.20".
    description: str
    #: Seconds to leave between two commands, per ``Target.kind``: the device's rate limit.
    min_interval: Mapping[str, float]

    def resolve(self) -> List[Target]:
        """The configured lights/groups as targets (called until it succeeds)."""

    def send(self, target: Target, on: bool) -> None:
        """Switch one target."""

    def check(self, targets: List[Target]) -> None:
        """Ask the device about one target; raise if it does not answer (idle health check)."""

    def describe(self, error: BaseException) -> str:
        """One line saying what ``error`` means for the user."""


@dataclass(frozen=True)
class LightStatus:
    """A snapshot of a back-end, cheap enough to read every frame.

    ``desired`` is the last value given to ``set_on`` (None before the first call);
    ``applied`` is what the lights were last successfully set to (None when unknown, e.g.
    before the first command, while an outage lasts, or while several lights disagree);
    ``error`` is the current problem in one line (None when all is well); ``outage_since``
    is the unix time that problem started; ``commands_sent`` counts commands that reached
    the lights (or lines printed, for ``console``).
    """

    backend: str
    desired: Optional[bool] = None
    applied: Optional[bool] = None
    error: Optional[str] = None
    outage_since: Optional[float] = None
    commands_sent: int = 0
    target: str = ""

    @property
    def in_sync(self) -> bool:
        return self.desired is None or self.desired == self.applied


class Lights:
    """Base class. Subclasses override ``_apply`` (synchronous back-ends) or everything."""

    backend = "none"
    target = ""

    def __init__(self):
        self._lock = threading.Lock()
        self._desired: Optional[bool] = None
        self._reason: Optional[str] = None
        self._applied: Optional[bool] = None
        self._sent = 0

    def set_on(self, on: bool, reason: Optional[str] = None) -> None:
        """Record the desired state. Returns at once; repeated values cost nothing.

        ``reason`` says why in words ("occupancy 1", "off-delay expired ..."); back-ends that
        switch something log it with the change, so the journal says why the lights changed."""
        on = bool(on)
        with self._lock:
            changed = on != self._desired
            self._desired = on
            if changed:
                self._reason = reason
        if changed:
            self._apply(on)

    def _apply(self, on: bool) -> None:
        with self._lock:
            self._applied = on
            self._sent += 1

    def status(self) -> LightStatus:
        with self._lock:
            return LightStatus(
                backend=self.backend, desired=self._desired, applied=self._applied,
                commands_sent=self._sent, target=self.target,
            )

    def close(self, timeout: float = 2.0) -> None:
        """Stop; waits at most ``timeout`` seconds. The lights are left as they are."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class NoLights(Lights):
    """``--lights none``: counts desired changes and switches nothing."""

    backend = "none"


# --- the registry's entry points for ``--lights none`` (thermalcount.lights.registry) ---------

TAKES_TARGETS = False


def open_lights(settings, on_status=None, **options) -> NoLights:
    return NoLights()
