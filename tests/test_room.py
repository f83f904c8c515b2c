"""The room aggregator: the pure count, then doors and room over a real mosquitto."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import namedtuple
from pathlib import Path

import pytest
from click.testing import CliRunner

from thermalcount.cli import cli
from thermalcount.errors import UsageError
from thermalcount.mqtt.door import DoorPublisher
from thermalcount.mqtt.room import RoomCount, RoomService

sys.path.insert(0, str(Path(__file__).parent))
from mqtt_broker import Mosquitto, Observer, broker, observers  # noqa: E402,F401

Event = namedtuple("Event", "frame time direction occupancy")  # the CountEvent contract
FAST = {"reconnect_delay": (0.05, 0.3)}


# -- the pure core ----------------------------------------------------------------------------

def event(frame, direction, session="s1", seq=None):
    return {"frame": frame, "direction": direction, "session": session, "time": frame / 10,
            "seq": frame if seq is None else seq}


def test_in_adds_out_removes_and_the_count_never_goes_negative():
    room = RoomCount({"front": "Front", "back": "Back"})
    assert room.handle_event("front", event(1, "out"))
    assert (room.occupancy, room.exits, room.clamped) == (0, 1, 1)
    for frame, door, direction in [(2, "front", "in"), (3, "back", "in"), (4, "front", "in"), (5, "back", "out")]:
        assert room.handle_event(door, event(frame, direction))
    assert (room.occupancy, room.entries, room.exits) == (2, 3, 2)
    assert room.last_event["door"] == "back" and room.last_event["direction"] == "out"
    assert room.state() == {"occupancy": 2, "occupied": "ON", "entries": 3, "exits": 2}


def test_redelivered_events_count_once_but_a_restarted_door_counts_again():
    room = RoomCount({"front": "Front", "back": "Back"})
    assert room.handle_event("front", event(7, "in"))
    assert not room.handle_event("front", event(7, "in"))  # QoS 1 re-delivery
    assert room.handle_event("back", event(7, "in"))  # same frame number, other door
    assert room.handle_event("front", event(7, "in", session="s2"))  # door restarted, frames from 0 again
    assert (room.occupancy, room.duplicates, room.status["front"].duplicates) == (3, 1, 1)
    # Two people side by side: two events in one frame are two events.
    assert room.handle_event("back", event(9, "in", seq=20)) and room.handle_event("back", event(9, "in", seq=21))
    assert room.occupancy == 5


def test_events_without_a_sequence_number_fall_back_to_frame_and_direction():
    room = RoomCount({"front": "Front"})
    plain = {"frame": 3, "direction": "in", "session": "x"}
    assert room.handle_event("front", plain) and not room.handle_event("front", dict(plain))
    assert room.handle_event("front", {**plain, "direction": "out"}) and room.occupancy == 0


@pytest.mark.parametrize("door, payload", [
    ("unknown", event(1, "in")), ("front", event(1, "sideways")), ("front", {"direction": "in"}),
    ("front", {"frame": True, "direction": "in"}), ("front", None), ("front", [1, 2]),
])
def test_junk_and_unknown_doors_are_rejected(door, payload):
    room = RoomCount({"front": "Front"})
    assert not room.handle_event(door, payload)
    assert (room.occupancy, room.rejected) == (0, 1)


def test_availability_and_manual_set():
    room = RoomCount({"front": "Front", "back": "Back"})
    assert room.doors_payload() == {"front": "offline", "back": "offline"}
    assert room.handle_availability("front", True) and not room.handle_availability("front", True)
    assert room.handle_availability("back", False) and not room.handle_availability("nope", True)
    assert room.doors_payload() == {"front": "online", "back": "offline"}
    room.set_occupancy(5)
    assert room.handle_event("back", event(1, "out")) and room.occupancy == 4
    with pytest.raises(ValueError):
        room.set_occupancy(-1)
    with pytest.raises(UsageError):
        RoomCount({})


# -- over a real broker -----------------------------------------------------------------------

@pytest.fixture
def running_room(broker):
    services = []

    def start(**kw):
        service = RoomService(broker.url, **{**FAST, **kw})
        service.start()
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        services.append((service, thread))
        # "online" is published after the subscriptions on the same connection, so once it
        # is seen the room cannot miss a door's (non-retained) event.
        watcher = Observer(broker.port, service.topics.availability)
        watcher.wait_payload(service.topics.availability, "online")
        watcher.close()
        return service

    yield start
    for service, thread in services:
        service.stop()
        thread.join(5)
        service.close()


def wait_until(predicate, timeout=10.0, what="a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def door_stream(seed: int, n_frames: int):
    """One door's crossings from the simulator's ground truth, with the door's own count."""
    from thermalcount.sensors.sim.simulator import simulate

    occupancy, events = 0, []
    for truth in simulate(n_frames, seed=seed).events:
        occupancy += 1 if truth.direction == "in" else -1
        events.append(Event(truth.frame, truth.time, truth.direction, occupancy))
    return events


