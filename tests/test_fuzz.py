"""Fuzzing the two readers that take files from users: recordings and models.

hypothesis corrupts a valid file (truncation, flipped bytes, overwritten ranges, appended
junk) or builds structurally wrong ones (HDF5 with odd datasets and attributes, ONNX protos
with odd metadata). Whatever comes in, the readers may only raise a ThermalcountError
subclass whose message is one line, never another exception. Example counts and deadlines
are bounded so the file runs in about 20 s.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from thermalcount.errors import ThermalcountError
from thermalcount.store import open_recording, write_recording

FUZZ = settings(max_examples=60, deadline=2000, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Blob(bytes):
    """File bytes with a short repr, so a failing example does not print 300 kB."""

    def __repr__(self):
        return f"<{len(self)} bytes>"


def _assert_clear(error: BaseException) -> None:
    assert isinstance(error, ThermalcountError), f"{type(error).__name__}: {error}"
    message = str(error)
    assert message and "\n" not in message, repr(message)


def _expect_clear_or_ok(action):
    """Run ``action``; success is fine, a ThermalcountError must be one line, anything else fails."""
    try:
        action()
    except Exception as error:  # noqa: BLE001 - the point is to see what escapes
        _assert_clear(error)


# ------------------------------------------------------------------------ recordings


@pytest.fixture(scope="module")
def valid_recording_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("fuzz") / "valid.h5"
    rng = np.random.default_rng(0)
    frames = (22 + rng.normal(0, 0.5, (600, 8, 8))).astype(np.float32)
    write_recording(path, frames, 1.7e9 + np.arange(600) / 10, fps=10.0,
                    events=[(100, "in"), (300, "out")], thermistor=np.full(600, 24.0))
    return Blob(path.read_bytes())


def _read_everything(path: Path) -> None:
    with open_recording(path) as recording:
        for _chunk in recording.iter_chunks(128):
            pass
        recording.timestamps()
        recording.thermistor()
        recording.events
        recording.check_values()
        recording.content_hash()


mutation = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), min_size=1, max_size=8)),
    st.tuples(st.just("overwrite"), st.floats(0.0, 1.0), st.binary(min_size=1, max_size=512)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=256)),
)


def _mutate(data: bytes, change) -> bytes:
    kind = change[0]
    buffer = bytearray(data)
    if kind == "truncate":
        return bytes(buffer[: int(change[1] * len(buffer))])
    if kind == "flip":
        for where, mask in change[1]:
            index = min(int(where * len(buffer)), len(buffer) - 1)
            buffer[index] ^= mask
        return bytes(buffer)
    if kind == "overwrite":
        start = min(int(change[1] * len(buffer)), len(buffer) - 1)
        payload = change[2]
        buffer[start:start + len(payload)] = payload
        return bytes(buffer)
    return bytes(buffer) + change[1]


@FUZZ
@given(change=mutation)
def test_corrupt_recording_bytes_give_clear_errors(valid_recording_bytes, tmp_path, change):
    path = tmp_path / "fuzzed.h5"
    data = _mutate(valid_recording_bytes, change)
    path.write_bytes(data)
    _expect_clear_or_ok(lambda: _read_everything(path))
    assert path.read_bytes() == data  # reading never writes


# Structurally odd but well-formed HDF5 files: every dataset/attribute the reader looks at.
_dtypes = st.sampled_from(["f4", "f8", "i4", "u1", "S4", "bool"])
_shapes = st.one_of(st.just((0,)), st.just((5,)), st.just((5, 8, 8)), st.just((5, 64)), st.just((5, 8)),
                    st.just((0, 8, 8)), st.just(()), st.just((3, 8, 8, 1)))
_attr_values = st.one_of(st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=8),
                         st.binary(max_size=8), st.booleans(), st.lists(st.integers(0, 9), min_size=1, max_size=3))
_event_fields = st.sampled_from([
    [("frame", "<i8"), ("time", "<f8"), ("direction", "S3")],
    [("frame", "<f8"), ("time", "<f8"), ("direction", "S3")],
    [("frame", "S8"), ("time", "S8"), ("direction", "<i4")],
    [("frame", "<i8"), ("direction", "S3")],
])


@st.composite
def hdf5_layout(draw):
    layout = {"attrs": {}, "datasets": {}, "groups": [], "events": None}
    if draw(st.booleans()):
        layout["attrs"]["schema_version"] = draw(st.one_of(st.just(1), _attr_values))
    for name in ("fps", "closed_cleanly", "travel_axis", "start_time"):
        if draw(st.booleans()):
            layout["attrs"][name] = draw(_attr_values)
    for name in ("frames", "timestamps", "thermistor"):
        choice = draw(st.sampled_from(["absent", "dataset", "group"]))
        if choice == "dataset":
            layout["datasets"][name] = (draw(_shapes), draw(_dtypes), draw(st.booleans()))
        elif choice == "group":
            layout["groups"].append(name)
    events = draw(st.sampled_from(["absent", "table", "group", "plain"]))
    if events == "table":
        layout["events"] = ("table", draw(_event_fields), draw(st.integers(0, 4)))
    elif events != "absent":
        layout["events"] = (events, None, 0)
    return layout


def _write_layout(path: Path, layout) -> None:
    with h5py.File(path, "w") as h5:
        for key, value in layout["attrs"].items():
            h5.attrs[key] = value
        for name, (shape, dtype, chunked) in layout["datasets"].items():
            data = np.zeros(shape, dtype=dtype)
            if dtype.startswith("f") and data.size:
                data.flat[0] = np.nan
            h5.create_dataset(name, data=data, chunks=True if chunked and shape else None,
                              maxshape=(None,) + tuple(shape[1:]) if chunked and shape else None)
        for name in layout["groups"]:
            h5.create_group(name)
        if layout["events"] is not None:
            kind, fields, rows = layout["events"]
            if kind == "table":
                h5.create_dataset("events", data=np.zeros(rows, dtype=np.dtype(fields)))
            elif kind == "group":
                h5.create_group("events")
            else:
                h5.create_dataset("events", data=np.arange(3))


@FUZZ
@given(layout=hdf5_layout())
def test_wrong_schema_recordings_give_clear_errors(tmp_path, layout):
    path = tmp_path / "layout.h5"
    _write_layout(path, layout)
    before = path.read_bytes()
    _expect_clear_or_ok(lambda: _read_everything(path))
    assert path.read_bytes() == before


# ------------------------------------------------------------------------ models


@pytest.fixture(scope="module")
def default_model_bytes() -> bytes:
    from thermalcount.model.contract import default_model_path

    return Blob(Path(default_model_path()).read_bytes())


def _load_runtime_model(path: Path, backend: str) -> None:
    from thermalcount.model.loader import Model

    model = Model.load(path, backend=backend)
    model.infer_one(np.full((8, 8), 22.0, np.float32))
    model.infer(np.full((3, 8, 8), 22.0, np.float32))


@settings(max_examples=40, deadline=3000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(change=mutation, backend=st.sampled_from(["onnxruntime", "numpy"]))
def test_corrupt_onnx_bytes_give_clear_errors(default_model_bytes, tmp_path, change, backend):
    path = tmp_path / "fuzzed.onnx"
    data = _mutate(default_model_bytes, change)
    path.write_bytes(data)
    _expect_clear_or_ok(lambda: _load_runtime_model(path, backend))
    assert path.read_bytes() == data


_metadata_values = st.one_of(st.text(max_size=20), st.sampled_from(
    ["[]", "{}", "null", "[{}]", '[{"cluster": 0}]', "rows", "columns", "thermalcount-model/1", "-1", "0",
     "1e9", "NaN", '[{"cluster": 0, "name": "empty", "position": "x", "people": 0}]']))


@settings(max_examples=40, deadline=3000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=st.dictionaries(
    st.sampled_from(["format", "states", "travel_axis", "latent", "clusters", "input_units", "training"]),
    st.one_of(st.none(), _metadata_values), min_size=1, max_size=4),
    backend=st.sampled_from(["onnxruntime", "numpy"]))
def test_odd_model_metadata_gives_clear_errors(default_model_bytes, tmp_path, edits, backend):
    """A real graph with edited metadata (None = the key removed)."""
    import onnx

    proto = onnx.load_model_from_string(default_model_bytes)
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    for key, value in edits.items():
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    path = tmp_path / "edited.onnx"
    path.write_bytes(proto.SerializeToString())
    _expect_clear_or_ok(lambda: _load_runtime_model(path, backend))


@settings(max_examples=40, deadline=3000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(change=mutation)
def test_corrupt_onnx_bytes_inspect(default_model_bytes, tmp_path, change):
    """``inspect`` validates with the runtime's loader, then summarises the same bytes."""
    from thermalcount.cli.inspect_cmd import inspect

    path = tmp_path / "fuzzed.onnx"
    path.write_bytes(_mutate(default_model_bytes, change))
    _expect_clear_or_ok(lambda: inspect.callback(model=str(path), as_json=True))


