"""Issue 17's targets table (thermalcount/bench/targets.py): every row is there, the verdict
follows from the numbers given to it, "not measured" when a figure is missing, the child
process figures are real. No test asserts a time: the numbers fed to the verdict are made up."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from thermalcount.bench import targets
from thermalcount.bench.targets import MEETS, MISSES, NOT_MEASURED, TARGETS, evaluate, verdict
from thermalcount.cli import cli

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["graph_vs_floor", "whole_frame_p99", "torch_vs_graph", "count_fps", "count_peak_mib",
        "startup_run_backend", "startup_numpy", "run_help", "train_1m"]


def _report(**over) -> dict:
    """A made-up bench report with every figure the table reads."""
    report = {
        "settings": {"backends": ["onnxruntime"]},
        "stages": {"whole_frame.onnxruntime": {"p99_us": 70.0}},
        "whole_frame_alone": {"whole_frame.onnxruntime": {"p99_us": 40.0}},
        "ratios": {"ort_bound.exported / ort_bound.floor (p50)": 2.5,
                   "torch_seed / inference.onnxruntime (p50)": 7.0,
                   "torch_original / inference.onnxruntime (p50)": 99.0},
        "skipped": {},
        "target_figures": {
            "run_backend": "onnxruntime",
            "count": {"frames": 1_000_000, "backend": "onnxruntime", "seconds": 2.0,
                      "frames_per_second": 500_000, "peak_rss_mib": 200.0},
            "startup": {"onnxruntime": {"backend": "onnxruntime", "median_s": 0.3, "runs_s": [0.3] * 3,
                                        "torch_imported": False},
                        "numpy": {"backend": "numpy", "median_s": 0.15, "runs_s": [0.15] * 3,
                                  "torch_imported": False}},
            "run_help": {"median_s": 0.05, "runs_s": [0.05] * 3},
        },
    }
    report.update(over)
    return report


def test_the_table_has_issue_17s_rows_in_one_place():
    assert [t.key for t in TARGETS] == KEYS
    bounds = {t.key: (t.op, t.bound) for t in TARGETS}
    assert bounds["graph_vs_floor"] == ("<=", 2.0) and bounds["whole_frame_p99"] == ("<=", 50.0)
    assert bounds["torch_vs_graph"] == (">=", 6.0) and bounds["count_fps"] == (">=", 1_000_000)
    assert bounds["count_peak_mib"] == ("<=", 250.0) and bounds["startup_numpy"] == ("<=", 0.2)
    assert bounds["run_help"] == ("<=", 0.1) and bounds["train_1m"] == ("keep", None)


@pytest.mark.parametrize("measured, op, bound, expected", [
    (1.99, "<=", 2.0, MEETS), (2.0, "<=", 2.0, MEETS), (2.01, "<=", 2.0, MISSES),
    (6.0, ">=", 6.0, MEETS), (5.9, ">=", 6.0, MISSES), (None, "<=", 2.0, NOT_MEASURED),
    (25.0, "keep", None, NOT_MEASURED),
])
def test_verdict_follows_from_the_numbers(measured, op, bound, expected):
    assert verdict(measured, op, bound) == expected


def test_evaluate_reads_each_figure_and_judges_it():
    rows = {row["key"]: row for row in evaluate(_report())}
    assert list(rows) == KEYS
    expected = {"graph_vs_floor": (2.5, MISSES), "whole_frame_p99": (40.0, MEETS),  # on its own, not 70
                "torch_vs_graph": (7.0, MEETS), "count_fps": (500_000, MISSES),
                "count_peak_mib": (200.0, MEETS), "startup_run_backend": (0.3, MISSES),
                "startup_numpy": (0.15, MEETS), "run_help": (0.05, MEETS), "train_1m": (None, NOT_MEASURED)}
    for key, (measured, result) in expected.items():
        assert (rows[key]["measured"], rows[key]["verdict"]) == (measured, result), key
        assert rows[key]["met"] == {MEETS: True, MISSES: False, NOT_MEASURED: None}[result]
    assert "train_scale.py" in rows["train_1m"]["note"]


def test_missing_figures_say_not_measured():
    report = _report(ratios={}, skipped={"torch_original": "torch is not installed"})
    report["target_figures"] = {"run_backend": "onnxruntime"}  # --count-frames 0 --no-startup
    rows = {row["key"]: row for row in evaluate(report)}
    for key in ("graph_vs_floor", "torch_vs_graph", "count_fps", "count_peak_mib", "startup_run_backend",
                "startup_numpy", "run_help"):
        assert rows[key]["verdict"] == NOT_MEASURED and rows[key]["measured"] is None, key
    assert "not installed" in rows["torch_vs_graph"]["note"]
    assert rows["whole_frame_p99"]["verdict"] == MEETS


def test_a_short_count_file_cannot_decide_the_1m_frame_rows():
    report = _report()
    report["target_figures"]["count"].update(frames=3000, frames_per_second=2_000_000, peak_rss_mib=10.0)
    rows = {row["key"]: row for row in evaluate(report)}
    assert rows["count_fps"]["verdict"] == rows["count_peak_mib"]["verdict"] == NOT_MEASURED
    assert "3,000 frames" in rows["count_fps"]["note"]


def test_plain_table_lists_every_row_with_its_verdict():
    text = targets.format_table(evaluate(_report()))
    lines = text.splitlines()
    assert "meets / misses" in lines[0]
    body = lines[3:]
    assert len(body) == len(TARGETS)
    for line, target in zip(body, TARGETS):
        assert line.startswith(target.what)
    assert body[0].rstrip().endswith(MISSES) and body[1].rstrip().endswith(MEETS)
    assert ">= 1,000,000 frames/s" in text


def test_child_process_peak_memory_is_the_childs_own():
    """A child that allocates ~200 MiB reports a peak above that; an idle one far below, even
    when the process that asks is itself big (Linux carries a forking parent's peak into the
    child's ru_maxrss across exec: a child forked from here would report over 300 MiB)."""
    ballast = bytearray(300 * 2**20)
    ballast[::4096] = b"x" * len(ballast[::4096])
    big = targets.timed_child([sys.executable, "-c", "b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096])"])
    small = targets.timed_child([sys.executable, "-c", "pass"])
    assert big["returncode"] == small["returncode"] == 0
    assert 300 > big["peak_rss_mib"] > 200 > small["peak_rss_mib"] > 0
    failed = targets.timed_child([sys.executable, "-c", "raise SystemExit('no such thing')"])
    assert failed["returncode"] == 1 and failed["error"] == "no such thing"
    missing = targets.timed_child([str(Path(sys.executable).with_name("no-such-program"))])
    assert missing["returncode"] == 127 and "cannot start" in missing["error"]
    del ballast


@pytest.mark.slow
def test_bench_json_carries_the_table_and_child_figures():
    """A small real run: every row present; the count child ran and was judged not measured."""
    result = CliRunner().invoke(cli, ["bench", "--json", "--frames", "200", "--count-frames", "2000",
                                      "--no-torch", "--backend", "numpy"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {row["key"]: row for row in report["targets"]}
    assert list(rows) == KEYS
    assert set(rows["graph_vs_floor"]) >= {"target", "goal", "measured", "unit", "verdict", "how", "note"}
    figures = report["target_figures"]
    assert figures["count"]["frames"] == 2000 and figures["count"]["peak_rss_mib"] > 0
    assert rows["count_fps"]["verdict"] == NOT_MEASURED
    assert set(figures["startup"]) == {figures["run_backend"], "numpy"}
    for row in figures["startup"].values():
        assert len(row["runs_s"]) == 3 and row["torch_imported"] is False
    assert rows["startup_numpy"]["measured"] == figures["startup"]["numpy"]["median_s"]
    assert rows["startup_numpy"]["verdict"] in (MEETS, MISSES)
    assert rows["torch_vs_graph"]["verdict"] == NOT_MEASURED


def test_docs_and_benchmarks_describe_every_row():
    doc = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    readme = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
    for target in TARGETS:
        assert f"`{target.key}`" in doc, target.key
        assert f"`{target.key}`" in readme, target.key
    for script in ("count_peak.py", "startup_backends.py", "run_startup.py", "train_scale.py"):
        assert (ROOT / "benchmarks" / script).exists() and script in readme


def test_ctrl_c_while_a_child_runs_leaves_no_child_behind():
    """The child runs in a session of its own (so its memory is its own): an interrupted bench
    must take it down, or a 1 M-frame count would go on using a core after 'Aborted!'."""
    import os
    import signal
    import subprocess
    import threading
    import uuid

    marker = f"thermalcount-bench-test-{uuid.uuid4().hex}"
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        targets.timed_child([sys.executable, "-c", f"import time; time.sleep(60)  # {marker}"])
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert left == []
