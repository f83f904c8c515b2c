"""Issue 14, store and file safety: a refused or failed write never destroys data.

Cases in the style of tests/test_bad_input.py: a real command per case, a non-zero exit,
exactly one "Error:" line naming the problem, no traceback, and every file in the folder
byte-identical afterwards. Files another program has open are held the way that program
holds them: h5py's read-only open takes the same flock a replay or a count takes.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from thermalcount.cli import cli
from thermalcount.store import open_recording, write_recording


@pytest.fixture
def folder(tmp_path):
    """A recording, a model file and a few sources, made fresh for every case."""
    from thermalcount.runtime.model import default_model_path

    rng = np.random.default_rng(0)
    frames = (22 + rng.normal(0, 0.3, (300, 8, 8))).astype(np.float32)
    write_recording(tmp_path / "held.h5", frames, fps=10.0)
    write_recording(tmp_path / "other.h5", frames[:100], fps=10.0)
    np.save(tmp_path / "good.npy", np.full((20, 8, 8), 22.0, np.float32))
    (tmp_path / "model.onnx").write_bytes(default_model_path().read_bytes())
    os.mkfifo(tmp_path / "pipe")
    return tmp_path


def _hashes(folder: Path) -> dict:
    return {path.relative_to(folder): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def _check(output: str, exit_code: int, hint: str) -> str:
    assert exit_code in (1, 2), output
    assert "Traceback" not in output and "Segmentation" not in output, output
    error_lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, output
    assert re.search(hint, error_lines[0]), error_lines[0]
    return error_lines[0]


def _invoke(folder: Path, args: list, hint: str) -> str:
    """Run ``args`` (``{f}`` = the folder); one-line refusal, every file unchanged, no temporaries."""
    before = _hashes(folder)
    result = CliRunner().invoke(cli, [arg.format(f=folder) for arg in args])
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    line = _check(result.output, result.exit_code, hint)
    assert _hashes(folder) == before, "a file changed"
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == [], "a temporary file was left"
    return line


IN_USE = r"another program has it open"

# -- 14.1: overwriting a file another program has open -----------------------------------------
HELD = [
    ("simulate-overwrite", ["simulate", "--out", "{f}/held.h5", "--overwrite", "--frames", "20"]),
    ("record-overwrite", ["record", "--sensor", "sim", "--speed", "max", "--out", "{f}/held.h5", "--overwrite",
                          "--frames", "20", "--no-preview"]),
    ("record-append", ["record", "--sensor", "sim", "--speed", "max", "--out", "{f}/held.h5", "--append",
                       "--frames", "20", "--no-preview"]),
    ("import-overwrite", ["import", "{f}/good.npy", "--out", "{f}/held.h5", "--overwrite"]),
]


@pytest.mark.parametrize("args", [pytest.param(args, id=row) for row, args in HELD])
def test_overwrite_of_a_file_being_read_is_refused(folder, args):
    with h5py.File(folder / "held.h5", "r"):  # as `run --sensor replay:` and `count` hold it
        _invoke(folder, args, IN_USE)
    with open_recording(folder / "held.h5") as recording:
        assert recording.n_frames == 300


# -- 14.1: FIFOs are not outputs -----------------------------------------------------------------
FIFO = [
    ("simulate", ["simulate", "--out", "{f}/pipe", "--overwrite", "--frames", "20"]),
    ("record", ["record", "--sensor", "sim", "--out", "{f}/pipe", "--overwrite", "--frames", "5", "--no-preview"]),
    ("import", ["import", "{f}/good.npy", "--out", "{f}/pipe", "--overwrite"]),
    ("export", ["export", "{f}/model.onnx", "-o", "{f}/pipe", "--overwrite"]),
    ("train", ["train", "{f}/held.h5", "-o", "{f}/pipe", "--overwrite"]),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args", [pytest.param(args, id=row) for row, args in FIFO])
def test_fifo_output_is_refused(folder, args):
    _invoke(folder, args, r"pipe: it is a FIFO \(named pipe\), not a file")
    assert (folder / "pipe").is_fifo()


# -- 14.1 with a live recorder, as in the issue ----------------------------------------------------
@pytest.mark.slow
def test_overwrite_of_a_live_recording_is_refused_and_the_recorder_keeps_going(tmp_path):
    live = tmp_path / "live.h5"
    recorder = subprocess.Popen([sys.executable, "-m", "thermalcount", "record", "--sensor", "sim",
                                 "--out", str(live), "--no-preview"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):  # wait for the first batch (not a timing assertion)
            if live.exists() and live.stat().st_size > 4096:
                break
            time.sleep(0.05)
        for args in (["simulate", "--out", str(live), "--overwrite", "--frames", "20"],
                     ["record", "--sensor", "sim", "--speed", "max", "--out", str(live), "--overwrite",
                      "--frames", "5", "--no-preview"],
                     ["import", str(tmp_path / "none.npy"), "--out", str(live), "--overwrite"]):
            np.save(tmp_path / "none.npy", np.full((5, 8, 8), 22.0, np.float32))
            result = CliRunner().invoke(cli, args)
            _check(result.output, result.exit_code, IN_USE)
    finally:
        recorder.send_signal(signal.SIGINT)
        output, _ = recorder.communicate(timeout=30)
    assert recorder.returncode == 0, output
    written = int(re.search(r"\((\d+) in the file\)", output).group(1))
    with open_recording(live) as recording:
        assert recording.n_frames == written > 0


# -- 14.2: write errors other than a full disk -----------------------------------------------------
def _limited(args: list, kib: int, cwd: Path) -> subprocess.CompletedProcess:
    """Run thermalcount with a file size limit (EFBIG once a write passes it)."""
    command = " ".join([f"ulimit -f {kib};", "exec", sys.executable, "-m", "thermalcount", *args])
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_record_stops_at_a_file_size_limit_and_keeps_every_flushed_frame(tmp_path):
    result = _limited(["record", "--sensor", "sim", "--speed", "max", "--frames", "200000", "--no-preview",
                       "--out", "big.h5"], 1000, tmp_path)
    output = result.stdout + result.stderr
    line = _check(output, result.returncode, r"writing big.h5 failed \(File too large.*the file opens with them")
    assert result.returncode == 1
    assert "copy it again" not in output
    saved = int(re.search(r"the (\d+) frames saved", line).group(1))
    assert saved > 0
    with open_recording(tmp_path / "big.h5") as recording:
        assert recording.n_frames == saved
        assert np.isfinite(recording.read(saved - 256, saved)).all()


@pytest.mark.slow
def test_record_append_at_a_file_size_limit_keeps_the_old_frames(tmp_path):
    write_recording(tmp_path / "old.h5", np.full((300, 8, 8), 21.0, np.float32), fps=10.0)
    result = _limited(["record", "--sensor", "sim", "--speed", "max", "--frames", "200000", "--no-preview",
                       "--out", "old.h5", "--append"], 600, tmp_path)
    line = _check(result.stdout + result.stderr, result.returncode, r"File too large")
    saved = int(re.search(r"the (\d+) frames saved", line).group(1))
    with open_recording(tmp_path / "old.h5") as recording:
        assert recording.n_frames == saved >= 300
        assert (recording.read(0, 300) == 21.0).all()


@pytest.mark.slow
def test_simulate_overwrite_at_a_file_size_limit_leaves_the_old_file(tmp_path):
    write_recording(tmp_path / "old.h5", np.full((300, 8, 8), 21.0, np.float32), fps=10.0)
    before = _hashes(tmp_path)
    result = _limited(["simulate", "--out", "old.h5", "--overwrite", "--frames", "200000"], 300, tmp_path)
    _check(result.stdout + result.stderr, result.returncode, r"File too large.*old file is unchanged")
    assert _hashes(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.h5"]
