"""The import workflow: frames from other tools (.npy, CSV) into a recording.

Input is checked completely while it is written to a hidden temporary file next to the
output; only when every frame and event is valid does the temporary file take the output's
name. Bad input therefore leaves no output behind, and ``--overwrite`` never destroys an
existing recording for a file that turns out to be unusable.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from thermalcount.errors import ImportFormatError
from thermalcount.support.safe_files import refuse_same_file
from thermalcount.store import PIXEL_RANGE_C, RecordingWriter, check_recording_path

#: Timestamps beyond +-10^10 s (the year 2286) are no clock's; they overflow date conversion.
MAX_UNIX_SECONDS = 1e10
BLOCK_FRAMES = 4096  # frames converted and written at a time: bounded memory for big inputs
_TIME_NAMES = re.compile(r"^(time|timestamp|timestamps|t|unix|unix_time|seconds|datetime|date)$", re.I)


@dataclass
class ImportResult:
    path: Path
    frames: int
    events: int
    source_format: str  # "npy" or "csv"
    timestamps_from_file: bool
    orientation: Optional[str] = None  # what the frames were turned by (None: as in the source)


def import_frames(source, out, *, fps: float = 10.0, events_path=None,
                  overwrite: bool = False, orientation=None) -> ImportResult:
    """Convert ``source`` (.npy or CSV, °C) into the recording ``out``; see docs/recording.md.

    ``orientation`` (e.g. ``"rotate=90,mirror=horizontal"``) turns every frame before it is
    stored, and the recording's ``orientation`` attribute says so; None stores the frames as
    in the source. Values are checked, and bad ones named, in the source's own layout.
    """
    from thermalcount.model.travel_axis import stored_orientation

    turn = None if orientation is None else stored_orientation(orientation)
    source, out = Path(source), Path(out)
    if not _is_regular(source):
        raise ImportFormatError(f"{source} does not exist or is not a file")
    if not (fps > 0 and math.isfinite(fps)):
        raise ImportFormatError(f"--fps must be a positive number, not {fps}")
    check_recording_path(out, overwrite=overwrite, can_append=False)
    refuse_same_file(source, out)
    if events_path is not None:
        refuse_same_file(events_path, out, "events file")
    if events_path is not None and not _is_regular(events_path):
        raise ImportFormatError(f"events file {events_path} does not exist")
    if source.stat().st_size == 0:
        raise ImportFormatError(f"{source} is empty")

    kind = "npy" if source.suffix.lower() == ".npy" else "csv"
    blocks = _npy_blocks(source) if kind == "npy" else _csv_blocks(source)
    start = source.stat().st_mtime  # synthetic clock when the file has no timestamps

    first = next(blocks, None)  # parse the start before creating anything
    if first is None:
        raise ImportFormatError(f"{source} holds no frames")
    has_times = first[1] is not None
    attrs = {"sensor": "imported", "orientation": "as in the source file" if turn is None else str(turn),
             "imported_from": source.name, "import_format": kind,
             "timestamps_source": "file" if has_times else "synthetic: file modification time + index / fps"}
    if events_path is not None:
        attrs["ground_truth"] = f"imported from {Path(events_path).name}"
    n_frames = n_events = 0
    # atomic: written under a temporary name, renamed over ``out`` only when all is valid.
    with RecordingWriter(out, fps=fps, overwrite=overwrite, attrs=attrs, atomic=True,
                         flush_interval=math.inf) as writer:
        for frames, times, first_row in _chain([first], blocks):
            if times is None:
                times = start + (n_frames + np.arange(len(frames))) / fps
            _check_values(frames, first_row, source)
            writer.append_many(frames if turn is None or turn.is_identity else turn.apply(frames), times)
            n_frames += len(frames)
        if events_path is not None:
            frames_at, directions = read_events_csv(events_path, n_frames)
            writer.add_events(frames_at, None, directions)
            n_events = len(frames_at)
    return ImportResult(out, n_frames, n_events, kind, has_times, None if turn is None else str(turn))


def _is_regular(path) -> bool:
    import stat

    from thermalcount.support.safe_files import lookup

    info = lookup(path, ImportFormatError)
    return info is not None and stat.S_ISREG(info.st_mode)


# ------------------------------------------------------------------------------------ .npy


def _npy_blocks(source: Path) -> Iterator[tuple]:
    with open(source, "rb") as handle:
        magic = handle.read(6)
    if magic != b"\x93NUMPY":
        # np.load would take any other file for a pickle; say plainly what it is not.
        raise ImportFormatError(f"{source} is not a .npy file (no NUMPY header); save it with np.save")
    try:
        # Memory-mapped: a large file is converted block by block. Never unpickle.
        array = np.load(source, mmap_mode="r", allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise ImportFormatError(
                f"{source} holds Python objects, not numbers; save a plain float array "
                "(np.save(path, frames.astype('float32')))"
            ) from None
        raise ImportFormatError(f"{source} is not a readable .npy file ({error})") from None
    except (OSError, EOFError) as error:
        raise ImportFormatError(f"{source} is not a readable .npy file ({error})") from None
    if not isinstance(array, np.ndarray):
        raise ImportFormatError(f"{source} is an .npz archive; save a single array with np.save")
    if array.dtype.kind not in "fiu":
        raise ImportFormatError(f"{source} holds {array.dtype} values; it must hold numbers in °C")
    if array.ndim == 3 and array.shape[1:] == (8, 8):
        flat = array.reshape(array.shape[0], 64)
    elif array.ndim == 2 and array.shape[1] == 64:
        flat = array
    else:
        raise ImportFormatError(
            f"{source} has shape {array.shape}; expected (N, 8, 8) or (N, 64) frames in °C"
        )
    if flat.shape[0] == 0:
        raise ImportFormatError(f"{source} holds no frames (shape {array.shape})")
    for start in range(0, flat.shape[0], BLOCK_FRAMES):
        block = np.asarray(flat[start:start + BLOCK_FRAMES], dtype=np.float32)
        yield block.reshape(-1, 8, 8), None, start  # start: frame index, for messages


# ------------------------------------------------------------------------------------ CSV


def _csv_blocks(source: Path) -> Iterator[tuple]:
    """Yield (frames, timestamps or None, 1-based line of the block's first row)."""
    try:
        handle = open(source, "rb")  # decoded line by line by _text_lines
    except OSError as error:
        raise ImportFormatError(f"cannot read {source}: {error.strerror}") from None
    with handle:
        rows = _split_rows(handle, source)
        first = next(rows, None)
        if first is None:
            raise ImportFormatError(f"{source} holds no rows")
        line, cells = first
        time_column = None
        # A header names (nearly) every column; a data row with one odd cell (a date, a
        # typo) is data and gets a precise error below.
        if sum(not _is_number(cell) for cell in cells) > len(cells) // 2:
            time_column = _header_time_column(cells, source)
            first = None  # the header is not data
        elif len(cells) == 65:
            time_column = 0
        width = 64 if time_column is None else 65

        pixels, times, last_time = [], [], -math.inf
        pending = [first] if first is not None else []
        for line, cells in _chain(pending, rows):
            if len(cells) != width:
                raise ImportFormatError(
                    f"{source} line {line}: {len(cells)} values, expected {width} "
                    f"({'64 pixels' if width == 64 else 'a timestamp and 64 pixels'})")
            if time_column is not None:
                when = _parse_time(cells[time_column], line, time_column + 1, source)
                if when < last_time:
                    raise ImportFormatError(
                        f"{source} line {line}: timestamp goes backwards; sort the rows by time")
                times.append(when)
                last_time = when
                cells = cells[:time_column] + cells[time_column + 1:]
            pixels.append([_parse_pixel(cell, line, column, source, time_column)
                           for column, cell in enumerate(cells, start=1)])
            if len(pixels) == BLOCK_FRAMES:
                yield _as_block(pixels, times, time_column)
                pixels, times = [], []
        if pixels:
            yield _as_block(pixels, times, time_column)


def _chain(first, rest):
    yield from first
    yield from rest


def _as_block(pixels, times, time_column):
    frames = np.asarray(pixels, dtype=np.float32).reshape(-1, 8, 8)
    stamps = np.asarray(times, dtype=np.float64) if time_column is not None else None
    return frames, stamps, None


def _split_rows(handle, source) -> Iterator[tuple]:
    """Yield (line number, cells) for each non-blank row; comma, semicolon, tab or spaces."""
    delimiter = None
    for line_number, text in enumerate(_text_lines(handle, source), start=1):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if delimiter is None:
            delimiter = next((d for d in (",", ";", "\t") if d in stripped), " ")
        if delimiter == " ":
            cells = stripped.split()
        else:
            try:
                cells = [cell.strip() for cell in next(csv.reader([stripped], delimiter=delimiter))]
            except csv.Error as error:  # e.g. a cell over csv's 128 KiB field limit
                raise ImportFormatError(f"{source} line {line_number}: not a CSV row of numbers "
                                        f"({error}); check the file") from None
        yield line_number, cells


#: Longest line accepted: a row of 65 numbers is under 2 KB; a longer "line" is not a CSV
#: of frames, and reading it whole could take all the memory.
MAX_LINE_BYTES = 1 << 20
#: Control bytes that never occur in text (NUL and friends; tab, CR, LF, FF are fine).
_BINARY_BYTES = bytes(range(0, 9)) + b"\x0b" + bytes(range(0x0e, 0x1b)) + bytes(range(0x1c, 0x20))


def _text_lines(handle, source) -> Iterator[str]:
    """Decoded lines of a binary handle: UTF-8 (BOM dropped), else Latin-1 for that line.

    A comment written by a European tool (``# Temperatur in °C`` in Latin-1) is text, not
    "binary data"; a file with NUL or other control bytes (an HDF5 file, an image) is
    binary and gets one line instead of a UnicodeDecodeError.
    """
    start = handle.read(65536)  # sniff first: a binary file's first "line" can look like text
    if len(start.translate(None, _BINARY_BYTES)) != len(start):
        _binary(source)
    handle.seek(0)
    first = True
    line_number = 0
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        line_number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise ImportFormatError(f"{source} line {line_number} is longer than {MAX_LINE_BYTES // 1024} KiB; "
                                    "import takes .npy arrays or CSV text with 64 values per row")
        if first and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        first = False
        if len(raw.translate(None, _BINARY_BYTES)) != len(raw):
            _binary(source)
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            yield raw.decode("latin-1")  # never fails; numbers are ASCII either way


def _binary(source):
    hint = (" it already is an HDF5 file: use it directly, no import needed"
            if _h5_signature(source) else " import takes .npy arrays or CSV text")
    raise ImportFormatError(f"{source} is not a text CSV file (binary data);{hint}")


def _h5_signature(path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(8) == b"\x89HDF\r\n\x1a\n"


def _header_time_column(cells, source) -> Optional[int]:
    if len(cells) == 64:
        return None
    if len(cells) == 65:
        named = [i for i, cell in enumerate(cells) if _TIME_NAMES.match(cell.strip())]
        if len(named) == 1:
            return named[0]
        raise ImportFormatError(
            f"{source}: the header has 65 columns but no single timestamp column named "
            "time/timestamp/unix; name it so, or drop it")
    raise ImportFormatError(
        f"{source}: the header has {len(cells)} columns, expected 64 pixels and optionally "
        "a timestamp column")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _parse_pixel(cell: str, line: int, column: int, source, time_column) -> float:
    # Report the column as it is in the file (1-based, counting a timestamp column).
    file_column = column + (1 if time_column is not None and column > time_column else 0)
    try:
        value = float(cell)
    except ValueError:
        shown = cell if cell else "(empty)"
        raise ImportFormatError(
            f"{source} line {line} column {file_column}: {shown!r} is not a number") from None
    if not math.isfinite(value):
        raise ImportFormatError(
            f"{source} line {line} column {file_column}: {cell!r} is not a finite temperature; "
            "remove or repair that frame")
    low, high = PIXEL_RANGE_C
    if not low <= value <= high:
        raise ImportFormatError(
            f"{source} line {line} column {file_column}: {value:g} is outside the sensor's range "
            f"{low:g}..{high:g} °C; the file must hold °C{_kelvin_hint(value)}")
    return value


def _kelvin_hint(value: float) -> str:
    return " (Kelvin? subtract 273.15)" if 200 < value < 400 else ""


def _parse_time(cell: str, line: int, column: int, source) -> float:
    try:
        value = float(cell)
    except ValueError:
        try:
            moment = datetime.fromisoformat(cell.replace("Z", "+00:00"))
        except ValueError:
            raise ImportFormatError(
                f"{source} line {line} column {column}: timestamp {cell!r} is neither unix "
                "seconds nor ISO 8601") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        value = moment.timestamp()
    if not math.isfinite(value):
        raise ImportFormatError(f"{source} line {line} column {column}: timestamp {cell!r} is not finite")
    if not -MAX_UNIX_SECONDS <= value <= MAX_UNIX_SECONDS:
        raise ImportFormatError(
            f"{source} line {line} column {column}: timestamp {cell[:40]!r} is not a plausible time "
            "(unix seconds up to the year 2286, or ISO 8601); repair or drop the time column")
    return value


# ------------------------------------------------------------------------------ checks


def _check_values(frames: np.ndarray, first_frame: Optional[int], source) -> None:
    """NaN/inf and out-of-range pixels in a .npy block (CSV cells are checked as parsed)."""
    if first_frame is None:
        return
    flat = frames.reshape(len(frames), 64)
    low, high = PIXEL_RANGE_C
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(flat) | (flat < low) | (flat > high)
    if not bad.any():
        return
    frame, pixel = (int(i) for i in np.argwhere(bad)[0])
    value = float(flat[frame, pixel])
    where = f"frame {first_frame + frame}, pixel {pixel} (row {pixel // 8}, column {pixel % 8})"
    if not math.isfinite(value):
        raise ImportFormatError(f"{source}: {where} is {value}; remove or repair that frame")
    raise ImportFormatError(
        f"{source}: {where} is {value:g}, outside the sensor's range {low:g}..{high:g} °C; "
        f"the file must hold °C{_kelvin_hint(value)}")


def read_events_csv(path, n_frames: int) -> tuple:
    """Read ground truth ``frame,direction`` rows (optional header); check them against ``n_frames``."""
    path = Path(path)
    frames, directions = [], []
    try:
        handle = open(path, "rb")  # decoded line by line by _text_lines
    except OSError as error:
        raise ImportFormatError(f"cannot read events file {path}: {error.strerror}") from None
    with handle:
        for number, (line, cells) in enumerate(_split_rows(handle, path)):
            if number == 0 and not _is_number(cells[0]):
                if [c.lower() for c in cells[:2]] != ["frame", "direction"] or len(cells) != 2:
                    raise ImportFormatError(
                        f"events file {path}: header must be 'frame,direction', got {','.join(cells)!r}")
                continue
            if len(cells) != 2:
                raise ImportFormatError(
                    f"events file {path} line {line}: {len(cells)} values, expected frame,direction")
            try:
                frame = int(cells[0])
            except ValueError:
                raise ImportFormatError(
                    f"events file {path} line {line}: frame {cells[0]!r} is not a whole number") from None
            direction = cells[1].strip().lower()
            if direction not in ("in", "out"):
                raise ImportFormatError(
                    f"events file {path} line {line}: direction {cells[1]!r} must be 'in' or 'out'")
            if not 0 <= frame < n_frames:
                raise ImportFormatError(
                    f"events file {path} line {line}: frame {frame} is outside the recording "
                    f"(frames 0..{n_frames - 1})")
            frames.append(frame)
            directions.append(direction)
    return frames, directions
