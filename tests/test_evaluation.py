"""The accuracy suite's definition, scoring arithmetic and command line (not the model's figures:
tests/test_accuracy.py asserts those)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from thermalcount.evaluation import suite as evaluation
from thermalcount.cli import cli
from thermalcount.evaluation.suite import (FAMILIES, EvalModel, aggregate, bar_verdict, given_model,
                                     recording_specs, run_suite, weakest, write_recording)
from thermalcount.evaluation.training import training_plan, training_seeds_and_rooms
from thermalcount.evaluation.scoring import score_events
from thermalcount.sensors.sim.simulator import Simulator
from thermalcount.store import open_recording

REQUIRED = {"single_slow", "single_normal", "single_fast", "following", "passing", "lingering", "turnback",
            "low_contrast", "warm_room", "drift", "warm_object", "other_mounting", "fps1", "room_plus5"}


# ------------------------------------------------------------------------------ definition


def test_every_required_family_is_in_the_suite_once():
    names = [f.name for f in FAMILIES]
    assert set(names) == REQUIRED and len(names) == len(set(names))
    numbers = [f.number for f in FAMILIES]
    assert len(numbers) == len(set(numbers))
    by_name = {f.name: f for f in FAMILIES}
    assert by_name["fps1"].fps == 1.0
    assert (by_name["other_mounting"].travel_axis, by_name["other_mounting"].reverse) == ("columns", True)
    assert [f.name for f in FAMILIES if f.kind != "suite"] == ["room_plus5"]


@pytest.mark.parametrize("size", ["ci", "full"])
def test_several_heldout_recordings_per_family_with_distinct_seeds_and_rooms(size):
    seen_seeds, seen_rooms = [], []
    for item in FAMILIES:
        recordings = item.recordings(size)
        assert 3 <= len(recordings) <= evaluation.MAX_RECORDINGS
        seen_seeds += [seed for seed, _, _ in recordings]
        seen_rooms += [room for _, room, _ in recordings]
    assert len(seen_seeds) == len(set(seen_seeds))
    assert len(seen_rooms) == len(set(seen_rooms))


def _default_recipe_seeds_and_rooms():
    recipe = evaluation.default_model_recordings()
    return {seed for _, seed, _, _ in recipe}, {room for _, _, room, _ in recipe}


def test_heldout_seeds_and_rooms_are_disjoint_from_all_training():
    default_seeds, default_rooms = _default_recipe_seeds_and_rooms()
    train_seeds, train_rooms = training_seeds_and_rooms()
    default_model = given_model(None).main
    for size in evaluation.SIZES:
        for item in FAMILIES:
            for spec in recording_specs(item, size, default_model):
                assert spec.seed not in default_seeds | train_seeds, (item.name, spec.seed)
                if item.kind == "suite":
                    assert spec.room not in default_rooms | train_rooms, (item.name, spec.room)
                else:  # the +5 °C check is in a room the model WAS trained in, on purpose
                    assert spec.room in default_rooms
                    assert spec.keywords["ambient"] == pytest.approx(default_model.warm_check_room[2] + 5.0,
                                                                     abs=1e-3)


def test_default_recipe_is_read_the_way_default_sources_builds_it():
    from thermalcount.training import default

    sources = default.default_sources()
    recipe = evaluation.default_model_recordings()
    assert len(sources) == len(recipe)
    for source, (scenario, seed, _, _) in zip(sources, recipe):
        assert f"sim:{scenario}:seed={seed}" in source.name


def test_train_split_covers_both_mountings_and_one_room_at_its_own_temperature():
    plan = training_plan()
    assert {kw["travel_axis"] for *_, kw in plan["rows"]} == {"rows"}
    assert {kw["travel_axis"] for *_, kw in plan["columns"]} == {"columns"}
    rooms = {room for _, _, _, room, _ in plan["one_room"]}
    ambients = {kw["ambient"] for *_, kw in plan["one_room"]}
    assert len(rooms) == 1 and len(ambients) == 1
    assert all(kw["drift"] <= 1.0 and kw["warm_object_prob"] == 0.0 for *_, kw in plan["one_room"])


def _true_events(item, size):
    total = 0
    for seed, room, frames in item.recordings(size):
        sim = Simulator(item.scenario, seed=seed, room=room, fps=item.fps, travel_axis=item.travel_axis,
                        reverse=item.reverse, **item.params)
        total += len(sim.generate(frames).events)
    return total


@pytest.mark.slow
def test_sizes_give_enough_true_events_per_family():
    # full: >= 450 events, so one error moves F1 by ~0.002 (two decimals hold); ci: >= 110.
    for item in FAMILIES:
        assert _true_events(item, "full") >= 450, item.name
        assert _true_events(item, "ci") >= 110, item.name


def test_drift_family_drifts_several_degrees_within_each_recording():
    item = evaluation.family("drift")
    for seed, room, frames in item.recordings("ci"):
        sim = Simulator(item.scenario, seed=seed, room=room, **item.params)
        level = sim.background_level(np.arange(frames) / sim.fps)
        assert np.ptp(level) >= 3.0


# ----------------------------------------------------------------------- other mounting


def test_other_mounting_turned_for_a_rows_model_is_the_rows_scene(tmp_path):
    """rotate=90 of a columns-mounted recording = the same people walking along the rows
    (mirrored sideways), with the same truth: the user's orientation fix is exact."""
    item = evaluation.family("other_mounting")
    spec = recording_specs(item, "ci", EvalModel(None, "m", "rows"))[0]
    assert spec.orientation == "rotate=90,mirror=none"
    spec.frames = 600
    write_recording(spec, tmp_path / "turned.h5")
    keywords = dict(spec.keywords, travel_axis="rows")
    expected = Simulator(spec.scenario, seed=spec.seed, room=spec.room, **keywords).generate(600)
    with open_recording(tmp_path / "turned.h5") as recording:
        np.testing.assert_array_equal(recording.read(), expected.frames[:, :, ::-1])
        assert [(e.frame, e.direction) for e in recording.events] == \
            [(e.frame, e.direction) for e in expected.events]
        assert recording.attrs["orientation"] == "rotate=90,mirror=none"


