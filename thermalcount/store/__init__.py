"""The frame store: recordings of 8x8 thermal frames in one HDF5 file.

The on-disk layout is specified in docs/data-format.md so that plain h5py or HDFView users
can read a recording without this package.

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
import hashlib
import math
import os
import time as _time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

import h5py
import numpy as np

from thermalcount import __version__
from thermalcount.errors import OutputPathError, RecordingError
from thermalcount.support import safe_files

FORMAT_NAME = "thermalcount-recording"
SCHEMA_VERSION = 1
FRAME_SHAPE = (8, 8)
DIRECTIONS = ("in", "out")

#: Frames per HDF5 chunk: 64 KiB raw, 25.6 s at 10 FPS. Small enough that rewriting the
#: open (partly filled) chunk once a second stays cheap on a Pi, big enough to compress well.
CHUNK_FRAMES = 256
#: gzip level 1 after the byte shuffle: ~38 bytes/frame against 256 raw, at about half the
#: CPU of level 4 for 3 % more bytes (figures in docs/data-format.md).
COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
#: The AMG8833 specification range for a pixel; anything outside is a broken reading.
PIXEL_RANGE_C = (-55.0, 125.0)

EVENT_DTYPE = np.dtype([("frame", "<i8"), ("time", "<f8"), ("direction", "S3")])


class DiskFullError(OutputPathError):
    """The disk holding a recording is (nearly) full; the file is intact up to the last batch."""


class StoredEvent(NamedTuple):
    """A ground-truth crossing: the frame it happened at, its time, ``"in"`` or ``"out"``."""

    frame: int
    time: float
    direction: str


class Chunk(NamedTuple):
    """A run of consecutive frames from :meth:`Recording.iter_chunks`."""

    start: int
    frames: np.ndarray  # (n, 8, 8) float32
    timestamps: np.ndarray  # (n,) float64


@dataclass
class ValueCheck:
    """What :meth:`Recording.check_values` found in the frames."""

    n_frames: int
    nan_frames: int = 0
    out_of_range_frames: int = 0
    first_bad_frame: Optional[int] = None
    minimum: float = math.nan
    maximum: float = math.nan

    @property
    def ok(self) -> bool:
        return self.nan_frames == 0 and self.out_of_range_frames == 0

    def describe(self) -> str:
        """One line for a log or an error message."""
        if self.ok:
            return f"{self.n_frames} frames, all values in {self.minimum:.2f}..{self.maximum:.2f} °C"
        low, high = PIXEL_RANGE_C
        return (
            f"{self.nan_frames} frames with NaN/inf values and {self.out_of_range_frames} frames "
            f"outside the sensor range {low:g}..{high:g} °C (first at frame {self.first_bad_frame})"
        )


# --------------------------------------------------------------------------------- reading


class Recording:
    """An open recording. Use :func:`open_recording`; close it (or use ``with``) when done."""

    def __init__(self, path, _file: h5py.File, n_frames: int, recovered: bool):
        self.path = Path(path)
        self._file = _file
        self.n_frames = n_frames
        #: True when the file was not closed cleanly (recorder killed); its tail was cut to
        #: the frames that every dataset holds.
        self.recovered = recovered
        self.attrs = {key: _plain_attr(value) for key, value in _file.attrs.items()}
        self.fps = float(self.attrs.get("fps", math.nan))
        self.travel_axis = self.attrs.get("travel_axis") or None
        self.has_thermistor = "thermistor" in _file

    # -- data
    def read(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        return self._slice("frames", start, stop, np.float32)

    def timestamps(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        return self._slice("timestamps", start, stop, np.float64)

    def thermistor(self, start: int = 0, stop: Optional[int] = None) -> Optional[np.ndarray]:
        if not self.has_thermistor:
            return None
        return self._slice("thermistor", start, stop, np.float32)

    def _slice(self, name: str, start, stop, dtype) -> np.ndarray:
        start, stop = self._bounds(start, stop)
        try:
            return np.asarray(self._file[name][start:stop], dtype=dtype)
        except (OSError, RuntimeError) as error:
            raise RecordingError(
                f"{self.path}: {name} {start}..{stop - 1} cannot be read ({_short(str(error))}); "
                "the file is damaged, copy it again"
            ) from None

    def iter_chunks(self, chunk_frames: int = 65536) -> Iterator[Chunk]:
        """Yield the recording in pieces of at most ``chunk_frames`` frames (bounded memory)."""
        if chunk_frames < 1:
            raise ValueError("chunk_frames must be at least 1")
        for start in range(0, self.n_frames, chunk_frames):
            stop = min(start + chunk_frames, self.n_frames)
            yield Chunk(start, self.read(start, stop), self.timestamps(start, stop))

    @property
    def events(self) -> list:
        if "events" not in self._file:
            return []
        rows = self._file["events"][:]
        return [
            StoredEvent(int(row["frame"]), float(row["time"]), _text(row["direction"]))
            for row in rows
        ]

    def content_hash(self) -> str:
        """sha256 of the frames as little-endian float32 bytes in frame order (streamed)."""
        digest = hashlib.sha256()
        for chunk in self.iter_chunks():
            digest.update(np.ascontiguousarray(chunk.frames, dtype="<f4").tobytes())
        return digest.hexdigest()

    def check_values(self, chunk_frames: int = 65536) -> ValueCheck:
        """Count frames holding NaN/inf or values outside the AMG8833's range (streamed)."""
        low, high = PIXEL_RANGE_C
        report = ValueCheck(self.n_frames)
        minimum, maximum = math.inf, -math.inf
        for chunk in self.iter_chunks(chunk_frames):
            flat = chunk.frames.reshape(len(chunk.frames), -1)
            finite = np.isfinite(flat)
            nan_rows = ~finite.all(axis=1)
            with np.errstate(invalid="ignore"):
                range_rows = ((flat < low) | (flat > high)).any(axis=1) & ~nan_rows
            report.nan_frames += int(nan_rows.sum())
            report.out_of_range_frames += int(range_rows.sum())
            bad = np.flatnonzero(nan_rows | range_rows)
            if bad.size and report.first_bad_frame is None:
                report.first_bad_frame = chunk.start + int(bad[0])
            if finite.any():
                minimum = min(minimum, float(flat[finite].min()))
                maximum = max(maximum, float(flat[finite].max()))
        if minimum <= maximum:
            report.minimum, report.maximum = minimum, maximum
        return report

    def _bounds(self, start, stop):
        stop = self.n_frames if stop is None else min(int(stop), self.n_frames)
        start = max(0, int(start))
        return start, max(start, stop)

    # -- lifetime
    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __len__(self) -> int:
        return self.n_frames

    def __repr__(self) -> str:
        return f"<Recording {str(self.path)!r} {self.n_frames} frames at {self.fps:g} fps>"


