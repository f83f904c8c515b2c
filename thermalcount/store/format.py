"""The recording file's layout: names, shapes, dtypes, compression, attribute conversions.

docs/data-format.md specifies the layout so that plain h5py or HDFView users can read a
recording without this package; :mod:`thermalcount.store.reader` checks files against it
and :mod:`thermalcount.store.writer` writes it.
"""

from __future__ import annotations

import json
import time as _time
from datetime import datetime, timezone
from typing import NamedTuple

import numpy as np

from thermalcount import __version__

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


class StoredEvent(NamedTuple):
    """A ground-truth crossing: the frame it happened at, its time, ``"in"`` or ``"out"``."""

    frame: int
    time: float
    direction: str


def iso_time(unix: float) -> str:
    try:
        return datetime.fromtimestamp(unix, tz=timezone.utc).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError):  # NaN or beyond year 9999: no date to show
        return "unknown"


def set_attr(attrs, key: str, value) -> None:
    """Store an extra attribute; None is skipped, dicts and mixed lists become JSON text."""
    if value is None:
        return
    if isinstance(value, (dict, list, tuple)) and not _is_numeric_list(value):
        value = json.dumps(value, sort_keys=True, default=str)
    attrs[key] = value


def _is_numeric_list(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def plain_attr(value):
    """numpy scalars and bytes from h5py -> plain Python values."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def attr_text(value) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def one_line(text: str) -> str:
    return " ".join(text.split())[:160]


def write_layout(h5file, sensor_info, fps: float, extra: dict) -> None:
    """The attributes and empty datasets of a new recording (docs/data-format.md)."""
    attrs = h5file.attrs
    now = _time.time()
    attrs["format"] = FORMAT_NAME
    attrs["schema_version"] = np.int64(SCHEMA_VERSION)
    attrs["units"] = "celsius"
    attrs["fps"] = float(fps)
    attrs["software_version"] = __version__
    attrs["start_time"] = iso_time(now)
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
            set_attr(attrs, key, value)
    for key, value in extra.items():
        set_attr(attrs, key, value)
    h5file.create_dataset("frames", shape=(0, *FRAME_SHAPE), maxshape=(None, *FRAME_SHAPE),
                          dtype="<f4", chunks=(CHUNK_FRAMES, *FRAME_SHAPE), **COMPRESSION)
    h5file.create_dataset("timestamps", shape=(0,), maxshape=(None,), dtype="<f8",
                          chunks=(CHUNK_FRAMES * 4,), **COMPRESSION)


__all__ = ["FORMAT_NAME", "SCHEMA_VERSION", "FRAME_SHAPE", "DIRECTIONS", "CHUNK_FRAMES", "COMPRESSION",
           "PIXEL_RANGE_C", "EVENT_DTYPE", "StoredEvent", "iso_time", "set_attr", "write_layout", "plain_attr", "attr_text", "one_line"]