def test_orientation_follows_the_models_axis_and_is_never_applied_to_own_mounting_models():
    rows_family, columns_family = evaluation.family("single_fast"), evaluation.family("other_mounting")
    columns_model = EvalModel(None, "m", "columns")
    assert recording_specs(rows_family, "ci", columns_model)[0].orientation == "rotate=270,mirror=none"
    assert recording_specs(columns_family, "ci", columns_model)[0].orientation is None
    trained = EvalModel("x.onnx", "trained:columns", "rows", turns_frames=False)
    assert recording_specs(columns_family, "ci", trained)[0].orientation is None


def test_room_check_needs_a_known_training_room():
    with pytest.raises(evaluation.UsageError, match="room_plus5"):
        recording_specs(evaluation.family("room_plus5"), "ci", EvalModel("m.onnx", "m.onnx", "rows"))


# ------------------------------------------------------------------------------- scoring


def _ev(time, direction):
    return {"time": time, "direction": direction}


def test_aggregate_sums_matches_over_recordings_and_never_cancels_net_errors():
    a = score_events([_ev(0.5, "in"), _ev(5.2, "out"), _ev(20.0, "out")],
                     [_ev(0.0, "in"), _ev(10.0, "in"), _ev(5.0, "out")])
    b = score_events([_ev(1.0, "in")], [_ev(1.0, "out")])
    total = aggregate([a, b])
    # in: a 1 tp + 1 fn, b 1 fp; out: a 1 tp + 1 fp, b 1 fn.
    assert {k: total["in"][k] for k in ("tp", "fp", "fn")} == {"tp": 1, "fp": 1, "fn": 1}
    assert {k: total["out"][k] for k in ("tp", "fp", "fn")} == {"tp": 1, "fp": 1, "fn": 1}
    assert total["overall"]["precision"] == pytest.approx(0.5)
    assert total["overall"]["recall"] == pytest.approx(0.5)
    assert total["overall"]["f1"] == pytest.approx(0.5)
    # a: counted 1-2 vs true 2-1 -> -2; b: counted 1-0 vs true 0-1 -> +2: signed sum 0, abs 4.
    assert total["net_count_error"] == [-2, 2]
    assert total["net_error_abs"] == 4
    assert (total["true_entries"], total["true_exits"], total["true_events"]) == (2, 2, 4)
    assert (total["counted_entries"], total["counted_exits"]) == (2, 2)


