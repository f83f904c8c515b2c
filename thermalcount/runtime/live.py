"""The live frame loop behind ``thermalcount run``: sensor → model → counter → lights / MQTT.

This is the only place in the runtime that owns a clock: the counter and the light policy
are pure and get time as an argument. Nothing here may block on the network: lights and
MQTT take a desired state and apply it from their own threads. Sensor faults after a good
start never end the loop: retried and reported as :mod:`thermalcount.sensors.outage` says
(the policy ``record`` follows too), and the sensor recovers itself.

With ``find_axis`` (``run --orientation auto``, the default) the loop also finds the travel
axis from the frames while it counts, and re-counts what came before if it is not the
model's: :mod:`thermalcount.runtime.axis_watch` says how, and what the events, the
occupancy and the lights do meanwhile.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

import numpy as np

from thermalcount.errors import EndOfStream, SensorError
from thermalcount.runtime.notices import Notices
from thermalcount.runtime.timestamps import TimeGuard
from thermalcount.sensors.outage import GLITCH_NOTICE_INTERVAL, SensorOutages


@dataclass
class LiveSnapshot:
    """What the dashboard and log lines show; refreshed by the loop, read by the renderer."""

    frame_index: int = -1
    frame_time: float = 0.0
    pixels: Optional[np.ndarray] = None
    state: Optional[int] = None
    state_name: str = "-"
    occupancy: int = 0
    entries: int = 0
    exits: int = 0
    frames: int = 0
    # Longest wall-clock gap between two consecutive frames (stalls show up here).
    max_frame_gap: float = 0.0
    sensor_errors: int = 0
    sensor_problem: Optional[str] = None
    last_events: deque = field(default_factory=lambda: deque(maxlen=8))
    latencies_us: deque = field(default_factory=lambda: deque(maxlen=2048))
    #: Repeats collapsed, warnings kept before info (see runtime/notices.py).
    notices: Notices = field(default_factory=Notices)
    started: float = field(default_factory=time.monotonic)
    #: The travel axis: being found, found (and what was done), or as set.
    travel_axis: str = ""

    def latency_percentiles(self) -> Optional[tuple[float, float, float]]:
        if not self.latencies_us:
            return None
        # list() copies the deque atomically under the GIL while the loop keeps appending.
        values = np.asarray(list(self.latencies_us), dtype=np.float64)
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return float(p50), float(p90), float(p99)


@dataclass
class LiveStats:
    frames: int
    entries: int
    exits: int
    occupancy: int
    sensor_errors: int
    stopped_by: str  # "end-of-stream", "duration", "signal"
    wall_seconds: float
    max_frame_gap: float
    #: The travel-axis decision of ``find_axis`` (an AxisChoice; its ``found`` is None when
    #: the frames never told), or None without ``find_axis``.
    axis: Optional[object] = None


class LiveLoop:
    """Runs frames until the source ends, the duration is reached or ``stop()`` is called.

    ``reporter`` receives human-readable notices (outages, recoveries, light changes); the
    CLI prints them as log lines or shows them in the dashboard.
    """

    def __init__(
        self,
        sensor,
        model,
        counter,
        *,
        lights=None,
        light_policy=None,
        publisher=None,
        events_out=None,
        reporter: Optional[Callable[[str], None]] = None,
        speed: Optional[float] = 1.0,
        status_interval: Optional[float] = None,
        health_interval: float = 10.0,
        model_label: str = "",
        wall_clock: Callable[[], float] = time.monotonic,
        find_axis: bool = False,
        axis_label: str = "",
    ):
        self.sensor = sensor
        self.model = model
        self.counter = counter
        self.lights = lights
        self.light_policy = light_policy
        self.publisher = publisher
        if events_out is not None and not hasattr(events_out, "append"):
            from thermalcount.runtime.event_log import StreamEvents

            events_out = StreamEvents(events_out)  # a plain text stream
        self.events_out = events_out
        self.reporter = reporter or (lambda message: None)
        self.speed = speed
        self.status_interval = status_interval
        self.health_interval = health_interval
        self.model_label = model_label
        self._wall = wall_clock
        self._stop = threading.Event()
        self._commands: "queue.SimpleQueue[tuple[str, Optional[int]]]" = queue.SimpleQueue()
        self.snapshot = LiveSnapshot(travel_axis=axis_label)
        self._names = [m.name for m in model.meanings]  # meaning k is cluster k (checked on load)
        self.find_axis = find_axis
        self._watch = None  # the AxisWatch while the travel axis is being found
        self._axis = None  # its decision

    # -- control from other threads -------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def command(self, name: str, value: Optional[int] = None) -> None:
        """Queue a manual correction ("set" with a value, or "reset"); applied between frames."""
        self._commands.put((name, value))

    # -- the loop ----------------------------------------------------------------------------
    def run(self, *, duration: Optional[float] = None, max_frames: Optional[int] = None) -> LiveStats:
        started = self._wall()
        first_frame_time: Optional[float] = None
        last_frame_time: Optional[float] = None
        last_frame_wall = started
        outages = SensorOutages("counting", speed=self.speed, clock=self._wall)
        stopped_by = "signal"
        snapshot = self.snapshot
        # A new stream: a model that keeps a per-pixel background starts learning this one.
        self.model.start_stream(self.sensor.info.fps)
        # A wall clock stepped back by NTP, or a replayed file with NaN times, would break
        # every duration the counter measures: repaired, and said (at most once a minute).
        times = TimeGuard(self.sensor.info.fps)
        times_noticed, times_notice_at = 0, -GLITCH_NOTICE_INTERVAL
        if self.find_axis:
            from thermalcount.runtime.axis_watch import AxisWatch

            self._watch = AxisWatch(self.model, self.counter, self.sensor.info.fps)
            snapshot.travel_axis = self._watch.status()
        watch = self._watch
        infer_one, settle = self.model.infer_one, self.model.settle
        update = self.counter.update
        perf = time.perf_counter
        n_states = len(self.model.meanings)
        next_status = started + self.status_interval if self.status_interval else None
        next_health = started

        while not self._stop.is_set():
            now = self._wall()
            if self.publisher is not None and now >= next_health:
                next_health = now + self.health_interval
                self._publish_health()
            if next_status is not None and now >= next_status:
                next_status += self.status_interval
                self.reporter(self.status_line())
            if self.events_out is not None and self.events_out.pending:
                self.events_out.retry()  # a failing event log: every few seconds
            if not self._commands.empty():  # raising queue.Empty every frame costs ~1 µs
                self._apply_commands(last_frame_time)
            try:
                frame = self.sensor.read()
            except EndOfStream:
                if self._watch is not None:  # decide with what there is, before closing
                    self._settle_axis(last_frame_time)
                # A replay ended: close the passage in progress like offline `count` does.
                finished = self.counter.finish()
                if finished:
                    self._emit(finished)
                stopped_by = "end-of-stream"
                break
            except SensorError as error:
                snapshot.sensor_errors += 1
                notice = outages.failed(error)
                if notice is not None:
                    snapshot.sensor_problem = outages.problem
                    next_health = 0.0  # tell Home Assistant now, not at the next interval
                    self._notice(notice.message, warning=True)
                # Keep the off-delay running while the sensor is away: advance the light
                # policy on the sensor's time base extrapolated from the wall clock.
                if last_frame_time is not None:
                    elapsed = (self._wall() - last_frame_wall) * (self.speed or 1.0)
                    self._update_lights(last_frame_time + elapsed)
                self._stop.wait(outages.retry_wait())
                continue

            just_recovered = outages.since is not None
            if just_recovered:
                notice = outages.read_ok()
                if notice is not None:
                    self._notice(notice.message, warning=True)
                    snapshot.sensor_problem = None
                    next_health = 0.0

            frame_time = times.one(frame.time, frame.index)
            if frame_time != frame.time:
                frame = replace(frame, time=frame_time)
                if times.repaired > times_noticed and self._wall() - times_notice_at >= GLITCH_NOTICE_INTERVAL:
                    times_noticed, times_notice_at = times.repaired, self._wall()
                    self._notice(times.warning())

            # --duration 10m at 10 FPS is frames 0..5999: a frame at or past the end is not
            # counted (the same frames `record --duration` would write).
            if duration is not None and first_frame_time is not None and frame.time - first_frame_time >= duration - 1e-6:
                stopped_by = "duration"
                break

            t0 = perf()
            state = infer_one(frame.pixels)
            if not 0 <= state < n_states:  # a damaged graph: stop in one line, not an IndexError
                raise self.model.state_error(state, f"frame {frame.index}")
            events = update(frame.time, state, frame.index)
            if events:
                self._emit(events)
            self._update_lights(frame.time)
            snapshot.latencies_us.append((perf() - t0) * 1e6)
            # The frame is decided (events out, lights set): now the model's deferred work, the
            # per-pixel background's update every 32nd frame (>= 31 us, was the frame's p99).
            # Outside the latency above, which is frame -> decision; bench times it apart.
            settle()
            # Until the travel axis is found: keep the frame; every CHECK_FRAMES frames, look.
            if watch is not None and watch.add(frame, state) and self._check_axis(frame.time):
                watch = None  # decided: from now on the plain path, maybe with a new counter
                infer_one, settle, update = self.model.infer_one, self.model.settle, self.counter.update

            if first_frame_time is None:
                first_frame_time = frame.time
            last_frame_time = frame.time
            now_wall = self._wall()
            if snapshot.frames and not just_recovered:
                snapshot.max_frame_gap = max(snapshot.max_frame_gap, now_wall - last_frame_wall)
            last_frame_wall = now_wall
            snapshot.frames += 1
            snapshot.frame_index = frame.index
            snapshot.frame_time = frame.time
            snapshot.pixels = frame.pixels
            snapshot.state = state
            snapshot.state_name = self._names[state]

            if max_frames is not None and snapshot.frames >= max_frames:
                stopped_by = "duration"
                break

        if self._watch is not None:  # stopped before the frames told
            self._settle_axis(last_frame_time)
        if times.repaired > times_noticed:  # the final figure, when it grew since it was said
            self._notice(times.warning())
        return LiveStats(
            frames=snapshot.frames,
            entries=self.counter.entries,
            exits=self.counter.exits,
            occupancy=self.counter.occupancy,
            sensor_errors=snapshot.sensor_errors,
            stopped_by=stopped_by,
            wall_seconds=self._wall() - started,
            max_frame_gap=snapshot.max_frame_gap,
            axis=self._axis,
        )

    def _publish_health(self) -> None:
        snap = self.snapshot
        latency = snap.latency_percentiles()
        elapsed = self._wall() - snap.started
        self.publisher.publish_health(
            sensor_ok=snap.sensor_problem is None, sensor_error=snap.sensor_problem,
            model=self.model_label, backend=getattr(self.model, "backend", ""),
            fps=snap.frames / elapsed if elapsed > 0 and snap.frames else None,
            latency_us=latency[0] if latency else None,
        )

    def status_line(self) -> str:
        snap = self.snapshot
        latency = snap.latency_percentiles()
        text = (f"status: {snap.frames} frames, occupancy {snap.occupancy}, "
                f"{snap.entries} in / {snap.exits} out, sensor errors {snap.sensor_errors}")
        if latency:
            text += f", latency p50 {latency[0]:.0f} µs p99 {latency[2]:.0f} µs"
        return text

    # -- the travel axis (find_axis) ---------------------------------------------------------
    def _check_axis(self, now: float) -> bool:
        """A look at the frames so far; True when the axis was decided (the loop re-binds)."""
        choice, final = self._watch.check(self.counter)
        if final:
            self._publish(final)
        if choice is None:
            self.snapshot.travel_axis = self._watch.status()
            return False
        self._adopt(choice, now)
        return True

    def _adopt(self, choice, now: Optional[float]) -> None:
        from thermalcount.sensors.reorient import ReorientedSensor

        watch, self._watch = self._watch, None
        self._axis = choice
        seconds = f"after {watch.seen / watch.fps:.0f} s of frames"
        if choice.orientation.is_identity:
            self._notice(f"{choice.describe()}; {seconds}, the {len(watch.held)} event(s) so far stand")
            self._release(watch)
            self.snapshot.travel_axis = f"{choice.found} (found {seconds}; the model's own)"
        else:
            base_in, base_out, _ = watch.marks[watch.start]
            before = (self.counter.entries - base_in, self.counter.exits - base_out)
            self.counter, events = watch.recount(self.model, self.counter)
            self.sensor = ReorientedSensor(self.sensor, choice.orientation)
            counted = (sum(e.direction == "in" for e in events), sum(e.direction == "out" for e in events))
            self._notice(f"{choice.describe()}; {seconds}, the last {watch.size} frames re-counted: "
                         f"{counted[0]} in, {counted[1]} out (counted along the model's axis before: "
                         f"{before[0]} in, {before[1]} out)")
            self._publish(events)
            self.snapshot.travel_axis = (f"{choice.found} (found {seconds}; frames transposed to the "
                                         f"model's {choice.model_axis})")
        self._sync_counts()
        for warning in self.counter.drain_warnings():
            self._notice(warning)
        if now is not None:
            self._update_lights(now)

    def _settle_axis(self, now: Optional[float]) -> None:
        """The stream ends: decide with what there is, or let the held events stand."""
        from thermalcount.model.travel_axis import AUTO, choose

        choice, final = self._watch.check(self.counter)
        if final:
            self._publish(final)
        if choice is not None:
            self._adopt(choice, now)
            return
        watch, self._watch = self._watch, None
        self._axis = choose(AUTO, watch.model_axis, watch.finder.finding)
        self._notice(f"{self._axis.describe()}; the {len(watch.held)} event(s) counted so stand")
        self._release(watch)
        self.snapshot.travel_axis = f"not found; the model's {watch.model_axis}"

    def _release(self, watch) -> None:
        """The held events and warnings are final."""
        events, warnings = watch.release_all()
        self._publish(events)
        for warning in warnings:
            self._notice(warning)

    # -- helpers -------------------------------------------------------------------------------
    def _emit(self, events) -> None:
        """New events from the counter: published, or held while the axis is being found."""
        if self._watch is not None:  # the counter's warnings are provisional too
            self._watch.hold(events, self.counter.drain_warnings())
            self._sync_counts()
            return
        self._publish(events)
        self._sync_counts()
        for warning in self.counter.drain_warnings():
            self._notice(warning)

    def _publish(self, events) -> None:
        """Final events: the log line, the event log, MQTT, the dashboard's list."""
        snapshot = self.snapshot
        for event in events:
            record = event.to_json()
            snapshot.last_events.append(record)
            self.reporter(f"{record['direction']:<3} frame {record['frame']} occupancy {record['occupancy']}")
            if self.events_out is not None:
                # Written at once, whole lines only; held and retried while the log fails.
                self.events_out.append(record)
            if self.publisher is not None:
                self.publisher.publish_event(event)

    def _sync_counts(self) -> None:
        snapshot = self.snapshot
        snapshot.occupancy = self.counter.occupancy
        snapshot.entries = self.counter.entries
        snapshot.exits = self.counter.exits
        if self.publisher is not None:
            self.publisher.publish_state(snapshot.occupancy, snapshot.entries, snapshot.exits)

    def _update_lights(self, now: float) -> None:
        if self.light_policy is None:
            return
        # The policy returns a value only when the desired state changes.
        desired = self.light_policy.update(now, self.counter.occupancy)
        if desired is not None and self.lights is not None:
            self.lights.set_on(desired, reason=self.light_policy.reason)

    def _apply_commands(self, now: Optional[float]) -> None:
        while not self._commands.empty():
            name, value = self._commands.get_nowait()
            if name == "reset":
                self.counter.set_occupancy(0)
                self._notice("occupancy reset to 0 by hand")
            elif name == "set" and value is not None:
                self.counter.set_occupancy(max(0, int(value)))
                self._notice(f"occupancy set to {max(0, int(value))} by hand")
            else:
                continue
            if self._watch is not None:  # a re-count applies it at the same place
                self._watch.correct(self.counter.occupancy)
            self._sync_counts()
            if now is not None:
                self._update_lights(now)

    def _notice(self, message: str, warning: bool = False) -> None:
        self.snapshot.notices.append(message, warning=warning)
        self.reporter(message)