def random_walk(seed: int, n: int):
    """n crossings whose running count never drops below 0 (so no interleaving clamps)."""
    rng, occupancy, events = random.Random(seed), 0, []
    for frame in range(n):
        direction = "in" if occupancy == 0 or rng.random() < 0.5 else "out"
        occupancy += 1 if direction == "in" else -1
        events.append(Event(frame, frame / 10, direction, occupancy))
    return events


def publish_concurrently(url, streams: dict):
    doors = {name: DoorPublisher(url, door=name, room="living", max_queue=100_000, **FAST) for name in streams}
    for door in doors.values():
        door.start()
    wait_until(lambda: all(d.status["connected"] for d in doors.values()), what="doors connected")

    def replay(name):
        for item in streams[name]:
            doors[name].publish_event(item)
            doors[name].publish_state(item.occupancy, 0, 0)

    threads = [threading.Thread(target=replay, args=(name,)) for name in streams]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return doors, started


def expected_room(streams: dict) -> int:
    return sum(1 if e.direction == "in" else -1 for stream in streams.values() for e in stream)


def people_inside_at_start(streams: dict) -> int:
    """The simulated room is not empty at the start: the people each door sees leave first."""
    return sum(max(0, -min(e.occupancy for e in stream)) for stream in streams.values())


@pytest.mark.slow
def test_two_simulated_doors_replayed_at_once_give_the_room_count(broker, running_room, observers):
    streams = {"front": door_stream(seed=11, n_frames=6000), "garden": door_stream(seed=12, n_frames=6000)}
    assert all(len(s) >= 20 for s in streams.values())
    room = running_room(name="Living room", doors=["front", "garden"])
    watcher = observers(broker.port, "thermalcount/room/living_room/#")
    watcher.wait_payload("thermalcount/room/living_room/availability", "online")
    # Set by hand, as a user would: with the people already inside, no interleaving of the two
    # doors' events can take the count below 0, so the final count does not depend on order.
    inside = people_inside_at_start(streams)
    watcher.publish("thermalcount/room/living_room/set", str(inside))
    wait_until(lambda: room.count.occupancy == inside, what="count set by hand")

    doors, _ = publish_concurrently(broker.url, streams)
    total = sum(len(s) for s in streams.values())
    wait_until(lambda: room.count.entries + room.count.exits == total, what="all events counted")
    assert room.count.occupancy == inside + expected_room(streams) and room.count.clamped == 0
    state = watcher.wait_for(lambda: (lambda m: m if m and json.loads(m.payload)["entries"] + json.loads(
        m.payload)["exits"] == total else None)(watcher.last("thermalcount/room/living_room/state")),
        what="final room state")
    assert json.loads(state.payload)["occupancy"] == inside + expected_room(streams)
    assert json.loads(watcher.last("thermalcount/room/living_room/doors").payload) == {
        "front": "online", "garden": "online"}
    for door in doors.values():
        door.close()

    late = observers(broker.port, "homeassistant/+/thermalcount_room_living_room/+/config")
    configs = late.wait_for(lambda: (lambda found: found if len(found) >= 9 else None)(late.messages),
                            what="room discovery")
    by_id = {m.topic.split("/")[3]: json.loads(m.payload) for m in configs if m.retain}
    assert by_id["occupied"]["device_class"] == "occupancy"
    assert by_id["door_front"]["device_class"] == "connectivity"
    assert by_id["door_garden"]["value_template"] == "{{ value_json['garden'] }}"
    assert by_id["people"]["device"]["name"] == "Living room room"


@pytest.mark.slow
def test_events_per_second_through_one_room_connection():
    # Two doors flat out is a burst no doorway produces. mosquitto keeps at most 1000 queued
    # messages per subscriber by default and drops the rest of such a burst; lift that limit
    # so the figure is what one room connection takes in, not the broker's queue policy.
    server = Mosquitto(extra=("max_queued_messages 0",)).start()
    room = RoomService(server.url, name="hall", doors=["front", "garden"], **FAST)
    room.start()
    thread = threading.Thread(target=room.run, daemon=True)
    thread.start()
    watcher = Observer(server.port, room.topics.availability)
    watcher.wait_payload(room.topics.availability, "online")
    watcher.close()
    try:
        _measure_two_doors(server, room)
    finally:
        room.stop()
        thread.join(5)
        room.close()
        server.close()