def test_error_kinds_split_false_events_into_missed_extra_and_wrong_direction():
    from types import SimpleNamespace as Event

    predicted = [Event(time=1.0, direction="in"), Event(time=5.0, direction="out"), Event(time=30.0, direction="in")]
    truth = [Event(time=1.2, direction="out"), Event(time=5.0, direction="out"), Event(time=9.0, direction="in")]
    score = score_events(predicted, truth)
    assert (score["overall"]["fp"], score["overall"]["fn"]) == (2, 2)
    kinds = evaluation.error_kinds(predicted, truth, score, 1.5)
    assert kinds == {"missed": 1, "extra": 1, "wrong_direction": 1}
    total = aggregate([dict(score, errors=kinds), dict(score, errors=kinds)])
    assert total["errors"] == {"missed": 2, "extra": 2, "wrong_direction": 2}


def test_aggregate_is_not_an_average_of_f1s():
    perfect = score_events([_ev(1, "in")], [_ev(1, "in")])
    poor = score_events([_ev(t, "in") for t in range(0, 40, 4)], [_ev(t, "in") for t in range(0, 80, 4)])
    total = aggregate([perfect, poor])  # 11 tp, 0 fp, 10 fn
    assert total["overall"]["f1"] == pytest.approx(2 * 1.0 * (11 / 21) / (1.0 + 11 / 21))
    assert total["overall"]["f1"] != pytest.approx((perfect["overall"]["f1"] + poor["overall"]["f1"]) / 2)


def test_weakest_and_bar_verdict():
    families = [{"name": "a", "kind": "suite", "overall": {"f1": 0.995}},
                {"name": "b", "kind": "suite", "overall": {"f1": 0.96}},
                {"name": "c", "kind": "room_plus5", "overall": {"f1": 0.5}}]
    assert weakest(families) == {"name": "b", "f1": 0.96}
    report = {"families": families, "totals": {"overall": {"f1": 0.991}}, "weakest": weakest(families)}
    verdict = bar_verdict(report)
    assert verdict == {"overall_f1": True, "hardest_family_f1": False, "room_plus5_f1": False, "met": False}
    families[1]["overall"]["f1"], families[2]["overall"]["f1"] = 0.97, 0.95
    report["weakest"] = weakest(families)
    assert bar_verdict(report)["met"] is True
    report["families"] = families[:2]
    assert bar_verdict(report)["room_plus5_f1"] is None and bar_verdict(report)["met"] is False


# -------------------------------------------------------------------------------- runner


def _without_timing(report):
    report = json.loads(json.dumps(report))
    report.pop("seconds")
    for item in report["families"]:
        item.pop("seconds")
        for recording in item["recordings"]:
            recording.pop("path")  # a kept run names its files, a temporary one does not
    return report


@pytest.mark.slow
def test_suite_run_is_deterministic_and_scores_what_count_scores(tmp_path):
    from thermalcount.evaluation.scoring import score_result
    from thermalcount.runtime.offline import count_recording

    models = given_model("default")
    first = run_suite(models, size="ci", families=["fps1", "following"], keep=tmp_path)
    again = run_suite(models, size="ci", families=["following", "fps1"])
    assert _without_timing(first) == _without_timing(again)
    assert [f["name"] for f in first["families"]] == ["following", "fps1"]  # suite order
    recording = first["families"][0]["recordings"][1]
    direct = count_recording(recording["path"])
    assert score_result(direct)["overall"]["f1"] == recording["f1"]
    scores = [score_result(count_recording(r["path"])) for f in first["families"] for r in f["recordings"]]
    assert first["totals"]["overall"] == aggregate(scores)["overall"]


def _invoke(*args):
    return CliRunner().invoke(cli, ["evaluate", *args])


