"""One room's occupancy from several doors' MQTT events (``thermalcount room``).

:class:`RoomCount` is the pure core: events and availability changes go in, the count and
door status come out; no clock, no thread, no broker. :class:`RoomService` feeds it from an
:class:`~thermalcount.mqtt.client.MqttLink`, publishes the room with Home Assistant
discovery and, optionally, switches the lights itself so the door Pis only count.

Each door publishes one JSON event per crossing on ``<base>/door/<door>/events`` (QoS 1, so
a message may arrive twice) and its availability (``online``/``offline``, the broker sends
``offline`` as the door's last will when it dies).
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from thermalcount.errors import UsageError
from thermalcount.lights.policy import DEFAULT_OFF_DELAY, LightPolicy
from thermalcount.mqtt import homeassistant as ha
from thermalcount.mqtt.throttle import Throttled

log = logging.getLogger("thermalcount.mqtt")

# Re-deliveries of a QoS 1 message arrive close to the original; a few thousand keys per
# room cover minutes of traffic at any realistic door rate.
DEDUPE_MEMORY = 4096


@dataclass
class DoorStatus:
    name: str
    online: Optional[bool] = None  # None until the broker told us either way
    events: int = 0
    duplicates: int = 0


@dataclass
class RoomCount:
    """Room occupancy from several doors: ``in`` adds one, ``out`` removes one, never below 0.

    ``doors`` maps door id -> display name. Events are de-duplicated by (door, session,
    seq): the session is a random id each door process picks at start (a door that restarts
    counts frames from 0 again and must not look like a re-delivery), ``seq`` numbers its
    events (two people crossing side by side give two events in the same frame). Events
    without ``seq`` (other publishers) fall back to (door, session, frame, direction).
    """

    doors: dict[str, str]
    occupancy: int = 0
    entries: int = 0
    exits: int = 0
    clamped: int = 0
    duplicates: int = 0
    rejected: int = 0
    last_event: Optional[dict] = None
    status: dict[str, DoorStatus] = field(default_factory=dict)
    _seen: OrderedDict = field(default_factory=OrderedDict, repr=False)

    def __post_init__(self):
        if not self.doors:
            raise UsageError("a room needs at least one --door")
        self.status = {door_id: DoorStatus(name) for door_id, name in self.doors.items()}

    def handle_event(self, door_id: str, event: dict) -> bool:
        """Apply one door event. True if it changed the count; False for a duplicate or junk."""
        door = self.status.get(door_id)
        direction = event.get("direction") if isinstance(event, dict) else None
        frame = event.get("frame") if isinstance(event, dict) else None
        if door is None or direction not in ("in", "out") or not isinstance(frame, int) or isinstance(frame, bool):
            self.rejected += 1
            return False
        seq = event.get("seq")
        key = (door_id, str(event.get("session")), seq if isinstance(seq, int) else (frame, direction))
        if key in self._seen:
            self.duplicates += 1
            door.duplicates += 1
            return False
        self._seen[key] = None
        if len(self._seen) > DEDUPE_MEMORY:
            self._seen.popitem(last=False)
        door.events += 1
        if direction == "in":
            self.entries += 1
            self.occupancy += 1
        else:
            self.exits += 1
            if self.occupancy == 0:
                # An "out" nobody came in for: another door missed the entry, or the room
                # was not empty when we started. Stay at 0 rather than go negative.
                self.clamped += 1
            else:
                self.occupancy -= 1
        self.last_event = {"door": door_id, "door_name": door.name, "direction": direction,
                           "frame": frame, "time": event.get("time"), "wall_time": event.get("wall_time"),
                           "occupancy": self.occupancy}
        return True

    def handle_availability(self, door_id: str, online: bool) -> bool:
        """A door went online or offline. True if that is news."""
        door = self.status.get(door_id)
        if door is None or door.online == online:
            return False
        door.online = online
        return True

    def set_occupancy(self, value: int) -> None:
        """A correction by hand (``reset`` is ``set_occupancy(0)``)."""
        if value < 0:
            raise ValueError(f"occupancy must be >= 0, not {value}")
        self.occupancy = int(value)

    def state(self, **extra) -> dict:
        return ha.state_dict(self.occupancy, self.entries, self.exits, **extra)

    def doors_payload(self) -> dict:
        return {door_id: ha.ONLINE if door.online else ha.OFFLINE for door_id, door in self.status.items()}


@dataclass
class RoomStats:
    occupancy: int
    entries: int
    exits: int
    duplicates: int
    clamped: int
    events: int
    wall_seconds: float


class RoomService:
    """Subscribes to the doors, keeps the :class:`RoomCount`, publishes the room, drives lights.

    Messages arrive on the MQTT thread and are handed over through a queue, so the count
    and the lights are only touched by the thread that calls :meth:`run` (or :meth:`step`).
    ``lights`` is an open :class:`~thermalcount.lights.Lights` (or None); the light policy
    runs on this process's monotonic clock.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        doors: Iterable[str],
        lights=None,
        off_delay: float = DEFAULT_OFF_DELAY,
        username: Optional[str] = None,
        password: Optional[str] = None,
        tls_ca: Optional[str] = None,
        client_id: Optional[str] = None,
        discovery_prefix: str = "homeassistant",
        base_topic: str = "thermalcount",
        reporter: Optional[Callable[[str], None]] = None,
        max_queue: int = 1000,
        keepalive: int = 20,
        reconnect_delay: Optional[tuple] = None,  # None: the link's RECONNECT_DELAY
        clock: Callable[[], float] = time.monotonic,
    ):
        from thermalcount.mqtt.client import RECONNECT_DELAY, MqttLink

        self.name = name.strip() if isinstance(name, str) else name
        self.room_id = ha.id_for(name, "name")
        door_names = {}
        for door in doors:
            door_names.setdefault(ha.id_for(door, "door"), door.strip())
        self.count = RoomCount(door_names)
        self.discovery_prefix = ha.check_topic_prefix(discovery_prefix, "discovery prefix")
        self.base_topic = ha.check_topic_prefix(base_topic, "base topic")
        self.topics = ha.room_topics(self.base_topic, self.room_id)
        self.node_id = f"thermalcount_room_{self.room_id}"
        self.lights = lights
        self.policy = None
        if lights is not None:
            self.policy = LightPolicy(off_delay)
        self._report = reporter or log.warning
        self._clock = clock
        self._inbox: "queue.SimpleQueue[tuple[str, bytes, bool]]" = queue.SimpleQueue()
        self._stop = threading.Event()
        self._status_topic = ha.status_topic(self.discovery_prefix)
        self._door_topics = {}
        for door_id in door_names:
            topics = ha.door_topics(self.base_topic, door_id)
            self._door_topics[topics.events] = ("event", door_id)
            self._door_topics[topics.availability] = ("availability", door_id)
        self.notices: list[str] = []
        # Anyone on the broker can send junk commands: said once a minute, with a count.
        self._junk = Throttled(self._notice, "junk commands")
        session = secrets.token_hex(4)
        self._link = MqttLink(
            url,
            client_id=client_id or f"thermalcount-room-{self.room_id}-{session}",
            will=(self.topics.availability, ha.OFFLINE), birth=(self.topics.availability, ha.ONLINE),
            subscriptions=(*self._door_topics, self.topics.set, self._status_topic),
            on_message=lambda topic, payload, retained: self._inbox.put((topic, payload, retained)),
            username=username, password=password, tls_ca=tls_ca, max_queue=max_queue,
            keepalive=keepalive, reconnect_delay=reconnect_delay or RECONNECT_DELAY, reporter=self._report,
        )
        device = ha.device_block(self.node_id, f"{self.name} room", "thermalcount room", area=self.name)
        for topic, payload in ha.room_discovery(self.discovery_prefix, self.node_id, device, self.topics,
                                                door_names, with_lights=lights is not None):
            self._link.publish_latest(topic, payload)
        self._publish_state()
        self._link.publish_latest(self.topics.doors, json.dumps(self.count.doors_payload()))

    @property
    def status(self) -> dict:
        return self._link.status

    def start(self) -> None:
        self._link.start()

    def stop(self) -> None:
        self._stop.set()

    def run(self, *, duration: Optional[float] = None) -> RoomStats:
        """Process messages until :meth:`stop` (or ``duration`` seconds). Returns totals."""
        started = time.monotonic()
        while not self._stop.is_set():
            if duration is not None and time.monotonic() - started >= duration:
                break
            self.step(timeout=0.2)
        count = self.count
        return RoomStats(count.occupancy, count.entries, count.exits, count.duplicates, count.clamped,
                         sum(door.events for door in count.status.values()), time.monotonic() - started)

    def step(self, timeout: float = 0.2) -> int:
        """Handle every waiting message (waiting up to ``timeout`` for the first); tick the lights."""
        handled = 0
        changed = doors_changed = False
        try:
            item = self._inbox.get(timeout=timeout)
            while True:
                outcome = self._handle(*item)
                changed |= outcome == "count"
                doors_changed |= outcome == "doors"
                handled += 1
                item = self._inbox.get_nowait()
        except queue.Empty:
            pass
        if changed:
            self._publish_state()
        if doors_changed:
            self._link.publish_latest(self.topics.doors, json.dumps(self.count.doors_payload()))
        self._update_lights()
        return handled

    def close(self) -> None:
        self._link.close()
        self._junk.flush()

    # -- internals -------------------------------------------------------------------------
    def _handle(self, topic: str, payload: bytes, retained: bool) -> Optional[str]:
        kind, door_id = self._door_topics.get(topic, (None, None))
        if kind == "event":
            try:
                event = json.loads(payload)
            except ValueError:
                event = None
            if not self.count.handle_event(door_id, event):
                return None
            if self.count.last_event is not None:
                self._link.publish_latest(self.topics.last_event, json.dumps(self.count.last_event))
            return "count"
        if kind == "availability":
            text = payload.decode("utf-8", errors="replace").strip().lower()
            if text not in (ha.ONLINE, ha.OFFLINE) or not self.count.handle_availability(door_id, text == ha.ONLINE):
                return None
            door = self.count.status[door_id]
            self._notice(f"door {door.name} is {text}" + ("" if door.online else "; counting on with the other doors"))
            return "doors"
        if topic == self._status_topic:
            if payload.strip().lower() == b"online":
                self._link.republish_all()
            return None
        if topic == self.topics.set:
            return self._handle_command(payload, retained)
        return None

    def _handle_command(self, payload: bytes, retained: bool) -> Optional[str]:
        if retained:
            self._junk(f"ignored a retained command on {self.topics.set}; publish commands without retain")
            return None
        try:
            command, value = ha.parse_count_command(payload)
        except ValueError as error:
            self._junk(f"ignored a message on {self.topics.set}: {error}; send 'reset' or a whole number")
            return None
        self.count.set_occupancy(0 if command == "reset" else value)
        self._notice(f"room occupancy set to {self.count.occupancy} by hand")
        return "count"

    def _publish_state(self) -> None:
        extra = {}
        if self.lights is not None:
            desired = self.policy.desired  # None until the policy first decides
            extra["lights"] = None if desired is None else ("ON" if desired else "OFF")
        self._link.publish_latest(self.topics.state, json.dumps(self.count.state(**extra)))

    def _update_lights(self) -> None:
        if self.policy is None:
            return
        desired = self.policy.update(self._clock(), self.count.occupancy)  # only when it changes
        if desired is not None:
            self.lights.set_on(desired, reason=f"room {self.policy.reason}")
            self._publish_state()

    def _notice(self, message: str) -> None:
        self.notices.append(message)
        del self.notices[:-50]
        self._report(message)
