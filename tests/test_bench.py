"""``thermalcount bench``: the report's shape and contents with each backend, with and without
torch, on the emulated sensor. Timings are never asserted (rule 4), only that they exist,
are ordered percentiles and that the rows agree on states."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from thermalcount.cli import cli

STAT_KEYS = {"p50_us", "p90_us", "p99_us", "max_us", "mean_us", "samples"}
SMALL = ["--frames", "200", "--count-frames", "3000"]


def _bench_json(*args) -> dict:
    result = CliRunner().invoke(cli, ["bench", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _check_stats(stats: dict, frames: int) -> None:
    assert set(stats) == STAT_KEYS
    assert stats["samples"] == frames
    assert 0 < stats["p50_us"] <= stats["p90_us"] <= stats["p99_us"] <= stats["max_us"]


@pytest.mark.slow
def test_all_backends_with_torch_json_schema():
    pytest.importorskip("torch")
    report = _bench_json(*SMALL, "--backend", "all", "--no-startup")
    assert report["schema"] == "thermalcount-bench/1"
    machine = report["machine"]
    assert machine["cores"] >= 1 and machine["python"] and machine["numpy"] == np.__version__
    assert machine["torch"]  # read from package metadata
    assert report["settings"]["backends"] == ["onnxruntime", "numpy"]
    stages = report["stages"]
    expected = {"sensor_read", "decode", "counter", "light_decision"}
    deferred = set()
    for backend in ("onnxruntime", "numpy"):
        expected |= {f"inference.{backend}", f"whole_frame.{backend}", f"whole_frame_with_read.{backend}"}
        deferred |= {f"pattern_update.{backend}", f"pattern_update_steps.{backend}",
                     f"whole_frame_and_update.{backend}"}
    assert set(stages) == expected | deferred
    for name, stats in stages.items():
        if "steps" not in name:
            _check_stats(stats, 200)
    # The pattern's step update runs after the decision, timed apart: 200 frames hold 6 steps
    # (the variant's own stream: 500 warm-up frames, then 200 timed, 32 frames a step).
    for backend in ("onnxruntime", "numpy"):
        steps = stages[f"pattern_update_steps.{backend}"]
        assert steps["samples"] == (500 + 200) // 32 - 500 // 32
    comparison = report["comparison"]
    for row in ("torch_original", "ort_plain.exported", "ort_bound.exported", "ort_bound.state_path",
                "ort_bound.floor", "ort_bound.one_node", "numpy.floor", "timer_overhead"):
        _check_stats(comparison[row], 200)
    assert report["skipped"] == {}
    # Every row that computes the model's states agrees with the runtime on the bench frames.
    for row in ("onnxruntime", "numpy", "onnxruntime (single frame)", "numpy (single frame)",
                "torch_original", "ort_bound.state_path"):
        assert report["agreement"][row]["fraction"] == 1.0, row
    assert "torch_original / inference.onnxruntime (p50)" in report["ratios"]
    assert set(report["head_to_head"]) == {"inference.onnxruntime", "inference.numpy", "ort_bound.floor"}
    assert {name.split(".")[0] for name in report["whole_frame_alone"]} == {
        "whole_frame", "pattern_update", "pattern_update_steps", "whole_frame_and_update"}
    # torch runs last, in its own loop with the runtime and the floors.
    assert set(report["with_torch"]) == {"torch_original", "torch_seed", "inference.onnxruntime", "inference.numpy",
                                         "ort_bound.floor", "numpy.floor"}
    assert report["comparison"]["torch_original"] == report["with_torch"]["torch_original"]
    for stats in list(report["head_to_head"].values()) + [
            stats for name, stats in report["whole_frame_alone"].items() if "steps" not in name]:
        _check_stats(stats, 200)
    assert set(report["throughput"]) == {"onnxruntime", "numpy"}
    assert report["throughput"]["numpy"]["frames"] == 3000
    assert report["throughput"]["numpy"]["repeats"] == 3
    # Same frames, same counter: both backends count the same events.
    assert report["throughput"]["numpy"]["events"] == report["throughput"]["onnxruntime"]["events"]
    assert "startup" not in report
    # Issue 17's table (tests/test_bench_targets.py checks it in detail): the rows measured in
    # this run have a verdict; 3,000 frames cannot decide the 1M-frame count rows.
    verdicts = {t["key"]: t["met"] for t in report["targets"]}
    assert verdicts["graph_vs_floor"] in (True, False) and verdicts["torch_vs_graph"] in (True, False)
    assert verdicts["count_fps"] is None and verdicts["count_peak_mib"] is None


def test_no_torch_flag_skips_the_row_and_prints_tables():
    result = CliRunner().invoke(cli, ["bench", *SMALL, "--backend", "onnxruntime", "--no-torch",
                                      "--no-startup"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Live path, one frame" in out and "runtime inference (onnxruntime)" in out
    assert "skipped original PyTorch module" in " ".join(out.split())
    assert "Targets" in out


def _run_blocked(tmp_path, blocked: tuple, *args) -> tuple:
    """Run the CLI in a fresh process where importing any of ``blocked`` fails as if absent."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(textwrap.dedent(f"""
        import sys

        BLOCKED = {blocked!r}

        class _Absent:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked for the test)")
                return None

        sys.meta_path.insert(0, _Absent())
    """))
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = ("import json, sys; from thermalcount.cli import main\n"
            "try:\n    main(sys.argv[1:])\nfinally:\n"
            "    print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            + repr(blocked) + ")), file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout), json.loads(result.stderr.strip().splitlines()[-1])


@pytest.mark.slow
def test_without_torch_installed_in_a_fresh_process(tmp_path):
    """torch made unimportable: the PyTorch row is skipped with a note, torch never loads."""
    report, loaded = _run_blocked(tmp_path, ("torch",), "bench", "--json", *SMALL, "--backend", "numpy")
    assert loaded == []
    assert "not installed" in report["skipped"]["torch_original"]
    assert "torch_original" not in report["comparison"] and report["with_torch"] == {}
    assert report["settings"]["backends"] == ["numpy"]
    assert set(report["startup"]) == {"numpy"}
    startup = report["startup"]["numpy"]
    assert startup["backend"] == "numpy" and startup["torch_imported"] is False
    assert startup["process_ms"] > startup["import_and_load_ms"] > 0


@pytest.mark.slow
def test_without_onnxruntime_like_a_pi_zero(tmp_path):
    """No onnxruntime wheel (Pi Zero W): auto measures numpy, onnxruntime rows are skipped."""
    report, loaded = _run_blocked(tmp_path, ("torch", "onnxruntime"), "bench", "--json", *SMALL,
                                  "--backend", "auto", "--no-startup")
    assert loaded == []
    assert report["settings"]["backends"] == ["numpy"]
    for row in ("ort_plain.exported", "ort_bound.exported", "ort_bound.floor", "ort_bound.one_node"):
        assert "onnxruntime is not installed" in report["skipped"][row]
        assert row not in report["comparison"]
    _check_stats(report["stages"]["whole_frame.numpy"], 200)
    _check_stats(report["comparison"]["numpy.floor"], 200)
    assert report["agreement"]["numpy (single frame)"]["fraction"] == 1.0
    floor_targets = [t for t in report["targets"] if "floor" in t["target"]]
    assert floor_targets and all(t["met"] is None for t in floor_targets)


def test_bad_model_is_one_line_error(tmp_path):
    not_a_model = tmp_path / "model.onnx"
    not_a_model.write_bytes(b"this is not protobuf")
    result = CliRunner().invoke(cli, ["bench", "--model", str(not_a_model), *SMALL, "--no-startup"])
    assert result.exit_code != 0
    assert result.output.startswith("Error:") and len(result.output.strip().splitlines()) == 1
    assert "not an ONNX model" in result.output


def test_too_few_frames_is_rejected():
    result = CliRunner().invoke(cli, ["bench", "--frames", "10"])
    assert result.exit_code == 2 and "--frames" in result.output


def test_state_graph_keeps_only_what_the_state_needs():
    """The runtime's state graph (and bench's state rows) gives the full graph's states with
    none of the nodes that only feed the embedding or the distances."""
    import onnx
    import onnxruntime as ort

    from thermalcount.model.contract import default_model_path
    from thermalcount.model.graph import state_only_graph
    from thermalcount.sensors.sim.simulator import simulate

    proto = onnx.load(str(default_model_path()))
    reduced = state_only_graph(proto)
    onnx.checker.check_model(reduced, full_check=True)
    names = [node.name for node in reduced.graph.node]
    assert len(names) < len(proto.graph.node)
    # Neither the embedding nor the distances: the nearest centroid, then the frame rules.
    assert not set(names) & {"encoder_linear2", "embedding_squared", "distances"}
    assert reduced.graph.node[-1].op_type == "Max" and {"nearest_centroid", "edge_state", "apart_state"} <= set(names)
    used = {name for node in reduced.graph.node for name in node.input} | {"state"}
    assert all(set(node.output) & used for node in reduced.graph.node)  # no node left that feeds nothing
    assert {init.name for init in reduced.graph.initializer} <= used
    frames = simulate(20000, "mixed", seed=5).frames
    full = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    small = ort.InferenceSession(reduced.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = full.run(["state"], {"frames": frames})[0]
    assert len(np.unique(expected)) >= 3  # the frames exercise several states
    np.testing.assert_array_equal(small.run(["state"], {"frames": frames})[0], expected)
