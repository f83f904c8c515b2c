"""Writing recordings, crash-safely: :class:`RecordingWriter` and :func:`write_recording`.
Crash safety comes from how the writer talks to HDF5, measured with h5py 3.16 / HDF5 2.0:

* Files use the oldest HDF5 format (``libver="earliest"``). Newer formats (and SWMR) set
  "file is open for write" flags in the superblock; after a SIGKILL those flags make every
  plain ``h5py.File(path)`` fail until someone runs ``h5clear``. The old format has no such
  flags, so a killed recording opens with plain h5py.
* Frames are buffered in memory and written in one batch per ``flush_interval`` (1 s):
  resize, write, ``H5Fflush``, ``fsync``. Between batches HDF5 holds no dirty state, so a
  kill at any moment leaves the file as of the last batch (at most ~1 s lost). A kill
  inside a batch can, rarely, leave the newest chunk unreadable; readers cut such a tail
  off (:func:`_readable_length`).
* A full disk in the middle of an HDF5 flush leaves half-written metadata (measured: zeroed
  frames, a crash on close). So before each batch the writer checks the free space and
  stops with :class:`DiskFullError` while the file is still intact.
* Other write errors (EFBIG from ``ulimit -f`` or FAT32's 4 GiB limit, EDQUOT, EIO) cannot
  be foreseen. The writer therefore talks to HDF5 through h5py's ``fileobj`` driver and a
  :class:`~thermalcount.support.safe_files.RollbackFile`: a failed write is caught in Python, HDF5
  never sees it, and the file is put back byte for byte as of the last batch.
* A new file or ``--overwrite`` is created under a hidden temporary name and renamed over
  the target only while holding HDF5's lock on it (:mod:`thermalcount.support.safe_files`): opening
  the target with ``"w"`` would truncate it even when another program has it open.
"""

from __future__ import annotations

import errno
import math
import os
import time as _time
from pathlib import Path
from typing import Optional

import h5py
import numpy as np

from thermalcount.errors import OutputPathError, RecordingError
from thermalcount.store.format import (CHUNK_FRAMES, COMPRESSION, DIRECTIONS, EVENT_DTYPE, FRAME_SHAPE, iso_time, one_line,
                                       write_layout)
from thermalcount.store.reader import CORRUPT_HDF5, check_readable_file, describe_open_error, validate
from thermalcount.support import safe_files


class DiskFullError(OutputPathError):
    """The disk holding a recording is (nearly) full; the file is intact up to the last batch."""