def _measure_two_doors(server, room):
    streams = {"front": random_walk(1, 4000), "garden": random_walk(2, 4000)}
    wait_until(lambda: room.status["connected"], what="room connected")
    doors, started = publish_concurrently(server.url, streams)
    total = sum(len(s) for s in streams.values())
    wait_until(lambda: room.count.entries + room.count.exits == total, timeout=30, what="all events counted")
    elapsed = time.perf_counter() - started
    print(f"\ntwo doors -> one room connection: {total} events in {elapsed:.2f} s = {total / elapsed:.0f} events/s")
    assert room.count.occupancy == expected_room(streams) and room.count.duplicates == 0
    for door in doors.values():
        door.close()


KILLABLE_DOOR = textwrap.dedent("""
    import sys, time
    from collections import namedtuple
    from thermalcount.mqtt.door import DoorPublisher
    Event = namedtuple("Event", "frame time direction occupancy")
    door = DoorPublisher(sys.argv[1], door=sys.argv[2], reconnect_delay=(0.05, 0.3))
    door.start()
    while not door.status["connected"]:
        time.sleep(0.01)
    for frame, direction in enumerate(sys.argv[3].split(",")):
        door.publish_event(Event(frame, frame / 10, direction, 0))
    while door.status["queued"]:
        time.sleep(0.01)
    print("published", flush=True)
    time.sleep(60)
""")