def open_recording(path) -> Recording:
    """Open a recording for reading, checking its schema. Never modifies the file.

    Raises :class:`RecordingError` with a one-line message for a missing, empty, truncated,
    non-HDF5 or wrong-schema file, or one without frames.
    """
    path = Path(path)
    h5file = _open_h5(path, "r")
    try:
        n_frames, recovered = _validate(h5file, path)
        if n_frames == 0:
            raise RecordingError(f"{path} holds no frames; record some with 'thermalcount record'")
        return Recording(path, h5file, n_frames, recovered)
    except RecordingError:
        h5file.close()
        raise
    except _CORRUPT_HDF5 as error:
        # A damaged superblock or object header can pass h5py.File() and then fail on the
        # first attribute or dataset lookup, with whatever exception h5py maps it to.
        h5file.close()
        raise RecordingError(f"{path} is a corrupt HDF5 file ({_short(str(error))}); copy it again") from None
    except BaseException:
        h5file.close()
        raise


#: What h5py raises for a damaged file once it is open (measured by tests/test_fuzz.py).
_CORRUPT_HDF5 = (OSError, RuntimeError, ValueError, KeyError, TypeError, AttributeError)


def _open_h5(path: Path, mode: str) -> h5py.File:
    info = safe_files.lookup(path, RecordingError)
    if info is None:
        raise RecordingError(f"{path} does not exist; check the path")
    if path.is_dir():
        raise RecordingError(f"{path} is a directory, not a recording file")
    kind = safe_files.special_kind(info.st_mode)
    if kind is not None:
        # Opening a FIFO blocks until a writer appears: say so instead of hanging.
        raise RecordingError(f"{path} is {kind}, not a recording file; copy the recording to a file first")
    try:
        size = info.st_size
        with open(path, "rb"):
            pass
    except OSError as error:
        raise RecordingError(f"cannot read {path}: {error.strerror}") from None
    if size == 0:
        raise RecordingError(f"{path} is empty (0 bytes); the recording was never written")
    if not h5py.is_hdf5(str(path)):
        raise RecordingError(
            f"{path} is not an HDF5 file; bring other formats in with 'thermalcount import'"
        )
    try:
        return h5py.File(path, mode, libver="earliest") if mode != "r" else h5py.File(path, "r")
    except OSError as error:
        text = str(error)
        if "already open for write" in text and mode == "r":
            # Written by an SWMR writer (another tool) that did not close: its status flags
            # block a normal open, but SWMR readers may read it as it is.
            try:
                return h5py.File(path, "r", swmr=True)
            except OSError:
                raise RecordingError(f"{path} is a corrupt HDF5 file (bad superblock); copy it again") from None
        if "already open for write" in text:
            raise RecordingError(
                f"{path} is marked as open by another writer; if none is running, clear the flag "
                f"with 'h5clear -s {path}' (Debian package hdf5-tools)"
            ) from None
        if "unable to lock file" in text.lower() and mode == "r":
            # A recorder is writing it. Its batches land once a second and leave nothing
            # half-done in between, so an unlocked read sees a snapshot of the last batch.
            try:
                return h5py.File(path, "r", locking=False)
            except OSError:
                pass
        if "unable to lock file" in text.lower():
            raise RecordingError(
                f"{path} is open for writing in another program; stop it first"
            ) from None
        if "truncated" in text:
            raise RecordingError(
                f"{path} is truncated (the copy or download stopped early); copy it again"
            ) from None
        raise RecordingError(f"{path} is a corrupt HDF5 file ({_short(text)}); copy it again") from None


