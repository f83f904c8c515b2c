"""Play a recording back as a sensor (``--sensor replay:PATH.h5``).

Frames keep the recording's own timestamps and indices, so counts and events computed from
a replay line up with the file. The recording is read in chunks: memory stays bounded
however long it is. Pacing is ``fps * speed`` frames per second of wall time (``speed=None``:
as fast as possible); at the end :class:`~thermalcount.errors.EndOfStream` is raised.
"""

from __future__ import annotations

from typing import Optional

from thermalcount.errors import EndOfStream, RecordingError
from thermalcount.sensors.base import Pacer, Sensor, SensorFrame, SensorInfo


class ReplaySensor(Sensor):
    """A recording as a finite sensor. ``start`` skips that many frames first."""

    finite = True

    def __init__(self, path, *, speed: Optional[float] = 1.0, chunk_frames: int = 4096, start: int = 0,
                 clock=None, sleep=None):
        from thermalcount.store import open_recording

        self.recording = open_recording(path)
        recording = self.recording
        if not recording.fps > 0:  # NaN or missing: a file we cannot pace
            recording.close()
            raise RecordingError(f"{path} has no valid fps attribute; it cannot be replayed at real time")
        attrs = recording.attrs
        self.info = SensorInfo(
            sensor="replay",
            fps=recording.fps,
            address=attrs.get("address"),
            bus=attrs.get("bus"),
            orientation=attrs.get("orientation") or "rotate=0,mirror=none",
            extra={"replay_of": str(recording.path), "recorded_with": attrs.get("sensor", "unknown")},
        )
        self.n_frames = recording.n_frames
        self._chunk_frames = max(1, int(chunk_frames))
        self._pacer = Pacer(recording.fps, speed, clock=clock, sleep=sleep)
        self._next = max(0, int(start))
        self._chunk = None  # (start, frames, timestamps, thermistor or None)

    def _load_chunk(self, index: int):
        recording = self.recording
        stop = min(index + self._chunk_frames, self.n_frames)
        self._chunk = (index, recording.read(index, stop), recording.timestamps(index, stop),
                       recording.thermistor(index, stop))
        return self._chunk

    def read(self) -> SensorFrame:
        index = self._next
        if self.recording is None or index >= self.n_frames:
            raise EndOfStream(f"end of recording after {self.n_frames} frames")
        chunk = self._chunk
        if chunk is None or not chunk[0] <= index < chunk[0] + len(chunk[1]):
            chunk = self._load_chunk(index)
        start, frames, timestamps, thermistor = chunk
        k = index - start
        self._pacer.wait()
        self._next = index + 1
        return SensorFrame(frames[k].copy(), float(timestamps[k]), index,
                           None if thermistor is None else float(thermistor[k]))

    def close(self) -> None:
        if self.recording is not None:
            self.recording.close()
            self.recording = None