def start_door_process(url, name, directions):
    process = subprocess.Popen([sys.executable, "-c", KILLABLE_DOOR, url, name, ",".join(directions)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "published"
    return process


@pytest.mark.slow
def test_a_killed_door_goes_unavailable_and_the_others_keep_counting(broker, running_room, observers):
    notices = []
    room = running_room(name="kitchen", doors=["front", "back"], reporter=notices.append)
    watcher = observers(broker.port, "thermalcount/room/kitchen/doors")
    wait_until(lambda: room.status["connected"], what="room connected")
    front = DoorPublisher(broker.url, door="front", **FAST)
    front.start()
    back = start_door_process(broker.url, "back", ["in", "in", "in"])
    try:
        front.publish_event(Event(1, 0.1, "in", 1))
        wait_until(lambda: room.count.occupancy == 4, what="4 people in")
        wait_until(lambda: room.count.status["back"].online is True, what="back online")

        os.kill(back.pid, signal.SIGKILL)
        back.wait(5)
        watcher.wait_for(lambda: (lambda m: m and json.loads(m.payload)["back"] == "offline")(
            watcher.last("thermalcount/room/kitchen/doors")), what="back door offline")
        assert any("door back is offline" in n for n in notices)
        front.publish_event(Event(2, 0.2, "out", 0))
        front.publish_event(Event(3, 0.3, "out", 0))
        wait_until(lambda: room.count.occupancy == 2, what="front still counting")
        assert json.loads(watcher.last("thermalcount/room/kitchen/doors").payload)["front"] == "online"

        # The door comes back with its frame numbers starting at 0 again: a new session, counted.
        back = start_door_process(broker.url, "back", ["out", "out"])
        wait_until(lambda: room.count.occupancy == 0 and room.count.status["back"].online, what="back counted again")
        assert room.count.duplicates == 0 and room.count.entries == 4 and room.count.exits == 4
    finally:
        front.close()
        back.kill()
        back.wait(5)


def test_room_commands_and_lights(broker, running_room, observers):
    from thermalcount.lights import open_lights

    printed = io.StringIO()
    lights = open_lights("console", stream=printed)
    room = running_room(name="office", doors=["door"], lights=lights, off_delay=0.3)
    sender = observers(broker.port, "thermalcount/room/office/state")
    wait_until(lambda: room.status["connected"], what="room connected")
    sender.publish("thermalcount/room/office/set", "3")
    wait_until(lambda: room.count.occupancy == 3 and lights.status().applied is True, what="set to 3, lights on")
    door = DoorPublisher(broker.url, door="door", **FAST)
    door.start()
    door.publish_event(Event(5, 0.5, "out", 0))
    wait_until(lambda: room.count.occupancy == 2, what="one out")
    sender.publish("thermalcount/room/office/set", "reset")
    wait_until(lambda: lights.status().applied is False, what="lights off after the off-delay")
    sender.wait_for(lambda: json.loads(sender.last("thermalcount/room/office/state").payload) == {
        "occupancy": 0, "occupied": "OFF", "entries": 0, "exits": 1, "lights": "OFF"}, what="lights OFF state")
    # "DATE TIME lights on (room occupancy 3)": the word after "lights" is the switch.
    assert [line.split()[3] for line in printed.getvalue().splitlines()] == ["on", "off"]
    assert "(room occupancy 3)" in printed.getvalue() and "(room off-delay expired" in printed.getvalue()
    door.close()


@pytest.mark.slow
def test_room_command_line(broker, observers):
    def door_later():
        watcher = Observer(broker.port, "thermalcount/room/den/availability")
        watcher.wait_payload("thermalcount/room/den/availability", "online", timeout=10)
        watcher.close()
        door = DoorPublisher(broker.url, door="den door", **FAST)
        door.start()
        for frame in range(3):
            door.publish_event(Event(frame, frame / 10, "in", frame + 1))
        door.close()

    thread = threading.Thread(target=door_later)
    thread.start()
    result = CliRunner().invoke(cli, ["room", "--mqtt", broker.url, "--name", "den", "--door", "den door",
                                      "--no-dashboard", "--duration", "2"])
    thread.join()
    assert result.exit_code == 0, result.output
    assert "occupancy 3, 3 in, 0 out" in result.output


@pytest.mark.parametrize("config_text, option, said", [
    ("[lights]\noff_delay = 0\n", [], True),  # honoured, as by run: off at once
    pytest.param("[hue]\noff_delay = 0\n", [], True, marks=pytest.mark.slow),  # the old place is still read
    pytest.param("[lights]\noff_delay = 0\n", ["--off-delay", "600"], False, marks=pytest.mark.slow),  # the option wins
])
def test_room_takes_the_off_delay_from_config_toml_like_run(broker, config_text, option, said):
    from thermalcount.config import config_path

    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text(config_text)
    result = CliRunner().invoke(cli, ["room", "--mqtt", broker.url, "--name", "den", "--door", "den door",
                                      "--lights", "console", "--no-dashboard", "--duration", "1", *option])
    assert result.exit_code == 0, result.output
    # An empty room with a delay of 0 switches off at the first look; with 600 s, not in 1 s.
    assert ("lights off (room off-delay expired (room empty for 0 s))" in result.stdout) is said, result.stdout


@pytest.mark.parametrize("args, words", [
    (["--name", "den"], "--door"),
    (["--name", "den", "--door", "a", "--mqtt", "mqtt://u:pw@host"], "THERMALCOUNT_MQTT_PASSWORD"),
    (["--name", "den/x", "--door", "a", "--mqtt", "mqtt://host"], "may only use letters"),
    (["--name", "den", "--door", "a", "--mqtt", "mqtt://host", "--group", "x"], "need --lights hue"),
    (["--name", "den", "--door", "a"], "no broker"),
])
def test_room_bad_input_is_one_line(args, words):
    result = CliRunner().invoke(cli, ["room", *args])
    assert result.exit_code == 2
    assert words in result.output and result.output.count("\n") == 1 and "pw" not in result.output


@pytest.mark.slow
def test_run_with_mqtt_feeds_a_room_end_to_end(broker, running_room, observers):
    """`thermalcount run --mqtt` on the simulator: the room ends where the door's own count ends."""
    room = running_room(name="living", doors=["front"])
    watcher = observers(broker.port, "thermalcount/door/front/#")
    result = CliRunner().invoke(cli, ["run", "--sensor", "sim", "--speed", "max", "--duration", "5m", "--seed", "3",
                                      "--lights", "none", "--mqtt", broker.url, "--door", "front", "--room", "living",
                                      "--no-dashboard"])
    assert result.exit_code == 0, result.output
    door_state = watcher.wait_for(lambda: (lambda m: m and json.loads(m.payload))(
        watcher.last("thermalcount/door/front/state")), what="door state")
    assert door_state["entries"] + door_state["exits"] > 5
    wait_until(lambda: room.count.entries + room.count.exits == door_state["entries"] + door_state["exits"],
               what="room has every door event")
    # Same events in the same order, both clamped at 0 the same way: the same count.
    assert (room.count.occupancy, room.count.entries, room.count.exits) == (
        door_state["occupancy"], door_state["entries"], door_state["exits"])
    watcher.wait_payload("thermalcount/door/front/availability", "offline")  # clean stop said so
    wait_until(lambda: room.count.status["front"].online is False, what="room saw the door go offline")