def _validate(h5file: h5py.File, path: Path) -> tuple:
    """Check the schema; return (usable frame count, recovered-after-crash flag)."""
    attrs = h5file.attrs
    if "frames" not in h5file or "schema_version" not in attrs:
        raise RecordingError(
            f"{path} is an HDF5 file but not a thermalcount recording (no 'frames' dataset or "
            "'schema_version' attribute); convert it with 'thermalcount import'"
        )
    version = attrs["schema_version"]
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise RecordingError(f"{path} has an unreadable schema_version {version!r}") from None
    if version > SCHEMA_VERSION:
        raise RecordingError(
            f"{path} uses recording schema {version}, newer than this thermalcount understands "
            f"({SCHEMA_VERSION}); upgrade thermalcount"
        )
    if version < 1:
        raise RecordingError(f"{path} has an invalid schema_version {version}")

    def dataset(name, shape_tail, kind):
        item = h5file.get(name)
        if item is None:
            return None
        if not isinstance(item, h5py.Dataset):
            raise RecordingError(f"{path}: '{name}' is a group, expected a dataset")
        if item.ndim != 1 + len(shape_tail) or tuple(item.shape[1:]) != shape_tail:
            want = "(N" + "".join(f", {n}" for n in shape_tail) + ")"
            raise RecordingError(f"{path}: '{name}' has shape {item.shape}, expected {want}; "
                                 "bring frames of other shapes in with 'thermalcount import'")
        if item.dtype.kind != kind:
            raise RecordingError(f"{path}: '{name}' has type {item.dtype}, expected floating point")
        return item

    frames = dataset("frames", FRAME_SHAPE, "f")
    timestamps = dataset("timestamps", (), "f")
    if timestamps is None:
        raise RecordingError(f"{path} has frames but no 'timestamps' dataset; the file is incomplete")
    thermistor = dataset("thermistor", (), "f")
    lengths = {"frames": frames.shape[0], "timestamps": timestamps.shape[0]}
    if thermistor is not None:
        lengths["thermistor"] = thermistor.shape[0]
    if "events" in h5file:
        events = h5file["events"]
        names = set(events.dtype.names or ()) if isinstance(events, h5py.Dataset) else set()
        if not {"frame", "time", "direction"} <= names:
            raise RecordingError(
                f"{path}: 'events' must be a table with fields frame, time, direction"
            )
        if _check_storage(events, "events", path) < events.shape[0]:
            raise RecordingError(f"{path}: 'events' claims {events.shape[0]} rows but stores fewer; "
                                 "the file is damaged, copy it again")
    # A dataset may claim more rows than it stores data for (chunks never written read as
    # the fill value): a killed writer that resized before writing, or a crafted 2 KB file
    # claiming 10^9 frames. Killed files are cut to what is stored; others are refused.
    stored = {"frames": _check_storage(frames, "frames", path),
              "timestamps": _check_storage(timestamps, "timestamps", path)}
    if thermistor is not None:
        stored["thermistor"] = _check_storage(thermistor, "thermistor", path)
    if bool(attrs.get("closed_cleanly", True)):
        for name, rows in stored.items():
            if rows < lengths[name]:
                raise RecordingError(
                    f"{path}: '{name}' claims {lengths[name]} rows but the file holds data for at most "
                    f"{rows}; the file is damaged or not a recording, copy it again")
    else:
        lengths = {name: min(n, stored[name]) for name, n in lengths.items()}
    n_frames = min(lengths.values())
    closed_cleanly = bool(attrs.get("closed_cleanly", True))
    if len(set(lengths.values())) > 1 and closed_cleanly:
        detail = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise RecordingError(f"{path} is inconsistent: datasets differ in length ({detail})")
    if not closed_cleanly:
        n_frames = _readable_length(h5file, n_frames, path)
    return n_frames, not closed_cleanly


