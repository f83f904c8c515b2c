"""The exported model's contract, in one place: what ``export`` writes and what the runtime accepts.

An exported model is one ONNX graph with

* one input ``frames``: float32 ``[N, 8, 8]`` in °C, with a free batch dimension;
* three outputs: ``state`` int64 ``[N]`` (the index of the state in ``states``),
  ``distances`` float32 ``[N, clusters]`` and ``embedding`` float32 ``[N, latent]``;
* metadata strings: :data:`REQUIRED_METADATA` (the runtime reads them; a model without one
  is refused) and :data:`DESCRIPTIVE_METADATA` (the exporter writes them too, for people
  and provenance; the runtime does not need them).

``states`` is a JSON list with one entry per cluster, then the frame rules' states
(:mod:`thermalcount.model.rules`). That list of dicts is the on-disk form only: in memory a
state is a :class:`StateMeaning` (:func:`meanings_from_states`).

The checks here are those of THE validator, :meth:`thermalcount.model.loader.Model.from_bytes`:
``count``, ``run``, ``inspect`` and ``export`` all go through it. numpy only at import time;
the runtime parses the graph with :mod:`thermalcount.model.onnx_schema`, and ``onnx`` is
imported only by :func:`parse_model` for the tools that want its messages (``inspect``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional, Union

import numpy as np

from thermalcount.errors import ModelError
from thermalcount.model.rules import APART_PLACES, FrameRules, apart_where

MODEL_FORMAT = "thermalcount-model/1"
INPUT_NAME = "frames"
OUTPUT_NAMES = ("state", "distances", "embedding")
#: Metadata the runtime reads: a model without one of these keys is refused.
REQUIRED_METADATA = ("format", "states", "travel_axis", "latent", "clusters")
#: Metadata the exporter writes besides: shown by ``inspect``, optional on load (a model
#: without ``preprocessing`` has no per-pixel background tracker).
DESCRIPTIVE_METADATA = ("thermalcount_version", "input_units", "training", "created", "preprocessing")
TRAVEL_AXES = ("rows", "columns")
DEFAULT_MODEL_RESOURCE = "default_model.onnx"
_RE_EXPORT = "re-export it with 'thermalcount export'"


@dataclass(frozen=True)
class StateMeaning:
    """What a state means: how many people, and where the warm blob sits (0..1)."""

    cluster: int
    name: str
    position: Optional[float]
    people: int
    #: None for a cluster; "faint edge" or "two humps" for a frame rule's state (model/rules.py).
    rule: Optional[str] = None
    #: Two people apart: where the pair sits ("low": one at the low edge and one further
    #: in, "both": one near each end, "high"), else None.
    apart: Optional[str] = None


class InferenceResult(NamedTuple):
    state: np.ndarray  # (N,) int64
    distances: np.ndarray  # (N, K) float32
    embedding: np.ndarray  # (N, latent) float32


def default_model_path() -> Path:
    """Where the embedded default model lives inside the installed package."""
    return Path(__file__).resolve().parent.parent / "data" / DEFAULT_MODEL_RESOURCE


def resolve_model_path(path: Union[str, Path, None]) -> Path:
    """``path`` as a Path; None or ``"default"`` is the embedded model (ModelError if this
    install lacks it)."""
    if path is None or str(path) == "default":
        path = default_model_path()
        if not path.is_file():
            raise ModelError("the embedded default model is missing from this install; "
                             "reinstall thermalcount or pass --model PATH")
    return Path(path)


def exported_metadata(*, version: str, states: list, travel_axis: str, latent: int, clusters: int,
                      training: dict, created: str, preprocessing: dict) -> dict:
    """The metadata strings ``export`` writes: every key of REQUIRED_METADATA and
    DESCRIPTIVE_METADATA."""
    return {
        "thermalcount_version": version,
        "format": MODEL_FORMAT,
        "states": json.dumps(states),
        "travel_axis": travel_axis,
        "input_units": "celsius",
        "latent": str(latent),
        "clusters": str(clusters),
        "training": json.dumps(training, sort_keys=True),
        "created": created,
        "preprocessing": json.dumps(preprocessing, sort_keys=True),
    }


def meanings_from_states(states: list) -> list:
    """The states list (metadata ``states``, as training writes it) as StateMeanings.
    ValueError/KeyError/TypeError for an entry that lacks a field."""
    meanings = []
    for entry in states:
        position = entry["position"]
        meanings.append(StateMeaning(int(entry["cluster"]), str(entry["name"]),
                                     None if position is None else float(position), int(entry["people"]),
                                     entry["rule"]["test"] if "rule" in entry else None, apart_where(entry)))
    return meanings


# ------------------------------------------------------------------------------- checks


def read_model_bytes(path: Path) -> bytes:
    """The bytes of the model file at ``path``; ModelError (one line) for anything that is
    not a readable regular file."""
    from thermalcount.support.safe_files import lookup, special_kind

    info = lookup(path, ModelError)
    if info is None:
        raise ModelError(f"model file {path} does not exist; pass --model PATH to an exported "
                         ".onnx file or --model default")
    if path.is_dir():
        raise ModelError(f"model path {path} is a directory; pass the .onnx file inside it")
    kind = special_kind(info.st_mode)
    if kind is not None:  # reading a FIFO would wait for a writer forever
        raise ModelError(f"model file {path} is {kind}, not a file; pass an exported .onnx file")
    try:
        return path.read_bytes()
    except OSError as error:
        raise ModelError(f"cannot read model file {path} ({error.strerror}); check its permissions") \
            from None


def parse_model(data: bytes, path: Path, *, light: bool = False):
    """``data`` as an ``onnx.ModelProto``; ModelError when it is not an ONNX graph. ``light``:
    as :class:`thermalcount.model.onnx_schema.ModelProto` (what both runtime backends read,
    without ``import onnx``, the bulk of start-up: see that module)."""
    from google.protobuf.message import DecodeError

    if not data:
        raise ModelError(f"model file {path} is empty; {_RE_EXPORT}")
    if data[:4] == b"PK\x03\x04":
        # A training model file (a zip of arrays): the runtime needs its exported graph.
        raise ModelError(f"{path} is a training model, not an exported one; run "
                         f"'thermalcount export {path} --out model.onnx' and pass the .onnx file")
    try:
        if light:
            from thermalcount.model.onnx_schema import ModelProto

            proto = ModelProto()
            proto.ParseFromString(data)
        else:
            import onnx

            proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError):
        raise ModelError(f"{path} is not an ONNX model; pass a file written by "
                         "'thermalcount export'") from None
    if not proto.graph.node:
        raise ModelError(f"{path} is not an ONNX model (no graph); pass a file written by "
                         "'thermalcount export'")
    return proto


def check_io(proto, path: Path) -> None:
    """The graph's input and outputs are the contract's (module docstring). ``proto``: an
    ``onnx.ModelProto`` or an ``onnx_schema.ModelProto`` (same fields, same numbers)."""
    from thermalcount.model.onnx_schema import DATA_TYPE_NAMES, FLOAT, INT64

    graph = proto.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    names = [value.name for value in inputs]
    if names != [INPUT_NAME]:
        raise ModelError(f"{path} has inputs {names}, expected one input named {INPUT_NAME!r} "
                         f"(float32 [N, 8, 8]); {_RE_EXPORT}")
    tensor = inputs[0].type.tensor_type
    if tensor.elem_type != FLOAT:
        raise ModelError(f"{path}: input {INPUT_NAME!r} must be float32, not "
                         f"{DATA_TYPE_NAMES.get(tensor.elem_type, 'undefined')}; re-export the model")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if len(dims) != 3 or dims[1:] != [8, 8] or dims[0] not in (None, 0):
        shown = "x".join("N" if d is None else str(d) for d in dims) or "scalar"
        raise ModelError(f"{path}: input {INPUT_NAME!r} has shape {shown}, expected Nx8x8 with a "
                         "free batch dimension; re-export the model")
    outputs = {value.name: value.type.tensor_type.elem_type for value in graph.output}
    expected = dict(zip(OUTPUT_NAMES, (INT64, FLOAT, FLOAT)))
    for name, elem in expected.items():
        if name not in outputs:
            raise ModelError(f"{path} has no output {name!r} (outputs: {sorted(outputs)}); {_RE_EXPORT}")
        if outputs[name] != elem:
            raise ModelError(f"{path}: output {name!r} has the wrong type; re-export the model")


def check_metadata(metadata: dict, path: Path):
    """``(meanings, travel_axis, latent, clusters)`` from the model's metadata strings;
    ModelError naming the key when one is missing or malformed."""
    for key in REQUIRED_METADATA:
        if key not in metadata:
            raise ModelError(f"{path} is missing metadata {key!r}; {_RE_EXPORT}")
    if metadata["format"] != MODEL_FORMAT:
        raise ModelError(f"{path} has format {metadata['format']!r}, this thermalcount reads "
                         f"{MODEL_FORMAT!r}; re-export it or upgrade thermalcount")
    try:
        latent, clusters = int(metadata["latent"]), int(metadata["clusters"])
        states = json.loads(metadata["states"])
    except (ValueError, TypeError):
        raise ModelError(f"{path} has malformed metadata 'latent', 'clusters' or 'states'; "
                         "re-export the model") from None
    travel_axis = metadata["travel_axis"]
    if travel_axis not in TRAVEL_AXES:
        raise ModelError(f"{path}: metadata travel_axis is {travel_axis!r}, expected 'rows' or "
                         "'columns'; re-export the model")
    try:
        rules = FrameRules(states)  # also checks that states is a list of objects
    except ModelError as error:
        raise ModelError(f"{path}: {error}") from None
    if rules.clusters != clusters or clusters < 1:
        raise ModelError(f"{path}: metadata 'states' must list one entry per cluster ({clusters}), then the "
                         "frame rules' states; re-export the model")
    meanings = []
    for index, entry in enumerate(states):
        try:
            meaning, = meanings_from_states([entry])
        except (KeyError, TypeError, ValueError):
            raise ModelError(f"{path}: metadata 'states' entry {index} needs cluster, name, "
                             "position and people; re-export the model") from None
        if meaning.cluster != index or meaning.people < 0 or meaning.apart not in (None, *APART_PLACES) or (
                meaning.position is not None and not 0.0 <= meaning.position <= 1.0):
            raise ModelError(f"{path}: metadata 'states' entry {index} is inconsistent "
                             f"({entry}); re-export the model")
        meanings.append(meaning)
    return meanings, travel_axis, latent, clusters


def pattern_seconds(metadata: dict, path: Path) -> Optional[float]:
    """``pattern_seconds`` from the model's preprocessing description (None: no per-pixel
    background tracker)."""
    try:
        value = json.loads(metadata.get("preprocessing", "{}")).get("pattern_seconds")
        seconds = None if value is None else float(value)
    except (ValueError, TypeError, AttributeError):
        raise ModelError(f"{path}: metadata 'preprocessing' is malformed; re-export the model") from None
    if seconds is not None and not seconds > 0:
        raise ModelError(f"{path}: metadata pattern_seconds must be positive; re-export the model")
    return seconds
