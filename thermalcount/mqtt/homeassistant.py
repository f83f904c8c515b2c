"""Topics and Home Assistant MQTT discovery payloads. Pure: no network, no paho.

Layout (``base`` is ``thermalcount`` unless changed)::

    <base>/door/<door_id>/availability   online | offline   retained, last will "offline"
    <base>/door/<door_id>/state          {"occupancy", "occupied", "entries", "exits"}  retained
    <base>/door/<door_id>/last_event     {"direction", "time", "frame", ...}             retained
    <base>/door/<door_id>/health         {"sensor_ok", "model", "backend", ...}          retained
    <base>/door/<door_id>/events         one JSON event per crossing, QoS 1, NOT retained
    <base>/door/<door_id>/set            command: "reset" or a whole number
    <base>/room/<room_id>/...            the same for a room, plus "doors"

Doors and rooms live under different levels so a door and a room can share a name.
Discovery configs go to ``<prefix>/<component>/<node_id>/<object_id>/config``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Optional

from thermalcount import __version__
from thermalcount.errors import UsageError

MANUFACTURER = "thermalcount"
ONLINE, OFFLINE = "online", "offline"
_NAME = re.compile(r"[A-Za-z0-9 _-]{1,64}")
_TOPIC_LEVELS = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")
# The highest people count the Home Assistant "set" number entity offers.
MAX_SETTABLE_COUNT = 1000


def id_for(name: str, what: str = "door") -> str:
    """A name as an MQTT/Home Assistant id: ``'Front door'`` -> ``'front_door'``.

    Only letters, digits, spaces, ``-`` and ``_`` are accepted, because ids must match
    ``[a-zA-Z0-9_-]`` and silently mangling ``'Küche/Nord'`` would make two doors collide.
    """
    stripped = (name or "").strip()
    if not _NAME.fullmatch(stripped):
        raise UsageError(
            f"{what} name {name!r} may only use letters, digits, spaces, '-' and '_' "
            f"(1 to 64 characters); e.g. --{what} front_door"
        )
    return re.sub(r"\s+", "_", stripped).lower()


def check_topic_prefix(prefix: str, what: str) -> str:
    """A base topic or discovery prefix such as ``thermalcount`` or ``home/counters``."""
    if not _TOPIC_LEVELS.fullmatch(prefix or ""):
        raise UsageError(
            f"{what} {prefix!r} must be topic levels of letters, digits, '-' and '_' separated "
            f"by '/', with no wildcards or leading/trailing '/'; e.g. thermalcount"
        )
    return prefix


@dataclass(frozen=True)
class Topics:
    """Every topic one door or one room uses."""

    root: str
    availability: str
    state: str
    last_event: str
    health: str
    events: str
    set: str
    doors: str  # rooms only: which doors are online

    @classmethod
    def under(cls, root: str) -> "Topics":
        return cls(
            root=root, availability=f"{root}/availability", state=f"{root}/state",
            last_event=f"{root}/last_event", health=f"{root}/health", events=f"{root}/events",
            set=f"{root}/set", doors=f"{root}/doors",
        )


def door_topics(base_topic: str, door_id: str) -> Topics:
    return Topics.under(f"{base_topic}/door/{door_id}")


def room_topics(base_topic: str, room_id: str) -> Topics:
    return Topics.under(f"{base_topic}/room/{room_id}")


def status_topic(discovery_prefix: str) -> str:
    """Where Home Assistant announces ``online`` after it (or its MQTT integration) starts."""
    return f"{discovery_prefix}/status"


def state_dict(occupancy: int, entries: int, exits: int, **extra) -> dict:
    return {"occupancy": int(occupancy), "occupied": "ON" if occupancy > 0 else "OFF",
            "entries": int(entries), "exits": int(exits), **extra}


def state_payload(occupancy: int, entries: int, exits: int, **extra) -> str:
    return json.dumps(state_dict(occupancy, entries, exits, **extra))


def parse_count_command(payload: bytes) -> tuple[str, Optional[int]]:
    """``b"reset"`` -> ``("reset", None)``; ``b"3"`` or ``b"3.0"`` (HA numbers) -> ``("set", 3)``.

    Raises ValueError with a readable reason for anything else.
    """
    text = payload.decode("utf-8", errors="replace").strip()
    if text.lower() == "reset":
        return "reset", None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"command {text[:40]!r} is neither 'reset' nor a whole number") from None
    if not number.is_integer() or not 0 <= number <= 1_000_000:
        raise ValueError(f"command {text[:40]!r} is not a whole number of people >= 0")
    return "set", int(number)


# -- discovery --------------------------------------------------------------------------------

def device_block(node_id: str, name: str, model: str, area: Optional[str] = None) -> dict:
    device = {"identifiers": [node_id], "name": name, "model": model,
              "sw_version": __version__, "manufacturer": MANUFACTURER}
    if area:
        device["suggested_area"] = area
    return device


def _config(prefix: str, component: str, node_id: str, object_id: str, device: dict,
            availability_topic: str, fields: dict) -> tuple[str, str]:
    config = {
        "unique_id": f"{node_id}_{object_id}",
        "availability_topic": availability_topic,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": device,
        **fields,
    }
    return f"{prefix}/{component}/{node_id}/{object_id}/config", json.dumps(config, sort_keys=True)


def _count_entities(topics: Topics) -> list[tuple[str, str, dict]]:
    """Entities a door and a room share: occupancy, count, totals, last event, set/reset."""
    state = topics.state
    return [
        ("binary_sensor", "occupied", {
            "name": "Occupied", "device_class": "occupancy", "state_topic": state,
            "value_template": "{{ value_json.occupied }}", "payload_on": "ON", "payload_off": "OFF"}),
        ("sensor", "people", {
            "name": "People", "state_topic": state, "value_template": "{{ value_json.occupancy }}",
            "state_class": "measurement", "unit_of_measurement": "people", "icon": "mdi:account-group"}),
        ("sensor", "entries", {
            "name": "Entries", "state_topic": state, "value_template": "{{ value_json.entries }}",
            "state_class": "total_increasing", "unit_of_measurement": "people", "icon": "mdi:location-enter"}),
        ("sensor", "exits", {
            "name": "Exits", "state_topic": state, "value_template": "{{ value_json.exits }}",
            "state_class": "total_increasing", "unit_of_measurement": "people", "icon": "mdi:location-exit"}),
        ("sensor", "last_event", {
            "name": "Last event", "state_topic": topics.last_event,
            "value_template": "{{ value_json.direction }}", "json_attributes_topic": topics.last_event,
            "icon": "mdi:swap-horizontal"}),
        ("number", "set_people", {
            "name": "Set people", "command_topic": topics.set, "state_topic": state,
            "value_template": "{{ value_json.occupancy }}", "min": 0, "max": MAX_SETTABLE_COUNT, "step": 1,
            "mode": "box", "entity_category": "config", "icon": "mdi:account-edit"}),
        ("button", "reset", {
            "name": "Reset count", "command_topic": topics.set, "payload_press": "reset",
            "entity_category": "config", "icon": "mdi:restart"}),
    ]


def door_discovery(prefix: str, node_id: str, device: dict, topics: Topics) -> list[tuple[str, str]]:
    """Retained discovery configs for one door: counts, commands and sensor/model health."""
    health = topics.health
    diagnostic = {"entity_category": "diagnostic", "state_topic": health}
    entities = _count_entities(topics) + [
        ("binary_sensor", "sensor_problem", {
            **diagnostic, "name": "Sensor problem", "device_class": "problem",
            "value_template": "{{ 'OFF' if value_json.sensor_ok else 'ON' }}",
            "json_attributes_topic": health}),
        ("sensor", "model", {**diagnostic, "name": "Model", "value_template": "{{ value_json.model }}",
                             "icon": "mdi:brain"}),
        ("sensor", "backend", {**diagnostic, "name": "Inference backend",
                               "value_template": "{{ value_json.backend }}", "icon": "mdi:chip"}),
        ("sensor", "latency", {**diagnostic, "name": "Frame latency", "unit_of_measurement": "µs",
                               "state_class": "measurement", "value_template": "{{ value_json.latency_us }}",
                               "icon": "mdi:timer-outline"}),
        ("sensor", "fps", {**diagnostic, "name": "Frame rate", "unit_of_measurement": "fps",
                           "state_class": "measurement", "value_template": "{{ value_json.fps }}",
                           "icon": "mdi:camera-timer"}),
    ]
    return [_config(prefix, component, node_id, object_id, device, topics.availability, fields)
            for component, object_id, fields in entities]


def room_discovery(prefix: str, node_id: str, device: dict, topics: Topics,
                   doors: dict[str, str], with_lights: bool) -> list[tuple[str, str]]:
    """Retained discovery configs for a room: counts, commands, one connectivity per door."""
    entities = _count_entities(topics)
    for door_id, door_name in doors.items():
        entities.append(("binary_sensor", f"door_{door_id}", {
            "name": f"Door {door_name}", "device_class": "connectivity", "entity_category": "diagnostic",
            "state_topic": topics.doors, "value_template": f"{{{{ value_json['{door_id}'] }}}}",
            "payload_on": ONLINE, "payload_off": OFFLINE}))
    if with_lights:
        entities.append(("binary_sensor", "lights", {
            "name": "Lights", "device_class": "light", "entity_category": "diagnostic",
            "state_topic": topics.state, "value_template": "{{ value_json.lights }}",
            "payload_on": "ON", "payload_off": "OFF"}))
    return [_config(prefix, component, node_id, object_id, device, topics.availability, fields)
            for component, object_id, fields in entities]
