"""train: preprocessing parity, determinism, bounded memory, meanings, bad input, the CLI."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
import torch  # noqa: E402

from tests.conftest import run_python  # noqa: E402
from thermalcount.model.rules import rule_states  # noqa: E402
from thermalcount.cli import cli  # noqa: E402
from thermalcount.errors import RecordingError, TrainingError  # noqa: E402
from thermalcount.model.preprocessing import Preprocessing  # noqa: E402
from thermalcount.sensors.sim.simulator import simulate  # noqa: E402
from thermalcount.store import RecordingWriter, open_recording, write_recording  # noqa: E402
from thermalcount.training.autoencoder import TorchPreprocessing  # noqa: E402
from thermalcount.training.data import ArraySource, TrainingData  # noqa: E402
from thermalcount.model.travel_axis import find_travel_axis  # noqa: E402
from thermalcount.training.meanings import assign_meanings  # noqa: E402
from thermalcount.model.trained_file import load_model, save_model  # noqa: E402
from thermalcount.training.train import TrainOptions, train_model  # noqa: E402

SPECS = [
    Preprocessing(),
    Preprocessing(background="mean", clip_low=None, clip_high=None, scale=2.0),
    Preprocessing(background="lowest", lowest_pixels=48, clip_low=0.75, clip_high=2.0),
    Preprocessing(background="lowest", lowest_pixels=32),
    Preprocessing(background="none", clip_low=None, clip_high=30.0, scale=10.0),
    Preprocessing(lateral_sort="rows", blur=0.5, contrast_skin=33.0, clip_low=1.0),  # the default model's
    Preprocessing(lateral_sort="columns", contrast_skin=30.0, clip_low=0.5, clip_high=None),
    Preprocessing(lateral_sort="rows", blur=0.5, contrast_skin=33.0, clip_low=0.8, gain_first=True),  # the default's
    Preprocessing(contrast_skin=30.0, clip_low=0.5, clip_high=None, gain_first=True),
]


def _sources(seed=0, n=5000, **kw):
    return [ArraySource(simulate(n, "single", seed=seed, **kw).frames, "single"),
            ArraySource(simulate(n, "busy", seed=seed + 1, **kw).frames, "busy")]


def _blob(centre_row, centre_col, peak=2.0, sigma=1.0):
    rows, cols = np.mgrid[0:8, 0:8]
    return peak * np.exp(-((rows - centre_row) ** 2 + (cols - centre_col) ** 2) / (2 * sigma ** 2))


# --- preprocessing ------------------------------------------------------------------------
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe())
def test_numpy_preprocessing_equals_torch(spec):
    frames = np.concatenate([simulate(3000, "warm_room", seed=1).frames, simulate(3000, "drift", seed=2).frames])
    reference = spec.apply(frames)
    mirrored = TorchPreprocessing(spec)(torch.from_numpy(frames)).numpy()
    assert reference.shape == (6000, 64)
    np.testing.assert_allclose(mirrored, reference, atol=1e-5, rtol=0)


def test_linear_parts_are_what_apply_computes_smoothing_included():
    # The exported graph folds a linear preprocessing into its first Gemm through these.
    frames = simulate(500, "busy", seed=4).frames.reshape(-1, 64)
    for spec in (Preprocessing(clip_low=None, clip_high=None),
                 Preprocessing(blur=0.5, clip_low=None, clip_high=None, scale=2.0),
                 Preprocessing(background="none", clip_low=None, clip_high=None, scale=10.0)):
        assert spec.is_linear
        matrix, shift = spec.linear_parts()
        np.testing.assert_allclose(frames.astype(np.float64) @ matrix + shift, spec.apply(frames), atol=1e-4)


@pytest.mark.parametrize("background", ["mean", "lowest"])
def test_background_removal_cancels_a_warmer_room(background):
    spec = Preprocessing(background=background)
    frames = simulate(500, "single", seed=4).frames
    np.testing.assert_allclose(spec.apply(frames + 5.0), spec.apply(frames), atol=1e-5)
    # ...and without background removal it would not (the test can fail).
    raw = Preprocessing(background="none", clip_low=None, clip_high=None)
    assert np.abs(raw.apply(frames + 5.0) - raw.apply(frames)).max() > 4.0


def test_clipping_maps_sub_noise_to_zero_and_caps_people():
    spec = Preprocessing()  # mean background, clip 0.5..2.5 °C
    frame = np.full((1, 8, 8), 21.0, np.float32)
    frame[0, 3:5, 3:5] += 6.0  # a hot person
    out = spec.apply(frame).reshape(8, 8)
    assert out.max() == pytest.approx(2.0)  # capped at clip_high - clip_low
    assert (out[:2] == 0).all()  # background pixels are exactly zero


def test_lateral_sort_forgets_where_along_the_door_line_someone_walks():
    spec = Preprocessing(lateral_sort="rows", clip_low=0.5)
    left, right = (21.0 + _blob(3.0, column, peak=4.0, sigma=0.7)[None] for column in (2.0, 5.0))
    np.testing.assert_allclose(spec.apply(left), spec.apply(right), atol=1e-4)
    # ...but not where along the travel axis (the test can fail), nor without the sort.
    assert np.abs(spec.apply(left) - spec.apply(21.0 + _blob(5.0, 2.0, peak=4.0, sigma=0.7)[None])).max() > 1.0
    assert np.abs(Preprocessing().apply(left) - Preprocessing().apply(right)).max() > 1.0


def test_contrast_normalisation_lifts_a_warm_rooms_faint_people():
    # A person stands out by (33 - room) / 12 of their 21 °C contrast (docs/simulator.md).
    def mass(spec, room):
        frame = room + _blob(3.5, 3.5, peak=4.5 * (33.0 - room) / 12.0)[None]
        return float(spec.apply(frame.astype(np.float32)).sum())

    plain, normalised = Preprocessing(clip_low=1.0), Preprocessing(clip_low=1.0, contrast_skin=33.0)
    assert mass(normalised, 21.0) == pytest.approx(mass(plain, 21.0), rel=1e-5)  # gain 1 at 21 °C
    assert mass(plain, 27.0) < 0.4 * mass(plain, 21.0)
    assert mass(normalised, 27.0) > 0.6 * mass(normalised, 21.0)
    # An empty room stays empty: the noise floor comes off before the gain.
    assert mass(normalised, 27.0) > 0 and normalised.apply(np.full((1, 8, 8), 27.0, np.float32)).max() == 0


def test_new_preprocessing_options_need_the_mean_background():
    with pytest.raises(ValueError):
        Preprocessing(background="lowest", lateral_sort="rows")
    with pytest.raises(ValueError):
        Preprocessing(lateral_sort="diagonal")
    with pytest.raises(ValueError):
        Preprocessing(lateral_sort="auto").sort_axis  # "auto" must be resolved by training first


# --- training -----------------------------------------------------------------------------
def _plain_options(**options):
    """A small model as TrainOptions() made one before its defaults became the default model's
    recipe: latent 4, the frame-mean background and clipping alone. The figures below were
    measured on such models (the recipe's tests are in test_default_model.py)."""
    return TrainOptions(latent=4, preprocessing=Preprocessing(), **options)


@pytest.fixture(scope="module")
def small_result():
    return train_model(_sources(), _plain_options(clusters=4, epochs=10, seed=5))


@pytest.mark.slow
def test_same_data_and_seed_give_the_same_model_bytes(tmp_path, small_result):
    again = train_model(_sources(), _plain_options(clusters=4, epochs=10, seed=5))
    again.model.created = small_result.model.created
    save_model(small_result.model, tmp_path / "a.npz")
    save_model(again.model, tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    other = train_model(_sources(), _plain_options(clusters=4, epochs=1, seed=6))
    assert not np.array_equal(other.model.weights["enc1.weight"], small_result.model.weights["enc1.weight"])


def test_report_figures_and_meanings(small_result):
    result = small_result
    # People walk along rows: 4 clusters = empty + the two edges + the middle or a second empty.
    names = [s["name"] for s in result.model.states]
    # ... and the frame rules' states, after the clusters (thermalcount.model.rules).
    assert names[4:] == ["edge-low", "edge-high", "apart-low", "apart", "apart-high"]
    assert result.model.states[4:] == rule_states(4)
    assert names[0] == "empty" and names[1] in ("low", "empty-2") and names[3] == "high"
    rule_frames = result.model.training["rule_frames"]
    # The busy doorway has pairs passing each other: a few % of its frames show them apart.
    apart = rule_frames["apart-low"] + rule_frames["apart"] + rule_frames["apart-high"]
    assert 0 < apart < 0.2 * result.model.training["frames"]
    # At 10 FPS the clusters see people at the edges; the edge rule takes few frames.
    assert rule_frames["edge-low"] + rule_frames["edge-high"] < 300
    # One-person clusters near each edge (with real-sized people k-means may also split the
    # empty scenes: "empty-2", never a person).
    positions = [s["position"] for s in result.model.states[:4] if s["people"] == 1]
    assert len(positions) >= 2 and min(positions) < 0.25 and max(positions) > 0.75
    assert sum(result.cluster_sizes) == 10_000 and min(result.cluster_sizes) > 200
    empty = sum(size for size, state in zip(result.cluster_sizes, result.model.states) if state["people"] == 0)
    assert empty > 0.5 * sum(result.cluster_sizes)  # most frames are empty scenes
    assert result.silhouette > 0.4
    assert result.history[-1]["val_loss"] < 0.2
    loaded = result.model.training
    assert loaded["train_frames"] + loaded["val_frames"] == 10_000 and loaded["val_frames"] > 500


def test_report_warns_when_no_state_holds_two_people(small_result):
    from types import SimpleNamespace

    from rich.console import Console

    from thermalcount.training.report import print_report

    def report(result):
        console = Console(record=True, width=200)
        print_report(result, console)
        return console.export_text()

    # The apart rule sees two people apart: no warning.
    assert "No two-people state" not in report(small_result)
    assert "apart (rule: two humps)" in report(small_result)  # the rules' rows, not clusters
    assert "edge-low (rule: faint edge)" in report(small_result)

    def with_states(states):
        model = SimpleNamespace(**{**vars(small_result.model), "states": states})
        return SimpleNamespace(**{**vars(small_result), "model": model})

    clusters = [dict(s) for s in small_result.model.states if "rule" not in s]
    assert "No two-people state" in report(with_states(clusters))  # --no-frame-rules
    # A heat-based "two" (people 2 with a position) is not two people apart: still warned.
    heavy = [dict(s) for s in clusters]
    heavy[2].update(name="two", people=2, position=0.5)
    assert "No two-people state" in report(with_states(heavy))
    humps = [dict(s) for s in clusters]
    humps[2].update(name="two", people=2, position=None, apart="both")
    assert "No two-people state" not in report(with_states(humps))


def test_model_file_round_trip(tmp_path, small_result):
    save_model(small_result.model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.states == small_result.model.states
    assert loaded.preprocessing == small_result.model.preprocessing
    assert loaded.training == small_result.model.training
    for name, array in small_result.model.weights.items():
        np.testing.assert_array_equal(loaded.weights[name], array)


@pytest.mark.slow
def test_columns_travel_axis_is_found_and_can_be_forced():
    result = train_model(_sources(seed=10, travel_axis="columns"), _plain_options(clusters=5, epochs=6, seed=1))
    assert result.model.travel_axis == "columns"
    assert result.travel_evidence["blob_variance_columns"] > result.travel_evidence["blob_variance_rows"]
    names = {s["name"]: s for s in result.model.states}
    assert {"empty", "low", "high"} <= set(names) and set(["edge-low", "edge-high", "apart-low", "apart", "apart-high"]) <= set(names)
    assert names["low"]["position"] < names["high"]["position"] - 0.25
    # The decoded "low" centroid has its heat on the low-index columns.
    low = result.decoded_c[names["low"]["cluster"]]
    assert low[:, :4].sum() > low[:, 4:].sum()
    forced = train_model(_sources(seed=10, travel_axis="columns"),
                         _plain_options(clusters=3, epochs=1, seed=1, travel_axis="rows"))
    assert forced.model.travel_axis == "rows" and forced.travel_evidence == {"forced": True}


def test_lateral_sort_auto_follows_the_travel_axis_found():
    spec = Preprocessing(lateral_sort="auto", clip_low=1.0)
    result = train_model(_sources(seed=10, n=2000, travel_axis="columns"),
                         TrainOptions(latent=4, clusters=3, epochs=1, seed=1, preprocessing=spec))
    assert result.model.travel_axis == "columns" and result.model.preprocessing.lateral_sort == "columns"


def test_find_travel_axis_from_simulated_frames():
    assert find_travel_axis(simulate(4000, "busy", seed=3).frames)[0] == "rows"
    assert find_travel_axis(simulate(4000, "busy", seed=3, travel_axis="columns").frames)[0] == "columns"


def test_meanings_of_known_decoded_centroids():
    empty = np.zeros((8, 8))
    centroids = np.stack([_blob(6.5, 3.5), empty, _blob(0.5, 3.5), _blob(3.5, 3.5),
                          _blob(1.5, 3.5) + _blob(5.5, 3.5)])
    states = assign_meanings(centroids, "rows")
    by_cluster = {s["cluster"]: s for s in states}
    assert [by_cluster[c]["name"] for c in range(5)] == ["high", "empty", "low", "middle", "two"]
    assert by_cluster[1]["position"] is None and by_cluster[1]["people"] == 0
    # Two blobs four rows apart: two people apart in the view, whose centre means nothing.
    assert by_cluster[4]["people"] == 2 and by_cluster[4]["position"] is None
    assert by_cluster[2]["position"] < 0.15 and by_cluster[0]["position"] > 0.8
    # The same scene seen with the other mounting: blobs move along columns.
    transposed = assign_meanings(np.transpose(centroids, (0, 2, 1)), "columns")
    assert [s["name"] for s in transposed] == [s["name"] for s in states]
    # Two clusters near the same edge get suffixes instead of being dropped.
    crowded = assign_meanings(np.stack([empty, _blob(0.5, 2), _blob(1.0, 5), _blob(6.5, 3.5)]), "rows")
    assert sorted(s["name"] for s in crowded) == ["empty", "high", "low", "low-2"]
    # A second, nearly empty cluster (e.g. another room's noise) is empty too, never a person.
    split_empty = assign_meanings(np.stack([_blob(0.5, 3.5), _blob(2.0, 2.0, peak=0.8), _blob(6.5, 3.5), empty,
                                            _blob(3.5, 3.5)]), "rows")
    assert [s["name"] for s in split_empty] == ["low", "empty-2", "high", "empty", "middle"]
    assert [s["people"] for s in split_empty] == [1, 0, 1, 0, 1]
    # Heat never makes "two": twice the heat in one hump (two people side by side, or one
    # real person in mid-view, who carries 2.6x the heat of the same person at the edge) is
    # one blob at its position.
    pair = assign_meanings(np.stack([empty, _blob(0.5, 3.5), _blob(3.5, 3.5), _blob(6.5, 3.5), _blob(1.5, 3.5),
                                     _blob(5.5, 3.5), _blob(3.5, 1.5) + _blob(3.5, 5.5)]), "rows")
    assert [s["people"] for s in pair] == [0, 1, 1, 1, 1, 1, 1]
    assert pair[6]["position"] == pytest.approx(0.5, abs=0.05)


def test_two_humps_needs_two_separate_blobs_along_the_travel_axis():
    from thermalcount.training.meanings import two_humps

    assert two_humps([0, 3, 4, 0, 0, 4, 3, 0])
    assert two_humps([5, 1, 0, 0, 0, 0, 0, 2])
    assert not two_humps([0, 3, 6, 6, 3, 0, 0, 0])  # one blob
    assert not two_humps([0, 3, 6, 1, 2, 0, 0, 0])  # a dip, not two people apart
    assert not two_humps([0, 8, 1, 0, 0, 1, 0, 0])  # a faint second bump is noise
    assert not two_humps([0] * 8)


def test_clusters_are_plain_k_means_on_all_frames():
    from thermalcount.training.kmeans import fit_centroids

    rng = np.random.default_rng(4)
    # Three well separated groups of 2-d "embeddings", one much bigger (the empty scenes):
    # k-means with 3 clusters finds one centroid in each, whatever the frames' heat.
    groups = [(0.0, 0.0, 6000), (5.0, 0.0, 3000), (0.0, 5.0, 300)]
    embeddings = np.concatenate([rng.normal((x, y), 0.1, (n, 2)) for x, y, n in groups])
    centroids = fit_centroids(embeddings, 3, seed=0)
    for x, y, _ in groups:
        assert np.min(np.hypot(centroids[:, 0] - x, centroids[:, 1] - y)) < 0.05
    np.testing.assert_array_equal(centroids, fit_centroids(embeddings, 3, seed=0))  # deterministic


# --- bounded memory -----------------------------------------------------------------------
def test_streaming_holds_a_bounded_number_of_frames():
    frames = simulate(40_000, "busy", seed=2).frames
    data = TrainingData([ArraySource(frames)], chunk_frames=1000, sample_size=500, val_size=200, seed=0)
    data.scan()
    batches = list(data.minibatches(0, 256))
    assert sum(len(b) for b in batches) == data.summary.n_train
    assert data.peak_frames_in_memory <= data.pool_chunks * 1000 + 256 + 700
    assert data.peak_frames_in_memory < len(frames) / 5
    # Every training frame comes exactly once per epoch, in a seeded but shuffled order.
    again = np.concatenate(list(data.minibatches(0, 256)))
    np.testing.assert_array_equal(np.concatenate(batches), again)
    assert not np.array_equal(np.concatenate(list(data.minibatches(1, 256))), again)


@pytest.mark.slow
def test_training_pass_over_a_recording_uses_bounded_memory(tmp_path):
    path = tmp_path / "long.h5"
    write_recording(path, simulate(120_000, "busy", seed=1).frames, fps=10.0)  # 31 MB of frames
    data = TrainingData([path], chunk_frames=2048, sample_size=1000, val_size=500, seed=0)
    tracemalloc.start()
    try:
        data.scan()
        for _ in data.minibatches(0, 512):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data.summary.n_frames == 120_000
    assert peak < 12 * 2**20, peak  # the whole recording would be 31 MB


# --- bad input ----------------------------------------------------------------------------
def test_tiny_nan_and_misshapen_data_are_one_line_errors(tmp_path):
    with pytest.raises(TrainingError, match="only 50 frames"):
        train_model([ArraySource(simulate(50, "single").frames)], TrainOptions(epochs=1))
    frames = simulate(2000, "single").frames
    frames[1234, 2, 2] = np.nan
    with pytest.raises(TrainingError, match="frame 1234 holds NaN"):
        train_model([ArraySource(frames, "bad")], TrainOptions(epochs=1))
    with pytest.raises(TrainingError, match=r"shape \(N, 8, 8\)"):
        train_model([ArraySource(np.zeros((500, 4, 16), np.float32))], TrainOptions(epochs=1))
    with pytest.raises(TrainingError, match="--clusters"):
        train_model(_sources(n=300), TrainOptions(clusters=1))
    with RecordingWriter(tmp_path / "empty.h5", fps=10.0):
        pass
    with pytest.raises(RecordingError, match="holds no frames"):
        train_model([tmp_path / "empty.h5"], TrainOptions(epochs=1))
    not_h5 = tmp_path / "notes.h5"
    not_h5.write_text("not a recording")
    with pytest.raises(RecordingError):
        train_model([not_h5], TrainOptions(epochs=1))


def test_missing_train_extra_says_what_to_install(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "from thermalcount.training.train import train_model\n"
        "from thermalcount.errors import TrainingError\n"
        "try:\n    train_model([])\nexcept TrainingError as e:\n    print(e)\n"
    )
    run = run_python(code)
    assert run.returncode == 0, run.stderr
    assert "pip install 'thermalcount[train]'" in run.stdout


@pytest.mark.slow
def test_train_cli_end_to_end(tmp_path):
    for name, scenario, seed in (("a.h5", "single", 1), ("b.h5", "busy", 2)):
        chunk = simulate(5000, scenario, seed=seed)
        write_recording(tmp_path / name, chunk.frames, chunk.timestamps, fps=10.0)
    args = ["train", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "--out", str(tmp_path / "m.npz"),
            "--epochs", "2", "--clusters", "4", "--plots", str(tmp_path / "plots")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    for text in ("Travel axis: rows", "empty", "Separation", "validation loss"):
        assert text in result.output
    model = load_model(tmp_path / "m.npz")
    assert model.clusters == 4 and [f["name"] for f in model.training["files"]] == ["a.h5", "b.h5"]
    assert [s["name"] for s in model.states[4:]] == ["edge-low", "edge-high", "apart-low", "apart", "apart-high"]  # the frame rules
    with open_recording(tmp_path / "a.h5") as recording:
        assert model.training["files"][0]["sha256"] == recording.content_hash()
    for png in ("embedding.png", "clusters.png", "centroids.png"):
        assert (tmp_path / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 1 and "--overwrite" in refused.output
    plain = CliRunner().invoke(cli, args[:4] + [str(tmp_path / "plain.npz"), "--epochs", "2", "--clusters", "4",
                                                "--no-frame-rules"])
    assert plain.exit_code == 0, plain.output
    plain_model = load_model(tmp_path / "plain.npz")
    assert len(plain_model.states) == 4 and plain_model.training["options"]["frame_rules"] is False
    empty = CliRunner().invoke(cli, ["train", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "x.npz")])
    assert empty.exit_code != 0 and empty.output.strip().startswith("Error: ")
    assert len(empty.output.strip().splitlines()) == 1


def test_train_command_defaults_are_the_default_models_recipe(tmp_path, monkeypatch):
    """One definition of the training defaults: `train` without options trains as the shipped
    model was trained (training/recipe.py), and so does TrainOptions()."""
    import thermalcount.training.train as training
    from thermalcount.training.default import default_options
    from thermalcount.training.recipe import CLUSTERS_RANGE, LATENT_RANGE

    captured = {}

    def capture(paths, out, options, **_):
        captured["options"] = options
        raise RuntimeError("captured")

    monkeypatch.setattr(training, "train", capture)
    recording = write_recording(tmp_path / "r.h5", simulate(200, "single", seed=1).frames)
    result = CliRunner().invoke(cli, ["train", str(recording), "-o", str(tmp_path / "m.npz")])
    assert str(result.exception) == "captured", result.output
    recipe = default_options()
    for options in (captured["options"], TrainOptions()):
        assert (options.latent, options.clusters) == (recipe.latent, recipe.clusters)
        assert options.preprocessing == recipe.preprocessing
    fields = ("batch_size", "seed", "val_split", "travel_axis", "frame_rules", "epochs")
    assert [getattr(captured["options"], f) for f in fields] == [getattr(TrainOptions(), f) for f in fields]
    for name, (low, high) in (("--latent", LATENT_RANGE), ("--clusters", CLUSTERS_RANGE)):
        outside = CliRunner().invoke(cli, ["train", str(recording), "-o", str(tmp_path / "m.npz"), name, str(high + 1)])
        assert outside.exit_code == 2 and f"{low}<=x<={high}" in outside.output
        with pytest.raises(TrainingError, match=f"between {low} and {high}"):
            TrainOptions(**{name[2:]: high + 1}).check()