def _check_storage(item: h5py.Dataset, name: str, path: Path) -> int:
    """Rows of ``item`` that have data in this file (RecordingError for virtual/external data).

    Never reads the data: it counts allocated chunks, so a file claiming 10^9 frames costs
    nothing to refuse.
    """
    if item.is_virtual:
        raise RecordingError(f"{path}: '{name}' is a virtual dataset (its data lives in other files); "
                             "recordings hold their own data, convert it with 'thermalcount import'")
    if item.external:
        raise RecordingError(f"{path}: '{name}' keeps its data in external files; recordings hold their "
                             "own data, convert it with 'thermalcount import'")
    rows = item.shape[0] if item.shape else 0
    if rows == 0:
        return 0
    if item.chunks is None:
        # Contiguous (or compact): all or nothing, and never more than the file's size.
        file_size = _file_size(item)
        stored = item.id.get_storage_size()
        needed = rows * item.dtype.itemsize * int(np.prod(item.shape[1:], dtype=np.int64))
        if stored < needed or (file_size is not None and stored > file_size):
            return 0
        return rows
    per_chunk = item.chunks[0]
    try:
        chunks = item.id.get_num_chunks()
    except (AttributeError, RuntimeError, OSError):
        return rows  # old HDF5: no cheap count; the chunk reads report damage instead
    # Chunks beyond the first dimension multiply the count; recordings never split those.
    across = int(np.prod([-(-n // c) for n, c in zip(item.shape[1:], item.chunks[1:])], dtype=np.int64)) or 1
    return min(rows, (chunks // across) * per_chunk)


def _file_size(item):
    """The real size of the file holding ``item``; None when the driver has no descriptor."""
    try:
        handle = item.file.id.get_vfd_handle()
        return os.fstat(handle).st_size if isinstance(handle, int) else None
    except Exception:  # fileobj/core drivers: no descriptor to ask
        return None


def _readable_length(h5file: h5py.File, n_frames: int, path: Path) -> int:
    """Frames whose chunks all read back, for a file whose writer was killed.

    Measured: about one kill in 70 that land inside an HDF5 flush leaves the newest chunk of a
    compressed dataset unreadable ("filter returned failure"). Such damage is confined to
    the tail, so drop whole chunks from the end until everything that is left reads.
    """
    names = [name for name in ("frames", "timestamps", "thermistor") if name in h5file]
    for _attempt in range(16):
        shortened = False
        for name in names:
            dataset = h5file[name]
            step = dataset.chunks[0] if dataset.chunks else max(n_frames, 1)
            if n_frames == 0:
                return 0
            start = (n_frames - 1) // step * step
            try:
                dataset[start:n_frames]
            except (OSError, RuntimeError, ValueError):
                n_frames, shortened = start, True
        if not shortened:
            return n_frames
    raise RecordingError(f"{path} is damaged beyond its last frames; copy it again or record anew")


# --------------------------------------------------------------------------------- writing


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
        exists = check_output_path(self.path, append=append, overwrite=overwrite)
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
            self._fill_new(h5file, sensor_info, fps, extra)
            self._sync()
        except BaseException as error:
            self._discard()  # no temporary file is left behind, whatever failed
            if isinstance(error, (OSError, RuntimeError)):
                raise OutputPathError(f"cannot write {self.path}: {_os_reason(error)}") from None
            raise

    def _fill_new(self, h5file, sensor_info, fps: float, extra: dict) -> None:
        """The attributes and empty datasets of a new recording."""
        attrs = h5file.attrs
        now = _time.time()
        attrs["format"] = FORMAT_NAME
        attrs["schema_version"] = np.int64(SCHEMA_VERSION)
        attrs["units"] = "celsius"
        attrs["fps"] = float(fps)
        attrs["software_version"] = __version__
        attrs["start_time"] = _iso(now)
        attrs["start_time_unix"] = float(now)
        attrs["closed_cleanly"] = np.bool_(False)
        if sensor_info is not None:
            attrs["sensor"] = sensor_info.sensor
            attrs["orientation"] = sensor_info.orientation
            if sensor_info.address is not None:
                attrs["address"] = np.int64(sensor_info.address)
            if sensor_info.bus is not None:
                attrs["bus"] = np.int64(sensor_info.bus)
            for key, value in (sensor_info.extra or {}).items():
                _set_attr(attrs, key, value)
        for key, value in extra.items():
            _set_attr(attrs, key, value)
        h5file.create_dataset("frames", shape=(0, *FRAME_SHAPE), maxshape=(None, *FRAME_SHAPE),
                              dtype="<f4", chunks=(CHUNK_FRAMES, *FRAME_SHAPE), **COMPRESSION)
        h5file.create_dataset("timestamps", shape=(0,), maxshape=(None,), dtype="<f8",
                              chunks=(CHUNK_FRAMES * 4,), **COMPRESSION)

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
        # Check it with a plain read-only open first (the one-line messages for damaged or
        # foreign files live there), then reopen it locked, through the rollback file.
        try:
            with open_recording(self.path):
                pass
        except RecordingError as error:
            if "holds no frames" not in str(error):
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
            raise OutputPathError(f"cannot append to {self.path}: {_short(str(error))}") from None
        try:
            n_frames, recovered = _validate(h5file, self.path)
        except RecordingError as error:
            h5file.close()
            self._disk.close()
            raise OutputPathError(f"cannot append: {error}") from None
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
                    h5file.attrs["start_time"] = _iso(self._pending_times[0])
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


def check_output_path(path, *, append: bool = False, overwrite: bool = False,
                      can_append: bool = True) -> bool:
    """Raise OutputPathError unless ``path`` may be written; return whether it exists.

    Cheap, touches nothing: commands call it before opening a sensor.
    """
    path = Path(path)
    if append and overwrite:
        raise OutputPathError("choose either --append or --overwrite, not both")
    if safe_files.check_output_kind(path):  # refuses directories, FIFOs, devices
        if not (append or overwrite):
            options = "pass --append to add frames to it or --overwrite" if can_append else "pass --overwrite"
            raise OutputPathError(f"{path} already exists; {options} to replace it, or choose another name")
        if not os.access(path, os.W_OK):
            raise OutputPathError(f"cannot write {path}: permission denied")
        # Another program's lock is found without opening the file for writing.
        safe_files.check_not_in_use(path)
        return True
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise OutputPathError(f"cannot write {path}: {parent} is a file, not a folder; choose another --out")
    if not parent.is_dir():
        raise OutputPathError(f"cannot write {path}: folder {parent} does not exist; create it or choose another --out")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write {path}: permission denied in {parent}")
    return False


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


# --------------------------------------------------------------------------------- helpers


def _iso(unix: float) -> str:
    try:
        return datetime.fromtimestamp(unix, tz=timezone.utc).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError):  # NaN or beyond year 9999: no date to show
        return "unknown"


def _set_attr(attrs, key: str, value) -> None:
    """Store an extra attribute; None is skipped, dicts and mixed lists become JSON text."""
    import json

    if value is None:
        return
    if isinstance(value, (dict, list, tuple)) and not _is_numeric_list(value):
        value = json.dumps(value, sort_keys=True, default=str)
    attrs[key] = value


def _is_numeric_list(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def _plain_attr(value):
    """numpy scalars and bytes from h5py -> plain Python values."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _text(value) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _short(text: str) -> str:
    return " ".join(text.split())[:160]


def _is_disk_full(error) -> bool:
    return getattr(error, "errno", None) == errno.ENOSPC or "No space left" in str(error)


def _reason(error) -> str:
    """The cause of a write error in a few words (strerror when it is an OSError)."""
    if isinstance(error, OSError) and error.strerror:
        code = errno.errorcode.get(error.errno, "")
        return f"{error.strerror}, {code}" if code else error.strerror
    return _short(str(error))


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
    return _short(text)
