"""The examples work as shipped: the end-to-end script runs on small data, and the systemd
unit only uses options that `run` has."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from thermalcount.cli import cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_end_to_end_script_on_small_data(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(ROOT / "examples" / "end_to_end.sh"), str(tmp_path / "demo"), "12000"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    f1_line = [line for line in result.stdout.splitlines() if line.startswith("F1 overall:")]
    assert f1_line, result.stdout[-2000:]
    assert 0.0 <= float(f1_line[0].split(":")[1]) <= 1.0
    for name in ("train.h5", "test.h5", "model.onnx", "count.json"):
        assert (tmp_path / "demo" / name).stat().st_size > 0, name


def test_systemd_unit_uses_real_run_options():
    unit = (ROOT / "examples" / "thermalcount.service").read_text()
    exec_line = unit.split("ExecStart=", 1)[1].split("\n[")[0]
    exec_line = exec_line.replace("\\\n", " ").splitlines()[0]
    words = shlex.split(exec_line)
    assert words[0].endswith("thermalcount") and words[1] == "run"
    run = cli.get_command(None, "run")
    known = {opt for param in run.params for opt in getattr(param, "opts", [])}
    used = {word for word in words[2:] if word.startswith("--")}
    assert used <= known, used - known
    assert "--no-dashboard" in used  # journald wants plain lines
    assert "Restart=on-failure" in unit
