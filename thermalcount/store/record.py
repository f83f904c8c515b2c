"""The record workflow: read frames from a sensor and write them to a recording.

No Click and no terminal here: :func:`record` reports through callbacks, the CLI
(``cli/record_cmd.py``) renders them. Sensor faults never end a recording: a failed read
is retried and reported as :mod:`thermalcount.sensors.outage` says (the policy ``run``
follows too). Frames are counted as dropped when the sensor's stream index skips.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from thermalcount.errors import EndOfStream, OutputPathError, SensorError, UsageError
from thermalcount.sensors.outage import SensorOutages
from thermalcount.store import PIXEL_RANGE_C


@dataclass
class RecordStats:
    """What happened during one :func:`record` call (live while it runs)."""

    frames: int = 0  # frames written by this call
    dropped: int = 0  # frames the sensor skipped (its stream index jumped)
    sensor_errors: int = 0  # failed reads, each retried
    outages: int = 0  # runs of two or more consecutive failed reads
    events: int = 0  # ground-truth events stored (simulator only)
    suspect_frames: int = 0  # frames stored with NaN or a pixel outside -55..125 °C
    fps: float = 10.0  # the sensor's frame rate
    first_index: Optional[int] = None  # sensor stream index of the first frame written
    last_index: Optional[int] = None  # ... and of the latest
    started: float = field(default_factory=time.monotonic)
    finished: Optional[float] = None
    stopped_by: str = ""  # "frames", "duration", "end of stream", "stop", "error"
    sensor_problem: Optional[str] = None  # the current outage's message, None when healthy
    last_pixels: object = None  # the latest (8, 8) frame, for previews

    @property
    def elapsed(self) -> float:
        end = self.finished if self.finished is not None else time.monotonic()
        return max(end - self.started, 0.0)

    @property
    def rate(self) -> float:
        """Frames written per second of wall time."""
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def recorded_seconds(self) -> float:
        """Recording covered so far, in sensor frame periods (dropped frames included).

        Counted in frames rather than timestamps because sources stamp differently: the
        simulator uses a virtual clock, the emulated sensor the wall clock even at
        ``--speed max``. Frame periods mean the same for every source.
        """
        if self.first_index is None or self.last_index is None:
            return 0.0
        return (self.last_index - self.first_index + 1) / self.fps


Notice = Callable[[str, str], None]  # (kind, one-line message); kinds: "fault", "glitch", "recovered"


def record(sensor, writer, *, max_frames: Optional[int] = None, duration: Optional[float] = None,
           on_frame: Optional[Callable] = None, on_notice: Optional[Notice] = None,
           stop_event: Optional[threading.Event] = None, stats: Optional[RecordStats] = None,
           speed: Optional[float] = 1.0, clock=time.monotonic) -> RecordStats:
    """Copy frames from ``sensor`` into ``writer`` until a limit, the end of a replay or a stop.

    ``max_frames`` counts frames written; ``duration`` is seconds of recording counted in
    sensor frame periods (so ``--speed max`` records the same span faster), plus wall time
    while the sensor is in an outage. ``on_frame(frame, stats)`` runs after each write;
    ``on_notice(kind, message)`` when a sensor problem starts ("fault" for an outage,
    "glitch" for a lone failed read) and ends ("recovered"), as the outage policy says;
    ``speed`` None (a flat-out source) retries without waiting. ``stop_event`` ends the recording cleanly when set (signal handlers set it). Writer
    errors (disk full) propagate with ``error.stats`` set; the writer is not closed here.
    """
    if max_frames is not None and max_frames < 1:
        raise UsageError("--frames must be at least 1")
    if duration is not None and duration <= 0:
        raise UsageError("--duration must be longer than zero")
    stats = stats if stats is not None else RecordStats()
    stop_event = stop_event or threading.Event()
    truth = getattr(sensor, "ground_truth", None)
    truth_seen = len(truth) if truth is not None else 0
    expected_index = None
    outages = SensorOutages("recording", speed=speed, clock=clock)
    last_frame_wall = clock()
    info = getattr(sensor, "info", None)
    fps = getattr(info, "fps", None) or 10.0
    stats.fps = float(fps)

    try:
        while True:
            if stop_event.is_set():
                stats.stopped_by = "stop"
                break
            if max_frames is not None and stats.frames >= max_frames:
                stats.stopped_by = "frames"
                break
            if duration is not None and _span(stats, outages.since, last_frame_wall, clock) >= duration:
                stats.stopped_by = "duration"
                break
            try:
                frame = sensor.read()
            except EndOfStream:
                stats.stopped_by = "end of stream"
                break
            except SensorError as error:
                notice = outages.failed(error)
                stats.sensor_errors, stats.outages = outages.failed_reads, outages.outages
                if notice is not None:
                    stats.sensor_problem = outages.problem
                    if on_notice:
                        on_notice(notice.kind, notice.message)
                stop_event.wait(outages.retry_wait())
                continue

            if outages.since is not None:
                notice = outages.read_ok()
                stats.sensor_problem = None
                if notice is not None and on_notice:
                    on_notice(notice.kind, notice.message)
            last_frame_wall = clock()

            if expected_index is not None and frame.index > expected_index:
                stats.dropped += frame.index - expected_index
            expected_index = frame.index + 1

            writer.append(frame.pixels, frame.time, frame.thermistor)
            stats.frames += 1
            # Stored as read (the recording is the evidence); counted so the user sees it.
            if not _plausible(frame.pixels):
                stats.suspect_frames += 1
            if stats.first_index is None:
                stats.first_index = frame.index
            stats.last_index = frame.index
            stats.last_pixels = frame.pixels

            if truth is not None and len(truth) > truth_seen:
                new = truth[truth_seen:]
                truth_seen = len(truth)
                index_offset = writer.frames_written - 1 - frame.index  # file index - stream index
                writer.add_events([e.frame + index_offset for e in new], [e.time for e in new],
                                  [e.direction for e in new])
                stats.events += len(new)
            if on_frame:
                on_frame(frame, stats)
    except OutputPathError as error:
        stats.stopped_by = "error"
        error.stats = stats
        raise
    finally:
        stats.finished = time.monotonic()
    return stats


def _span(stats: RecordStats, outage_started, last_frame_wall, clock) -> float:
    span = stats.recorded_seconds
    if outage_started is not None or stats.first_index is None:
        # No frames are coming: let the wall clock count so an outage cannot stall forever.
        span += clock() - last_frame_wall
    return span


def _plausible(pixels) -> bool:
    low, high = PIXEL_RANGE_C
    lowest, highest = float(pixels.min()), float(pixels.max())
    return low <= lowest and highest <= high  # False for NaN too