class RecordingWriter:
    """Appends frames to a recording, crash-safely. Use as a context manager.

    ``append=True`` adds to an existing recording (created if missing); ``overwrite=True``
    replaces it. Without either, an existing file raises :class:`OutputPathError` and is
    left untouched.
    """

    #: Stop with DiskFullError when less than this much space would be left after a batch.
    min_free_bytes = 1 << 20
    #: Write a batch early when this many frames are waiting (bounds memory at --speed max).
    max_buffered_frames = 8192

    def __init__(self, path, *, sensor_info=None, fps: Optional[float] = None,
                 append: bool = False, overwrite: bool = False, flush_interval: float = 1.0,
                 attrs: Optional[dict] = None, atomic: bool = False):
        self.path = Path(path)
        self.flush_interval = float(flush_interval)
        self._file = None
        self._disk = None  # the RollbackFile under the h5py file
        #: With ``atomic`` a new file keeps its temporary name until close() (simulate,
        #: import: all or nothing); without, it takes the target's name at once (record:
        #: a killed recorder leaves its frames under the name the user gave).
        self._temporary = None
        self._broken = False
        self._pending_frames: list = []
        self._pending_times: list = []
        self._pending_thermistor: list = []
        self._pending_events: list = []
        self._last_flush = _time.monotonic()
        if fps is None and sensor_info is not None:
            fps = sensor_info.fps
        exists = check_recording_path(self.path, append=append, overwrite=overwrite)
        if exists and append:
            self._open_existing(fps)
        else:
            self._create(sensor_info, 10.0 if fps is None else float(fps), attrs or {})
            if not atomic:
                self._publish()
        #: Frames on disk (synced); frames_written adds those still buffered in memory.
        self.frames_on_disk = int(self._file["frames"].shape[0])

    # -- set-up
    def _create(self, sensor_info, fps: float, extra: dict) -> None:
        if not math.isfinite(fps) or fps <= 0:
            raise OutputPathError(f"fps must be a positive number, got {fps!r}")
        temporary = safe_files.temporary_path(self.path)
        try:
            raw = safe_files.open_locked(temporary, "x+b")
        except OSError as error:
            if isinstance(error, OutputPathError):
                raise
            raise OutputPathError(f"cannot write {self.path}: {_os_reason(error)}") from None
        self._temporary = temporary
        self._disk = safe_files.RollbackFile(raw)
        try:
            h5file = h5py.File(self._disk, "w", libver="earliest")
        except BaseException as error:
            self._discard()
            if isinstance(error, (OSError, RuntimeError)):
                raise OutputPathError(f"cannot write {self.path}: {_os_reason(error)}") from None
            raise
        self._file = h5file
        self._new_file = True
        try:
            write_layout(h5file, sensor_info, fps, extra)
            self._sync()
        except BaseException as error:
            self._discard()  # no temporary file is left behind, whatever failed
            if isinstance(error, (OSError, RuntimeError)):
                raise OutputPathError(f"cannot write {self.path}: {_os_reason(error)}") from None
            raise

    def _publish(self) -> None:
        """Give the temporary file the target's name (refused if another program has it open)."""
        temporary, self._temporary = self._temporary, None
        try:
            safe_files.publish(temporary, self.path)
        except BaseException:
            self._temporary = temporary  # already removed by publish; just close our side
            self._discard()
            raise

    def _discard(self) -> None:
        """Close without publishing and delete the temporary file. Never raises."""
        h5file, self._file = self._file, None
        if h5file is not None:
            if self._disk is not None:
                self._disk.stop_writing()
            try:
                h5file.close()
            except Exception:
                pass
        if self._disk is not None:
            self._disk.close()
        safe_files.remove_quietly(self._temporary)
        self._temporary = None
    def _open_existing(self, fps) -> None:
        # Opened once, locked, through the rollback file, and checked there: the one-line
        # messages for damaged or foreign files are the reader's.
        try:
            check_readable_file(self.path)
        except RecordingError as error:
            raise OutputPathError(f"cannot append: {error}") from None
        try:
            raw = safe_files.open_locked(self.path, "r+b")
        except OutputPathError:
            raise
        except OSError as error:
            raise OutputPathError(f"cannot append to {self.path}: {_os_reason(error)}") from None
        self._disk = safe_files.RollbackFile(raw)
        try:
            h5file = h5py.File(self._disk, "r+")
        except (OSError, RuntimeError) as error:
            self._disk.close()
            raise OutputPathError(f"cannot append: {describe_open_error(self.path, str(error))}") from None
        try:
            n_frames, recovered = validate(h5file, self.path)  # "holds no frames" is fine here
        except RecordingError as error:
            h5file.close()
            self._disk.close()
            raise OutputPathError(f"cannot append: {error}") from None
        except CORRUPT_HDF5 as error:
            # A damaged header can pass h5py.File() and fail on the first lookup (reader.py).
            h5file.close()
            self._disk.close()
            raise OutputPathError(f"cannot append: {self.path} is a corrupt HDF5 file "
                                  f"({one_line(str(error))}); copy it again") from None
        stored_fps = float(h5file.attrs.get("fps", math.nan))
        if fps is not None and math.isfinite(stored_fps) and abs(stored_fps - float(fps)) > 1e-6:
            h5file.close()
            self._disk.close()
            raise OutputPathError(
                f"cannot append {float(fps):g} fps frames to {self.path}, recorded at "
                f"{stored_fps:g} fps; use another output file"
            )
        self._file = h5file
        self._new_file = False
        if recovered:
            # A killed writer may have lengthened one dataset before the others: cut them all
            # to the frames every dataset holds, so the new frames line up.
            for name in ("frames", "timestamps", "thermistor"):
                if name in h5file and h5file[name].shape[0] != n_frames:
                    h5file[name].resize(n_frames, axis=0)
        h5file.attrs["closed_cleanly"] = np.bool_(False)
        self._sync()

    # -- writing
    def append(self, pixels, time: float, thermistor: Optional[float] = None) -> None:
        """Add one (8, 8) frame in °C taken at ``time`` (unix seconds)."""
        frame = np.asarray(pixels, dtype=np.float32)
        if frame.shape != FRAME_SHAPE:
            if frame.size == 64:
                frame = frame.reshape(FRAME_SHAPE)
            else:
                raise ValueError(f"a frame must be 8x8, got shape {frame.shape}")
        self._check_open()
        self._pending_frames.append(frame)
        self._pending_times.append(float(time))
        self._pending_thermistor.append(math.nan if thermistor is None else float(thermistor))
        self._maybe_flush()

    def append_many(self, frames, timestamps, thermistor=None) -> None:
        """Add (n, 8, 8) frames with their (n,) timestamps and optional (n,) thermistor."""
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim == 2 and frames.shape[1] == 64:
            frames = frames.reshape(-1, *FRAME_SHAPE)
        if frames.ndim != 3 or frames.shape[1:] != FRAME_SHAPE:
            raise ValueError(f"frames must have shape (n, 8, 8), got {frames.shape}")
        times = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        if times.shape[0] != frames.shape[0]:
            raise ValueError(f"{frames.shape[0]} frames but {times.shape[0]} timestamps")
        if thermistor is None:
            therm = np.full(len(frames), np.nan)
        else:
            therm = np.asarray(thermistor, dtype=np.float64).reshape(-1)
            if therm.shape[0] != frames.shape[0]:
                raise ValueError(f"{frames.shape[0]} frames but {therm.shape[0]} thermistor values")
        self._check_open()
        self._pending_frames.extend(frames)
        self._pending_times.extend(times.tolist())
        self._pending_thermistor.extend(therm.tolist())
        self._maybe_flush()

    def add_events(self, frame_indices, times, directions) -> None:
        """Add ground-truth crossings: frame index, time (None: that frame's timestamp), "in"/"out"."""
        frame_indices = [int(i) for i in np.asarray(frame_indices).reshape(-1)]
        directions = [str(d) for d in directions]
        if times is None:
            times = [None] * len(frame_indices)
        times = list(times)
        if not (len(frame_indices) == len(times) == len(directions)):
            raise ValueError("frame_indices, times and directions must have the same length")
        for frame, direction in zip(frame_indices, directions):
            if direction not in DIRECTIONS:
                raise ValueError(f"event direction must be 'in' or 'out', got {direction!r}")
            if frame < 0:
                raise ValueError(f"event frame index must be >= 0, got {frame}")
        self._check_open()
        self._pending_events.extend(zip(frame_indices, times, directions))

    def flush(self) -> None:
        """Write buffered frames and events to disk and fsync (the crash-safe point)."""
        self._check_open()
        n_new = len(self._pending_frames)
        if n_new == 0 and not self._pending_events:
            self._last_flush = _time.monotonic()
            return
        fit, free = self._frames_that_fit(n_new)
        if fit < n_new:
            # Keep the reserve: write what fits, then stop while the file is still intact.
            for pending in (self._pending_frames, self._pending_times, self._pending_thermistor):
                del pending[fit:]
            limit = self.frames_on_disk + fit
            self._pending_events = [event for event in self._pending_events if event[0] < limit]
            n_new = fit
        h5file = self._file
        try:
            if n_new:
                start = self.frames_on_disk
                stop = start + n_new
                frames = h5file["frames"]
                frames.resize(stop, axis=0)
                frames[start:stop] = np.stack(self._pending_frames)
                stamps = h5file["timestamps"]
                stamps.resize(stop, axis=0)
                stamps[start:stop] = np.asarray(self._pending_times, dtype=np.float64)
                therm = np.asarray(self._pending_thermistor, dtype=np.float32)
                if "thermistor" in h5file or not np.isnan(therm).all():
                    dataset = self._thermistor_dataset(start)
                    dataset.resize(stop, axis=0)
                    dataset[start:stop] = therm
                if self._new_file and start == 0:
                    # Date the recording by its first frame rather than by file creation.
                    h5file.attrs["start_time"] = iso_time(self._pending_times[0])
                    h5file.attrs["start_time_unix"] = float(self._pending_times[0])
            if self._pending_events:
                self._write_events(self.frames_on_disk + n_new)
            self._sync()
        except (OSError, RuntimeError, ValueError) as error:  # h5py: failed flushes are RuntimeError
            self._fail(error)
        self.frames_on_disk += n_new
        self._pending_frames.clear()
        self._pending_times.clear()
        self._pending_thermistor.clear()
        self._pending_events.clear()
        self._last_flush = _time.monotonic()
        if free is not None:
            self._broken = True
            raise DiskFullError(
                f"disk nearly full ({free // 1024} KiB free) while writing {self.path}; stopped "
                f"with {self.frames_on_disk} frames saved, free some space"
            )

    def _fail(self, error) -> None:
        """A write failed: put the file back as of the last batch, close it, raise one line."""
        self._broken = True
        disk = self._disk
        cause = disk.failed if disk is not None and disk.failed is not None else error
        if disk is not None:
            disk.stop_writing(cause if isinstance(cause, OSError) else None)
        h5file, self._file = self._file, None
        try:
            h5file.close()  # writes are discarded now: HDF5 closes without touching the disk
        except Exception:
            pass
        restored = disk.rollback() if disk is not None else False
        if disk is not None:
            disk.close()
        if self._temporary is not None:  # an all-or-nothing file: nothing to keep
            safe_files.remove_quietly(self._temporary)
            self._temporary = None
            if _is_disk_full(cause):
                raise DiskFullError(f"disk full while writing {self.path}; free some space") from None
            raise OutputPathError(f"writing {self.path} failed ({_reason(cause)}); nothing was written, "
                                  f"the old file is unchanged") from None
        if restored:
            kept = f"stopped with the {self.frames_on_disk} frames saved so far, the file opens with them"
        else:
            kept = (f"the disk refused to restore the file, frames after {self.frames_on_disk} "
                    "may be unreadable (check the disk)")
        if _is_disk_full(cause):
            raise DiskFullError(f"disk full while writing {self.path}; {kept}; free some space") from None
        raise OutputPathError(f"writing {self.path} failed ({_reason(cause)}); {kept}; "
                              "record into a new file on a working disk") from None

    def close(self, discard: bool = False) -> None:
        """Flush and close. Idempotent. After a write error, closes without writing.

        An atomic writer's file takes the target's name here; ``discard`` (an exception in a
        ``with`` block) deletes it instead, leaving the target untouched.
        """
        if self._file is None:
            return
        if (discard or self._broken) and self._temporary is not None:
            self._discard()  # all or nothing: a stopped atomic file never takes the target's name
            return
        try:
            if not self._broken:
                self.flush()
                self._file.attrs["closed_cleanly"] = np.bool_(True)
                self._sync()
        except (OSError, RuntimeError, ValueError) as error:
            if self._file is not None:
                self._fail(error)
            raise
        except BaseException:
            self._discard() if self._temporary is not None else None
            raise
        h5file, self._file = self._file, None
        try:
            h5file.close()
        except Exception:  # the data is synced; a refused close changes nothing on disk
            pass
        if self._disk is not None:
            self._disk.close()
        if self._temporary is not None:
            temporary, self._temporary = self._temporary, None
            safe_files.publish(temporary, self.path)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close(discard=exc_type is not None)
        return False

    @property
    def frames_written(self) -> int:
        """Frames in this file, including earlier appends and frames not yet flushed."""
        return self.frames_on_disk + len(self._pending_frames)

    @property
    def closed(self) -> bool:
        return self._file is None

    # -- internals
    def _maybe_flush(self) -> None:
        due = _time.monotonic() - self._last_flush >= self.flush_interval
        if due or len(self._pending_frames) >= self.max_buffered_frames:
            self.flush()

    def _check_open(self) -> None:
        if self._file is None:
            raise OutputPathError(f"{self.path} is already closed")
        if self._broken:
            raise OutputPathError(f"{self.path} stopped after a write error; start a new file")

    def _thermistor_dataset(self, existing: int):
        if "thermistor" in self._file:
            return self._file["thermistor"]
        # Created when the first thermistor value arrives; earlier frames read as NaN.
        return self._file.create_dataset(
            "thermistor", shape=(existing,), maxshape=(None,), dtype="<f4",
            chunks=(CHUNK_FRAMES * 4,), fillvalue=np.float32(np.nan), **COMPRESSION)

    def _write_events(self, n_frames: int) -> None:
        h5file = self._file
        rows = np.zeros(len(self._pending_events), dtype=EVENT_DTYPE)
        stamps = h5file["timestamps"]
        for row, (frame, when, direction) in zip(rows, self._pending_events):
            if when is None:
                when = float(stamps[frame]) if frame < n_frames else math.nan
            row["frame"], row["time"], row["direction"] = frame, float(when), direction.encode()
        if "events" not in h5file:
            h5file.create_dataset("events", shape=(0,), maxshape=(None,), dtype=EVENT_DTYPE,
                                  chunks=(64,))
        events = h5file["events"]
        start = events.shape[0]
        events.resize(start + len(rows), axis=0)
        events[start:] = rows

    def _frames_that_fit(self, n_new: int) -> tuple:
        """(frames of the batch that fit above the reserve, free bytes or None if all fit)."""
        try:
            stats = os.statvfs(self.path)
        except OSError:
            return n_new, None
        free = stats.f_bavail * stats.f_frsize
        # Raw size bounds the compressed batch (+10 % for rewriting the open chunk).
        per_frame = 64 * 4 * 1.1
        if free >= self.min_free_bytes + n_new * per_frame:
            return n_new, None
        return max(0, int((free - self.min_free_bytes) // per_frame)), free

    def _sync(self) -> None:
        """H5Fflush, then fsync and make this the state a failed write rolls back to."""
        self._file.flush()
        self._disk.commit()  # raises the write error the RollbackFile caught, if any


def check_recording_path(path, *, append: bool = False, overwrite: bool = False,
                         can_append: bool = True) -> bool:
    """Raise OutputPathError unless a recording may be written at ``path``; return whether
    it exists. The store writes in place (:func:`safe_files.check_output_path`, ``in_place``)."""
    return safe_files.check_output_path(path, append=append, overwrite=overwrite, can_append=can_append,
                                        other_name=True, in_place=True)


def write_recording(path, frames, timestamps=None, *, fps: float = 10.0, events=None,
                    sensor_info=None, overwrite: bool = False, attrs: Optional[dict] = None,
                    thermistor=None) -> Path:
    """Write a whole recording at once. ``timestamps`` default to now + index / fps.

    ``events`` is an iterable of ``(frame, direction)`` or ``(frame, time, direction)``.
    """
    frames = np.asarray(frames, dtype=np.float32)  # (N, 64) is reshaped by append_many
    if timestamps is None:
        timestamps = _time.time() + np.arange(len(frames)) / float(fps)
    with RecordingWriter(path, sensor_info=sensor_info, fps=fps, overwrite=overwrite,
                         attrs=attrs, atomic=True) as writer:
        writer.append_many(frames, timestamps, thermistor)
        if events:
            rows = [tuple(event) for event in events]
            frames_ = [row[0] for row in rows]
            times = [row[1] if len(row) == 3 else None for row in rows]
            directions = [row[-1] for row in rows]
            writer.add_events(frames_, times, directions)
    return Path(path)


def _is_disk_full(error) -> bool:
    return getattr(error, "errno", None) == errno.ENOSPC or "No space left" in str(error)


def _reason(error) -> str:
    """The cause of a write error in a few words (strerror when it is an OSError)."""
    if isinstance(error, OSError) and error.strerror:
        code = errno.errorcode.get(error.errno, "")
        return f"{error.strerror}, {code}" if code else error.strerror
    return one_line(str(error))


def _os_reason(error: OSError) -> str:
    text = str(error)
    if getattr(error, "errno", None) == errno.EACCES or "Permission denied" in text:
        return "permission denied; choose a folder you can write to"
    if "No space left" in text:
        return "disk full; free some space"
    if "lock" in text.lower():
        return "another program has it open; stop it or choose another file"
    if "Read-only" in text:
        return "the file system is read-only"
    return one_line(text)


__all__ = ["RecordingWriter", "DiskFullError", "check_recording_path", "write_recording"]