# The trained-model file (.npz written by 'thermalcount train'), read by export without torch.
def _npz(members: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **members)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def trained_model_bytes() -> bytes:
    from thermalcount.model import trained_file

    rng = np.random.default_rng(1)
    metadata = {"format": trained_file.FILE_FORMAT, "states": [], "travel_axis": "rows", "training": {},
                "created": "2026-01-01T00:00:00Z", "preprocessing": {}}
    members = {name: rng.normal(size=(4, 4)).astype(np.float32) for name in trained_file.WEIGHT_NAMES}
    members[trained_file.METADATA_MEMBER] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    return Blob(_npz(members))


@settings(max_examples=60, deadline=2000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(change=st.one_of(mutation, st.tuples(st.just("metadata"), st.one_of(
    st.binary(max_size=64), st.sampled_from([b"{}", b"[]", b"null", b'{"format": 1}', b"\xff\xfe"])))))
def test_corrupt_trained_model_files_give_clear_errors(trained_model_bytes, tmp_path, change):
    from thermalcount.model import trained_file

    if change[0] == "metadata":
        with np.load(io.BytesIO(trained_model_bytes)) as archive:
            members = {name: archive[name] for name in archive.files}
        members[trained_file.METADATA_MEMBER] = np.frombuffer(change[1], dtype=np.uint8)
        data = _npz(members)
    else:
        data = _mutate(trained_model_bytes, change)
    path = tmp_path / "model.npz"
    path.write_bytes(data)
    _expect_clear_or_ok(lambda: trained_file.load_model(path))


def test_trained_model_loader_refuses_pickles(tmp_path):
    """An object array inside the .npz would need pickle: refused with a clear error."""
    from thermalcount.model import trained_file

    path = tmp_path / "pickled.npz"
    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.array([{"evil": 1}], dtype=object) for name in trained_file.WEIGHT_NAMES})
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ThermalcountError) as caught:
        trained_file.load_model(path)
    _assert_clear(caught.value)
    assert zipfile.is_zipfile(path)


def test_trained_model_with_an_unknown_compression_method(trained_model_bytes, tmp_path):
    """Found by the fuzzer above: zipfile raises NotImplementedError for it."""
    from thermalcount.model import trained_file

    data = bytearray(trained_model_bytes)
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # local and central headers
        start = data.find(signature)
        while start >= 0:
            data[start + offset:start + offset + 2] = (99).to_bytes(2, "little")
            start = data.find(signature, start + 4)
    path = tmp_path / "model.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(ThermalcountError) as caught:
        trained_file.load_model(path)
    _assert_clear(caught.value)
