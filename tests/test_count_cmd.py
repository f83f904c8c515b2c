"""``thermalcount count`` and the offline counting workflow, end to end on real recordings.

The model is a hand-made contract graph (blob_model) that finds the warm blob and its
position along the travel axis with plain arithmetic, so these tests check the pipeline
(store -> batch inference -> counter -> scoring -> output) on simulated doorway recordings
whatever state the trained default model is in; the default model gets its own test.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from onnx import helper

from tests.test_runtime_model import _c, contract_model, metadata, save
from thermalcount.cli import cli
from thermalcount.runtime.offline import count_recording
from thermalcount.runtime.counter import Counter
from thermalcount.model.loader import Model
from thermalcount.sensors.sim.simulator import write_simulation
from thermalcount.store import open_recording, write_recording

BLOB_MEANINGS = [
    {"cluster": 0, "name": "empty", "position": None, "people": 0},
    {"cluster": 1, "name": "low", "position": 0.1, "people": 1},
    {"cluster": 2, "name": "middle", "position": 0.5, "people": 1},
    {"cluster": 3, "name": "high", "position": 0.9, "people": 1},
]


def blob_model(threshold=1.0, cap=6.0, axis="rows"):
    """embedding = [warm mass (capped, 0..1), mass-weighted position along the axis (0..1)]
    of the pixels more than ``threshold`` °C above the frame mean; nearest of 4 centroids."""
    index = (np.arange(64) // 8) if axis == "rows" else (np.arange(64) % 8)
    projection = np.stack([np.full(64, 1.0 / cap), index / 7.0], axis=1)
    n = helper.make_node
    nodes = [n("Reshape", ["frames", "s"], ["flat"]),
             n("ReduceMean", ["flat"], ["bg"], axes=[1], keepdims=1),
             n("Sub", ["flat", "bg"], ["res"]), n("Sub", ["res", "thr"], ["sh"]),
             n("Relu", ["sh"], ["warm"]), n("MatMul", ["warm", "proj"], ["mp"]),
             n("Split", ["mp", "sizes"], ["m", "p"], axis=1),
             n("Mul", ["m", "capc"], ["mass"]), n("Add", ["mass", "eps"], ["mass_e"]),
             n("Div", ["p", "mass_e"], ["pos"]), n("Clip", ["m", "zero", "one"], ["mc"]),
             n("Mul", ["pos", "mc"], ["posw"]), n("Concat", ["mc", "posw"], ["embedding"], axis=1),
             n("Unsqueeze", ["embedding", "ax1"], ["e3"]), n("Sub", ["e3", "cent"], ["d"]),
             n("ReduceSumSquare", ["d"], ["distances"], axes=[2], keepdims=0),
             n("ArgMin", ["distances"], ["state"], axis=1, keepdims=0)]
    inits = [_c("s", [-1, 64], np.int64), _c("thr", [threshold]), _c("proj", projection),
             _c("sizes", [1, 1], np.int64), _c("capc", [cap]), _c("eps", [1e-3]), _c("zero", 0.0),
             _c("one", 1.0), _c("ax1", [1], np.int64), _c("cent", [[0, 0], [1, .1], [1, .5], [1, .9]])]
    return contract_model(nodes, inits, latent=2, meanings=BLOB_MEANINGS,
                          meta=metadata(BLOB_MEANINGS, 2, travel_axis=axis))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return str(save(blob_model(), tmp_path_factory.mktemp("model") / "blob.onnx"))


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """6 minutes of people crossing one at a time, with ground truth."""
    path = tmp_path_factory.mktemp("rec") / "single.h5"
    write_simulation(str(path), 3600, "single", seed=11)
    return str(path)


def run(*args):
    result = CliRunner().invoke(cli, ["count", *map(str, args)])
    return result


def as_json(*args) -> dict:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_schema_and_score_on_a_simulated_recording(single, model_path):
    data = as_json(single, "--model", model_path)
    assert set(data) == {"events", "entries", "exits", "score", "travel_axis"}
    assert data["events"], "the recording has crossings"
    for event in data["events"]:
        assert set(event) == {"frame", "time", "direction", "occupancy"}
        assert isinstance(event["frame"], int) and isinstance(event["time"], float)
        assert event["direction"] in ("in", "out") and event["occupancy"] >= 0
    assert data["entries"] == sum(e["direction"] == "in" for e in data["events"])
    assert data["exits"] == sum(e["direction"] == "out" for e in data["events"])
    score = data["score"]
    for key in ("in", "out", "overall"):
        assert set(score[key]) == {"precision", "recall", "f1", "tp", "fp", "fn"}
    truth = open_recording(single).events
    assert score["true_entries"] + score["true_exits"] == len(truth)
    assert score["overall"]["tp"] + score["overall"]["fn"] == len(truth)
    # One person at a time and a model that sees the blob: the count must be nearly perfect.
    assert score["overall"]["f1"] >= 0.95, score["overall"]


def test_same_result_whatever_the_chunking_and_backend(single, model_path):
    reference = as_json(single, "--model", model_path)
    assert as_json(single, "--model", model_path, "--chunk-frames", 977) == reference
    assert as_json(single, "--model", model_path, "--backend", "numpy", "--chunk-frames", 5000) == reference


def test_offline_count_equals_the_live_path(single, model_path):
    """Batch inference + process() must give what infer_one + update() give frame by frame."""
    model = Model.load(model_path)
    recording = open_recording(single)
    counter = Counter(model.meanings)
    live = []
    for frame, time in zip(recording.read(), recording.timestamps()):
        live += counter.update(time, model.infer_one(frame))
    live += counter.finish()
    offline = count_recording(single, model=model_path)
    assert offline.events == live and len(live) > 10


def test_flip_swaps_every_direction(single, model_path):
    plain = as_json(single, "--model", model_path)["events"]
    flipped = as_json(single, "--model", model_path, "--flip")["events"]
    assert plain
    assert [e["frame"] for e in flipped] == [e["frame"] for e in plain]
    assert all(a["direction"] != b["direction"] for a, b in zip(plain, flipped))


def test_plain_output_lists_events_totals_and_score(single, model_path):
    result = run(single, "--model", model_path)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert any(line.startswith(("in  frame", "out frame")) for line in lines)
    assert any(line.startswith("entries ") for line in lines)
    assert any(line.startswith("score overall") for line in lines)
    assert any(line.startswith("net count error") for line in lines)


def _recording_with_one_crossing(path, nan_frames=(), ground_truth=False):
    rng = np.random.default_rng(0)
    frames = (21 + rng.normal(0, 0.3, (300, 8, 8))).astype(np.float32)
    for i, row in enumerate(range(0, 8)):  # a warm blob walking down the rows, 3 frames a row
        frames[100 + 3 * i:103 + 3 * i, row, 3:5] += 5.0
    for index in nan_frames:
        frames[index] = np.nan
    events = [(112, "in")] if ground_truth else None
    write_recording(path, frames, 1000 + np.arange(300) * 0.1, fps=10, events=events)
    return str(path)


def test_no_ground_truth_means_score_null(tmp_path, model_path):
    data = as_json(_recording_with_one_crossing(tmp_path / "r.h5"), "--model", model_path)
    assert data["score"] is None
    assert [e["direction"] for e in data["events"]] == ["in"]


def test_nan_frames_are_skipped_with_a_warning(tmp_path, model_path):
    clean = as_json(_recording_with_one_crossing(tmp_path / "a.h5", ground_truth=True),
                    "--model", model_path)
    path = _recording_with_one_crossing(tmp_path / "b.h5", nan_frames=(5, 6, 250), ground_truth=True)
    result = CliRunner().invoke(cli, ["count", path, "--model", model_path, "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == clean
    assert "3 frame(s) held NaN" in result.stderr and "first: frame 5" in result.stderr
    # A NaN in the middle of the crossing holds the state before it: still one entry.
    path = _recording_with_one_crossing(tmp_path / "c.h5", nan_frames=(110,), ground_truth=True)
    assert [e["direction"] for e in as_json(path, "--model", model_path)["events"]] == ["in"]


@pytest.mark.parametrize("make, words", [
    (lambda p: p / "missing.h5", "missing.h5"),
    (lambda p: (p / "text.h5").write_text("not hdf5") and p / "text.h5", "text.h5"),
])
def test_bad_recording_is_one_line_error(tmp_path, model_path, make, words):
    result = run(make(tmp_path), "--model", model_path)
    assert result.exit_code != 0
    assert result.output.startswith("Error: ") and words in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_model_is_one_line_error(tmp_path, single):
    (tmp_path / "m.onnx").write_text("nope")
    result = run(single, "--model", tmp_path / "m.onnx")
    assert result.exit_code != 0 and "not an ONNX model" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = run(single, "--model", tmp_path / "absent.onnx")
    assert result.exit_code != 0 and "does not exist" in result.output


def test_wrong_input_shape_model_is_refused(tmp_path, single):
    nodes = [helper.make_node("Identity", ["frames"], ["state"])]
    path = save(contract_model(nodes, [], input_shape=("N", 64)), tmp_path / "flat.onnx")
    result = run(single, "--model", path)
    assert result.exit_code != 0 and "expected Nx8x8" in result.output


def test_default_model_counts_a_recording(single):
    data = as_json(single)
    assert set(data) == {"events", "entries", "exits", "score", "travel_axis"}
    assert data["score"] is not None
    assert data["entries"] + data["exits"] == len(data["events"])


# ------------------------------------------------------- the parallel chunk reader


def test_a_recording_stored_with_another_filter_is_counted(tmp_path, model_path):
    import h5py

    path = _recording_with_one_crossing(tmp_path / "r.h5", nan_frames=(7,))
    with h5py.File(path, "r+") as f:
        frames = f["frames"][:]
        del f["frames"]
        f.create_dataset("frames", data=frames, chunks=(100, 8, 8), compression="lzf",
                         maxshape=(None, 8, 8))
    result = CliRunner().invoke(cli, ["count", path, "--model", model_path, "--json"])
    assert [e["direction"] for e in json.loads(result.stdout)["events"]] == ["in"]
    assert "1 frame(s) held NaN or infinite values (first: frame 7)" in result.stderr


def test_auto_backend_timing_returns_a_working_model(single, model_path):
    from thermalcount.runtime.offline import _faster_for_batches

    model = Model.load(model_path, backend="onnxruntime")
    frames = open_recording(single).read(0, 2048)
    chosen = _faster_for_batches(model, frames)
    assert chosen.backend in ("onnxruntime", "numpy")
    np.testing.assert_array_equal(chosen.infer_states(frames), model.infer_states(frames))


# ------------------------------------------------------------------ --orientation


def _mountings(folder, scenario, seed):
    paths = {}
    for axis in ("rows", "columns"):
        paths[axis] = str(folder / f"{axis}.h5")
        write_simulation(paths[axis], 6000, scenario, seed=seed, travel_axis=axis)
    return paths


@pytest.fixture(scope="module")
def walks(tmp_path_factory):
    """The same 10 minutes of a doorway (the mixed scenario), mounted so people walk along
    the rows and along the columns."""
    return _mountings(tmp_path_factory.mktemp("walks"), "mixed", 21)


@pytest.fixture(scope="module")
def lone_walks(tmp_path_factory):
    """10 minutes of people crossing one at a time (what the blob model counts), both ways."""
    return _mountings(tmp_path_factory.mktemp("lone"), "single", 11)


def test_the_default_model_counts_either_mounting_without_a_setting(walks):
    """The default model walks along the rows; a columns recording is found to be one and
    turned, so it counts as well as the rows recording of the same people."""
    f1 = {}
    for axis, path in walks.items():
        result = run(path, "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        f1[axis] = data["score"]["overall"]["f1"]
        assert data["travel_axis"]["found"] == axis
        assert data["travel_axis"]["orientation"] == ("rotate=0,mirror=none" if axis == "rows"
                                                      else "rotate=90,mirror=horizontal")
        assert f"travel axis: {axis} (found from the frames" in result.stderr
    as_stored = as_json(walks["columns"], "--orientation", "none")["score"]["overall"]["f1"]
    print(f"F1 rows {f1['rows']:.3f}, columns found {f1['columns']:.3f}, columns as stored {as_stored:.3f}")
    assert abs(f1["columns"] - f1["rows"]) <= 0.05
    assert as_stored < f1["columns"] - 0.2


def test_auto_is_the_transpose_and_a_given_orientation_skips_the_search(lone_walks, model_path):
    walks = lone_walks
    found = run(walks["columns"], "--model", model_path, "--json")
    given = run(walks["columns"], "--model", model_path, "--json", "--orientation", "rotate=90,mirror=horizontal")
    assert found.exit_code == given.exit_code == 0
    found, given_data = json.loads(found.stdout), json.loads(given.stdout)
    assert found["events"] == given_data["events"] and found["events"]
    assert "travel axis" not in given.stderr  # nothing was looked for
    assert given_data["travel_axis"] == {"setting": "rotate=90,mirror=horizontal", "model_axis": "rows",
                                         "found": None, "orientation": "rotate=90,mirror=horizontal",
                                         "evidence": None}
    evidence = found["travel_axis"]["evidence"]
    assert evidence["moves"] >= evidence["moves_needed"]
    assert evidence["move_columns"] > 3 * evidence["move_rows"]
    # rotate=90 alone mirrors sideways too, which does not change the direction along the rows
    rotated = as_json(walks["columns"], "--model", model_path, "--orientation", "rotate=270")
    assert [e["direction"] for e in rotated["events"]] != [e["direction"] for e in found["events"]]


def test_none_counts_the_frames_as_stored(lone_walks, model_path):
    walks = lone_walks
    auto = as_json(walks["rows"], "--model", model_path)
    assert as_json(walks["rows"], "--model", model_path, "--orientation", "none")["events"] == auto["events"]
    assert auto["travel_axis"]["found"] == "rows" and auto["travel_axis"]["orientation"] == "rotate=0,mirror=none"


def test_a_recording_without_people_keeps_the_models_axis(tmp_path, model_path):
    path = str(tmp_path / "empty.h5")
    write_simulation(path, 3000, "empty", seed=2)
    result = run(path, "--model", model_path, "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["travel_axis"]["found"] is None and data["travel_axis"]["orientation"] == "rotate=0,mirror=none"
    assert "travel axis: not found from the frames" in result.stderr


@pytest.mark.parametrize("value", ["sideways", "rotate=45", "mirror=diagonal"])
def test_a_bad_orientation_is_one_line(single, value):
    result = run(single, "--orientation", value)
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_the_commands_chunk_default_is_the_librarys():
    """`count --chunk-frames` defaults to what count_recording uses (the command does not
    import the runtime just to show its help, so the number is written twice)."""
    from thermalcount.cli.count_cmd import count
    from thermalcount.runtime.offline import DEFAULT_CHUNK_FRAMES

    option = next(param for param in count.params if param.name == "chunk_frames")
    assert option.default == DEFAULT_CHUNK_FRAMES


class _Chunk:
    def __init__(self, start):
        self.start, self.frames = start, np.full((3, 8, 8), float(start), np.float32)


class _SlowModel:
    """Notes the order of ``prepare`` calls and the threads ``states_of`` runs on; even chunks'
    graphs take 20 ms, so the caller waits on them while the next chunk is prepared."""

    def __init__(self, fail_at=None):
        self.prepared, self.fail_at, self.threads = [], fail_at, set()

    def prepare(self, frames):
        self.prepared.append(int(frames[0, 0, 0]))
        return frames

    def states_of(self, prepared):
        import threading
        import time

        self.threads.add(threading.current_thread().name)
        start = int(prepared[0, 0, 0])
        if start == self.fail_at:
            raise RuntimeError("graph failed")
        time.sleep(0.02 if start % 2 == 0 else 0.0)
        return np.full(len(prepared), start, np.int64)


def test_the_count_pipeline_keeps_stream_order_and_runs_the_graph_on_a_worker():
    from thermalcount.runtime.offline import _inferred

    model = _SlowModel()
    out = [(chunk.start, list(states)) for chunk, states in _inferred(model, (_Chunk(s) for s in range(6)))]
    assert out == [(s, [s] * 3) for s in range(6)]
    assert model.prepared == list(range(6))
    assert all(name.startswith("thermalcount-count-graph") for name in model.threads)


def test_an_error_in_the_count_pipelines_graph_reaches_the_caller():
    from thermalcount.runtime.offline import _inferred

    seen = []
    with pytest.raises(RuntimeError, match="graph failed"):
        for chunk, _ in _inferred(_SlowModel(fail_at=2), (_Chunk(s) for s in range(6))):
            seen.append(chunk.start)
    assert seen == [0, 1]


def test_leaving_the_count_pipeline_early_stops_it():
    from thermalcount.runtime.offline import _inferred

    model = _SlowModel()
    pipeline = _inferred(model, (_Chunk(s) for s in range(100)))
    assert next(pipeline)[0].start == 0
    pipeline.close()
    assert len(model.prepared) <= 3  # the chunk yielded, the one in flight, no more
