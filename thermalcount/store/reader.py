"""Reading recordings: :func:`open_recording` checks a file against the layout
(:mod:`thermalcount.store.format`) and returns a :class:`Recording`. Never modifies the file.

A recording whose writer was killed (``closed_cleanly`` false) is cut to the frames every
dataset holds and that read back (:func:`_readable_length`); a file that claims more rows
than it stores, or keeps its data elsewhere, is refused without reading the data.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

import h5py
import numpy as np

from thermalcount.errors import RecordingError
from thermalcount.store.format import FRAME_SHAPE, PIXEL_RANGE_C, SCHEMA_VERSION, StoredEvent, attr_text, one_line, plain_attr
from thermalcount.support import safe_files


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
        self.attrs = {key: plain_attr(value) for key, value in _file.attrs.items()}
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
                f"{self.path}: {name} {start}..{stop - 1} cannot be read ({one_line(str(error))}); "
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
            StoredEvent(int(row["frame"]), float(row["time"]), attr_text(row["direction"]))
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
    h5file = _open_h5(path)
    try:
        n_frames, recovered = validate(h5file, path)
        if n_frames == 0:
            raise RecordingError(f"{path} holds no frames; record some with 'thermalcount record'")
        return Recording(path, h5file, n_frames, recovered)
    except RecordingError:
        h5file.close()
        raise
    except CORRUPT_HDF5 as error:
        # A damaged superblock or object header can pass h5py.File() and then fail on the
        # first attribute or dataset lookup, with whatever exception h5py maps it to.
        h5file.close()
        raise RecordingError(f"{path} is a corrupt HDF5 file ({one_line(str(error))}); copy it again") from None
    except BaseException:
        h5file.close()
        raise


#: What h5py raises for a damaged file once it is open (measured by tests/test_fuzz.py).
CORRUPT_HDF5 = (OSError, RuntimeError, ValueError, KeyError, TypeError, AttributeError)


def check_readable_file(path: Path) -> None:
    """RecordingError unless ``path`` is a readable, non-empty HDF5 file (h5py not opened yet)."""
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


def describe_open_error(path: Path, text: str) -> str:
    """One line for what h5py said when it could not open ``path`` (the reader's and the
    appending writer's opens fail the same ways)."""
    if "already open for write" in text:
        return (f"{path} is marked as open by another writer; if none is running, clear the flag "
                f"with 'h5clear -s {path}' (Debian package hdf5-tools)")
    if "unable to lock file" in text.lower():
        return f"{path} is open for writing in another program; stop it first"
    if "truncated" in text:
        return f"{path} is truncated (the copy or download stopped early); copy it again"
    return f"{path} is a corrupt HDF5 file ({one_line(text)}); copy it again"


def _open_h5(path: Path) -> h5py.File:
    check_readable_file(path)
    try:
        return h5py.File(path, "r")
    except OSError as error:
        text = str(error)
        if "already open for write" in text:
            # Written by an SWMR writer (another tool) that did not close: its status flags
            # block a normal open, but SWMR readers may read it as it is.
            try:
                return h5py.File(path, "r", swmr=True)
            except OSError:
                raise RecordingError(f"{path} is a corrupt HDF5 file (bad superblock); copy it again") from None
        if "unable to lock file" in text.lower():
            # A recorder is writing it. Its batches land once a second and leave nothing
            # half-done in between, so an unlocked read sees a snapshot of the last batch.
            try:
                return h5py.File(path, "r", locking=False)
            except OSError:
                pass
        raise RecordingError(describe_open_error(path, text)) from None


def validate(h5file: h5py.File, path: Path) -> tuple:
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
        file_size = _file_size(item, path)
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


def _file_size(item, path: Path):
    """The real size of the file holding ``item`` (None when it cannot be found out)."""
    try:
        handle = item.file.id.get_vfd_handle()
        if isinstance(handle, int):
            return os.fstat(handle).st_size
    except Exception:  # fileobj/core drivers: no descriptor to ask
        pass
    try:  # the appending writer opens through a file object: ask the file system
        return os.stat(path).st_size
    except OSError:
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


__all__ = ["Recording", "Chunk", "ValueCheck", "open_recording", "validate", "check_readable_file",
           "describe_open_error", "CORRUPT_HDF5"]
