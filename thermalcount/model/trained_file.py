"""The trained-model file: plain float32 arrays + one JSON document in a zip (.npz layout).

``train`` writes it, ``export`` (:mod:`thermalcount.model.export`) and ``inspect`` read it.
It lives in ``model/`` rather than ``training/`` so that export, which needs no torch, reads
it without importing the training package (imports point down: model < training).

Safe to load: it is read with ``numpy.load(allow_pickle=False)``, so a file cannot run code.
Written byte-for-byte deterministically (fixed zip timestamps, sorted members), so the same
training gives the same bytes apart from the ``created`` field. numpy only - no torch - so
``thermalcount export`` and ``inspect`` run on a machine without the [train] extra.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thermalcount import __version__
from thermalcount.errors import ModelError
from thermalcount.model.contract import exported_metadata
from thermalcount.model.graph import WEIGHT_NAMES, write_atomically
from thermalcount.model.preprocessing import Preprocessing

FILE_FORMAT = "thermalcount-trained/1"
METADATA_MEMBER = "__metadata__"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass
class TrainedModel:
    """Everything training produced. ``weights`` are float32 arrays in torch's layout."""

    weights: dict
    preprocessing: Preprocessing
    states: list  # [{"cluster", "name", "position", "people"}], one per cluster, in cluster order
    travel_axis: str
    training: dict  # files, frame counts, hashes, options, seed, loss, cluster sizes...
    created: str
    version: str = __version__
    extra: dict = field(default_factory=dict)

    @property
    def latent(self) -> int:
        return int(self.weights["enc2.weight"].shape[0])

    @property
    def clusters(self) -> int:
        return int(self.weights["centroids"].shape[0])

    def onnx_metadata(self) -> dict:
        """metadata_props for the exported graph (thermalcount.model.contract)."""
        return exported_metadata(version=__version__, states=self.states, travel_axis=self.travel_axis,
                                 latent=self.latent, clusters=self.clusters, training=self.training,
                                 created=self.created, preprocessing=self.preprocessing.to_dict())

    def metadata(self) -> dict:
        return {
            "format": FILE_FORMAT, "thermalcount_version": self.version, "created": self.created,
            "states": self.states, "travel_axis": self.travel_axis, "training": self.training,
            "preprocessing": self.preprocessing.to_dict(), "extra": self.extra,
        }


def save_model(model: TrainedModel, path, *, overwrite: bool = False) -> Path:
    """Write the model file atomically; OutputPathError if it exists and not ``overwrite``."""
    from thermalcount.support.safe_files import check_output_path

    path = Path(path)
    check_output_path(path, overwrite=overwrite)  # before the work of packing the archive
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        members = {name: np.ascontiguousarray(array, dtype=np.float32) for name, array in model.weights.items()}
        members[METADATA_MEMBER] = np.frombuffer(
            json.dumps(model.metadata(), sort_keys=True).encode("utf-8"), dtype=np.uint8)
        for name in sorted(members):
            info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            array_bytes = io.BytesIO()
            np.lib.format.write_array(array_bytes, members[name], allow_pickle=False)
            archive.writestr(info, array_bytes.getvalue())
    return write_atomically(path, buffer.getvalue(), overwrite=overwrite)


def load_model(path) -> TrainedModel:
    """Read a model file written by :func:`save_model`; ModelError (one line) for anything else."""
    import stat

    from thermalcount.support.safe_files import lookup

    path = Path(path)
    info = lookup(path, ModelError)
    if info is None or not stat.S_ISREG(info.st_mode):
        raise ModelError(f"model file {path} does not exist; train one with 'thermalcount train'")
    hint = "pass a file written by 'thermalcount train'"
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(b"\x08") and path.suffix == ".onnx":
        raise ModelError(f"{path} is already an exported ONNX model: use it with --model; 'thermalcount export' "
                         "takes the .npz file written by 'thermalcount train'")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError):
        # zipfile says NotImplementedError for a member's unknown compression method and
        # RuntimeError for an encrypted one: both are damaged or foreign archives here.
        what = "a zip archive" if not head.startswith(b"PK") else "a readable model archive"
        raise ModelError(f"{path} is not a thermalcount model file (not {what}); {hint}") from None
    except MemoryError:  # an array header claiming terabytes: a damaged or crafted file
        raise ModelError(f"{path} is damaged: an array in it claims more memory than any model needs; "
                         f"{hint}") from None
    raw = arrays.pop(METADATA_MEMBER, None)
    try:
        metadata = json.loads(bytes(raw).decode("utf-8")) if raw is not None else None
    except (UnicodeDecodeError, ValueError):
        metadata = None
    if not isinstance(metadata, dict) or metadata.get("format") != FILE_FORMAT:
        raise ModelError(f"{path} is not a thermalcount model file (no {FILE_FORMAT} metadata); {hint}")
    missing = [name for name in WEIGHT_NAMES if name not in arrays]
    if missing:
        raise ModelError(f"{path} lacks weight(s) {', '.join(missing)}; re-train it with 'thermalcount train'")
    not_real = sorted(name for name, array in arrays.items() if array.dtype.kind not in "fiu")
    if not_real:  # strings would crash the float conversion, complex numbers lose a part silently
        raise ModelError(f"{path}: weight(s) {', '.join(not_real)} are not real numbers; "
                         "re-train it with 'thermalcount train'")
    try:
        return TrainedModel(
            weights={name: np.asarray(array, dtype=np.float32) for name, array in arrays.items()},
            preprocessing=Preprocessing.from_dict(metadata["preprocessing"]),
            states=list(metadata["states"]), travel_axis=str(metadata["travel_axis"]),
            training=dict(metadata["training"]), created=str(metadata["created"]),
            version=str(metadata.get("thermalcount_version", "")), extra=dict(metadata.get("extra", {})),
        )
    except (KeyError, TypeError) as error:
        raise ModelError(f"{path} has incomplete metadata (missing {error}); re-train it with 'thermalcount train'") from None