def test_json_output_is_one_object_with_the_documented_keys(tmp_path):
    result = _invoke("--family", "fps1", "--family", "room_plus5", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["schema"] == "thermalcount-accuracy/1" and report["size"] == "ci"
    assert {"families", "totals", "weakest", "bar", "verdict", "model", "training", "tolerance_s"} <= set(report)
    fps1, plus5 = report["families"]
    for key in ("in", "out", "overall"):
        assert set(fps1[key]) == {"precision", "recall", "f1", "tp", "fp", "fn"}
    assert len(fps1["recordings"]) == len(evaluation.family("fps1").recordings("ci")) and fps1["true_events"] == sum(r["true_events"] for r in fps1["recordings"])
    assert plus5["kind"] == "room_plus5"
    assert report["totals"]["true_events"] == fps1["true_events"]  # the check is not in the totals
    assert report["weakest"]["name"] == "fps1"


@pytest.mark.slow
def test_plain_table_lists_families_totals_and_weakest():
    result = _invoke("--family", "drift", "--family", "single_fast")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["family", "events", "P"]
    assert lines[1].startswith("single_fast") and lines[2].startswith("drift")
    assert lines[3].startswith("TOTAL (suite)")
    assert any(line.startswith("weakest family: ") for line in lines)


def _foreign_model(path):
    """The default model's graph with a training summary that names other recordings."""
    import onnx

    from thermalcount.model.contract import default_model_path

    proto = onnx.load(str(default_model_path()))
    for entry in proto.metadata_props:
        if entry.key == "training":
            training = json.loads(entry.value)
            training["files"] = [{"name": "my-hallway.h5", "frames": 5000, "fps": 10.0, "sha256": "0" * 64}]
            entry.value = json.dumps(training)
    onnx.save(proto, str(path))
    return path


def test_room_check_uses_the_default_recipe_room_for_models_trained_on_it(tmp_path):
    from thermalcount.model.contract import default_model_path

    (tmp_path / "candidate.onnx").write_bytes(default_model_path().read_bytes())
    candidate = given_model(tmp_path / "candidate.onnx").main
    assert candidate.warm_check_room == given_model("default").main.warm_check_room is not None
    assert given_model(_foreign_model(tmp_path / "foreign.onnx")).main.warm_check_room is None


@pytest.mark.slow
def test_all_families_with_a_foreign_model_skip_the_room_check_and_say_so(tmp_path):
    report = run_suite(given_model(_foreign_model(tmp_path / "foreign.onnx")), size="ci")
    assert [f["name"] for f in report["families"]] == [f.name for f in FAMILIES if f.kind == "suite"]
    assert [s["name"] for s in report["skipped"]] == ["room_plus5"]
    assert report["verdict"]["room_plus5_f1"] is None and report["verdict"]["met"] is False


@pytest.mark.parametrize("args, message", [
    (["--family", "nope"], "unknown family 'nope'"),
    (["--train", "--model", "m.onnx"], "exclude each other"),
    (["--size", "huge"], "huge"),
    (["--model", "missing.onnx"], "missing.onnx"),
    (["--model", "m.onnx", "--family", "room_plus5"], "room_plus5"),
])
def test_bad_input_is_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _foreign_model(tmp_path / "m.onnx")
    result = _invoke(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_keep_refuses_a_folder_with_files_and_touches_nothing(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    result = _invoke("--family", "fps1", "--keep", str(tmp_path))
    assert result.exit_code != 0 and "not empty" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    assert (tmp_path / "mine.txt").read_text() == "precious"


@pytest.mark.slow
def test_keep_keeps_the_recordings(tmp_path):
    folder = tmp_path / "kept"
    result = _invoke("--family", "fps1", "--keep", str(folder), "--json")
    assert result.exit_code == 0, result.output
    count = len(evaluation.family("fps1").recordings("ci"))
    assert sorted(p.name for p in folder.iterdir()) == [f"fps1-{i}.h5" for i in range(count)]


def test_train_without_the_training_stack_is_one_line():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from thermalcount.cli import main\n"
            "main(['evaluate', '--train', '--family', 'fps1'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0
    assert "thermalcount[train]" in done.stderr


def test_list_families():
    result = _invoke("--list-families")
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == [f.name for f in FAMILIES]


@pytest.mark.slow
def test_whole_suite_on_a_users_model_skips_the_warm_room_check(tmp_path):
    """Without --family, a model whose training room is unknown gets every family it can
    take and a note for the +5 °C check (it once failed after the whole suite instead)."""
    import json as _json

    import onnx
    from click.testing import CliRunner

    from thermalcount.cli import cli
    from thermalcount.model.contract import default_model_path

    model = onnx.load(str(default_model_path()))
    props = {p.key: p for p in model.metadata_props}
    props["training"].value = _json.dumps({"files": [{"name": "my-doorway.h5", "frames": 1000}]})
    path = tmp_path / "mine.onnx"
    onnx.save(model, str(path))
    result = CliRunner().invoke(cli, ["evaluate", "--model", str(path), "--json"])
    assert result.exit_code == 0, result.output[-500:]
    report = _json.loads(result.stdout)
    assert [s["name"] for s in report["skipped"]] == ["room_plus5"]
    assert "room_plus5" not in [f["name"] for f in report["families"]]
