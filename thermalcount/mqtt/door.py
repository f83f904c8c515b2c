"""One door's counts on MQTT, discoverable by Home Assistant (used by ``run --mqtt``).

The frame loop calls ``publish_*``; each call encodes a small JSON payload and appends it
to the :class:`~thermalcount.mqtt.client.MqttLink` stores, so it returns in microseconds
whether or not a broker is reachable. Events also go to a plain, non-retained QoS 1 topic
that ``thermalcount room`` subscribes to.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import socket
import time
from typing import Callable, Optional

from thermalcount.mqtt import homeassistant as ha
from thermalcount.mqtt.client import RECONNECT_DELAY, MqttLink
from thermalcount.mqtt.throttle import Throttled

log = logging.getLogger("thermalcount.mqtt")

CommandCallback = Callable[[str, Optional[int]], None]


class DoorPublisher:
    """Publishes one door: state, events, health, discovery; takes set/reset commands.

    ``door`` defaults to the host name without its domain.
    ``on_command(cmd, value)`` is called from the MQTT thread with ``("reset", None)`` or
    ``("set", n)``; it may be assigned after construction. ``reporter`` receives one line
    per broker outage and recovery (default: the ``thermalcount.mqtt`` logger).
    """

    def __init__(
        self,
        url: str,
        *,
        door: Optional[str] = None,
        room: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        tls_ca: Optional[str] = None,
        max_queue: int = 1000,
        client_id: Optional[str] = None,
        discovery_prefix: str = "homeassistant",
        base_topic: str = "thermalcount",
        on_command: Optional[CommandCallback] = None,
        reporter: Optional[Callable[[str], None]] = None,
        keepalive: int = 20,
        reconnect_delay: tuple[float, float] = RECONNECT_DELAY,
    ):
        if door is None:
            # The host name without its domain: "pi-hall.local" -> "pi-hall".
            door = socket.gethostname().split(".")[0]
        self.door_name = door.strip() if isinstance(door, str) else door
        self.door_id = ha.id_for(door, "door")
        self.room_name = room.strip() if room else None
        if room is not None:
            ha.id_for(room, "room")
        self.discovery_prefix = ha.check_topic_prefix(discovery_prefix, "discovery prefix")
        self.base_topic = ha.check_topic_prefix(base_topic, "base topic")
        self.topics = ha.door_topics(self.base_topic, self.door_id)
        self.node_id = f"thermalcount_{self.door_id}"
        # A new session id per process: a restarted door counts frames from 0 again, and the
        # room must not mistake its new events for re-deliveries of the old ones.
        self.session = secrets.token_hex(4)
        # Numbers each event of this session: the counter may emit two events for one frame
        # (two people side by side), so the frame alone cannot identify an event.
        self._sequence = itertools.count(1)
        self.on_command = on_command
        self._status_topic = ha.status_topic(self.discovery_prefix)
        self._report = reporter or log.warning
        # Anyone on the broker can send junk commands: said once a minute, with a count.
        self._junk = Throttled(self._report, "junk commands")
        self._link = MqttLink(
            url,
            client_id=client_id or f"thermalcount-{self.door_id}-{self.session}",
            will=(self.topics.availability, ha.OFFLINE),
            birth=(self.topics.availability, ha.ONLINE),
            subscriptions=(self.topics.set, self._status_topic),
            on_message=self._handle_message,
            username=username, password=password, tls_ca=tls_ca, max_queue=max_queue,
            keepalive=keepalive, reconnect_delay=reconnect_delay, reporter=self._report,
        )
        device = ha.device_block(self.node_id, f"{self.door_name} door counter", "AMG8833 door counter",
                                 area=self.room_name)
        for topic, payload in ha.door_discovery(self.discovery_prefix, self.node_id, device, self.topics):
            self._link.publish_latest(topic, payload)

    @property
    def broker(self):
        return self._link.broker

    def start(self) -> None:
        """Connect in the background; returns at once even if the broker is down."""
        self._link.start()

    def publish_event(self, event) -> None:
        """One crossing (a ``CountEvent``): to the events topic and as the last event."""
        payload = json.dumps({
            "door": self.door_id, "room": self.room_name, "session": self.session, "seq": next(self._sequence),
            "frame": int(event.frame), "time": float(event.time), "direction": event.direction,
            "occupancy": int(event.occupancy), "wall_time": round(time.time(), 3),
        })
        self._link.publish(self.topics.events, payload, qos=1, retain=False)
        self._link.publish_latest(self.topics.last_event, payload)

    def publish_state(self, occupancy: int, entries: int, exits: int) -> None:
        self._link.publish_latest(self.topics.state, ha.state_payload(occupancy, entries, exits))

    def publish_health(self, *, sensor_ok: bool, sensor_error: Optional[str], model: str, backend: str,
                       fps: Optional[float], latency_us: Optional[float]) -> None:
        payload = json.dumps({
            "sensor_ok": bool(sensor_ok), "sensor_error": sensor_error, "model": model, "backend": backend,
            "fps": None if fps is None else round(float(fps), 2),
            "latency_us": None if latency_us is None else round(float(latency_us), 1),
        })
        self._link.publish_latest(self.topics.health, payload, qos=0)

    def close(self) -> None:
        """Publish ``offline`` (a clean disconnect does not fire the will), then disconnect."""
        self._link.close()
        self._junk.flush()

    @property
    def status(self) -> dict:
        return self._link.status

    def _handle_message(self, topic: str, payload: bytes, retained: bool) -> None:
        if topic == self._status_topic:
            if payload.strip().lower() == b"online":
                self._link.republish_all()
            return
        if topic != self.topics.set:
            return
        if retained:
            # A retained command would re-apply itself at every restart of the door.
            self._junk(f"ignored a retained command on {topic}; publish set/reset commands without retain")
            return
        try:
            command, value = ha.parse_count_command(payload)
        except ValueError as error:
            self._junk(f"ignored a message on {topic}: {error}; send 'reset' or a whole number")
            return
        if self.on_command is not None:
            self.on_command(command, value)
