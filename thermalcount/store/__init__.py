"""The frame store: recordings of 8x8 thermal frames in one HDF5 file.

* :mod:`~thermalcount.store.format` - the layout (docs/data-format.md): names, dtypes,
  compression, attribute conversions;
* :mod:`~thermalcount.store.reader` - :func:`open_recording` checks a file and reads it;
* :mod:`~thermalcount.store.writer` - :class:`RecordingWriter` appends frames crash-safely
  (its docstring says how), :func:`write_recording` writes a whole recording at once;
* :mod:`~thermalcount.store.record` and :mod:`~thermalcount.store.importer` - the
  ``record`` and ``import`` commands' work.

This module is the store's public face: what other packages use is named here.
"""

from thermalcount.store.format import CHUNK_FRAMES, PIXEL_RANGE_C, SCHEMA_VERSION, StoredEvent
from thermalcount.store.reader import Recording, open_recording
from thermalcount.store.writer import DiskFullError, RecordingWriter, check_recording_path, write_recording

__all__ = ["CHUNK_FRAMES", "PIXEL_RANGE_C", "SCHEMA_VERSION", "StoredEvent", "Recording", "open_recording",
           "DiskFullError", "RecordingWriter", "check_recording_path", "write_recording"]
