"""Issue 14, store and file safety: a refused or failed write never destroys data.

Cases in the style of tests/test_bad_input.py: a real command per case, a non-zero exit,
exactly one "Error:" line naming the problem, no traceback, and every file in the folder
byte-identical afterwards. Files another program has open are held the way that program
holds them: h5py's read-only open takes the same flock a replay or a count takes.
"""

from __future__ import annotations

import errno
import io
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
from tests.file_hashes import file_hashes


@pytest.fixture
def folder(tmp_path):
    """A recording, a model file and a few sources, made fresh for every case."""
    from thermalcount.model.contract import default_model_path

    rng = np.random.default_rng(0)
    frames = (22 + rng.normal(0, 0.3, (300, 8, 8))).astype(np.float32)
    write_recording(tmp_path / "held.h5", frames, fps=10.0)
    write_recording(tmp_path / "other.h5", frames[:100], fps=10.0)
    np.save(tmp_path / "good.npy", np.full((20, 8, 8), 22.0, np.float32))
    (tmp_path / "model.onnx").write_bytes(default_model_path().read_bytes())
    os.mkfifo(tmp_path / "pipe")
    return tmp_path



def _check(output: str, exit_code: int, hint: str) -> str:
    assert exit_code in (1, 2), output
    assert "Traceback" not in output and "Segmentation" not in output, output
    error_lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, output
    assert re.search(hint, error_lines[0]), error_lines[0]
    return error_lines[0]


def _invoke(folder: Path, args: list, hint: str) -> str:
    """Run ``args`` (``{f}`` = the folder); one-line refusal, every file unchanged, no temporaries."""
    before = file_hashes(folder)
    result = CliRunner().invoke(cli, [arg.format(f=folder) for arg in args])
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    line = _check(result.output, result.exit_code, hint)
    assert file_hashes(folder) == before, "a file changed"
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
    before = file_hashes(tmp_path)
    result = _limited(["simulate", "--out", "old.h5", "--overwrite", "--frames", "200000"], 300, tmp_path)
    _check(result.stdout + result.stderr, result.returncode, r"File too large.*old file is unchanged")
    assert file_hashes(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.h5"]


# -- 14.7, 14.8, 14.4: inputs that hang, replace themselves or end in "internal error" -----------
@pytest.fixture(scope="module")
def model_npz(tmp_path_factory):
    """A small trained model file (train's output, export's input); trained once."""
    pytest.importorskip("torch")
    from thermalcount.sensors.sim.simulator import simulate
    from thermalcount.training.data import ArraySource
    from thermalcount.model.trained_file import save_model
    from thermalcount.training.train import TrainOptions, train_model

    result = train_model([ArraySource(simulate(1500, "single", seed=1).frames, "a")],
                         TrainOptions(clusters=3, epochs=1, seed=1))
    path = tmp_path_factory.mktemp("model") / "m.npz"
    save_model(result.model, path)
    return path.read_bytes()


@pytest.fixture
def inputs(folder, model_npz):
    """The folder plus crafted inputs: aliases, hostile HDF5 and CSV files."""
    (folder / "m.npz").write_bytes(model_npz)
    os.symlink("m.npz", folder / "link.npz")
    os.link(folder / "m.npz", folder / "hard.npz")
    os.link(folder / "held.h5", folder / "alias.h5")
    os.symlink("good.npy", folder / "link.npy")
    (folder / "a_file").write_text("not a folder")
    billion = 10 ** 9
    with h5py.File(folder / "virtual.h5", "w", libver="earliest") as h5:
        h5.attrs["schema_version"] = 1
        for name, shape, dtype in (("frames", (billion, 8, 8), "<f4"), ("timestamps", (billion,), "<f8")):
            layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
            layout[:] = h5py.VirtualSource("elsewhere.h5", name, shape=shape)
            h5.create_virtual_dataset(name, layout, fillvalue=22.0)
    with h5py.File(folder / "claims.h5", "w", libver="earliest") as h5:  # 2 KB claiming 10^9 frames
        h5.attrs["schema_version"] = 1
        h5.create_dataset("frames", shape=(billion, 8, 8), maxshape=(None, 8, 8), chunks=(256, 8, 8),
                          dtype="<f4", fillvalue=22.0, compression="gzip")
        h5.create_dataset("timestamps", shape=(billion,), maxshape=(None,), chunks=(1024,), dtype="<f8",
                          compression="gzip")
    np.full(640, 22.0, np.float32).tofile(folder / "outside.bin")
    with h5py.File(folder / "external.h5", "w", libver="earliest") as h5:
        h5.attrs["schema_version"] = 1
        h5.create_dataset("frames", shape=(10, 8, 8), dtype="<f4", external=[("outside.bin", 0, 2560)])
        h5.create_dataset("timestamps", data=np.arange(10.0))
    row = ",".join(["22.5"] * 64)
    (folder / "huge_time.csv").write_text(f"1e20,{row}\n")
    (folder / "huge_cell.csv").write_text('"' + "1" * 200_000 + '",' + ",".join(["22.5"] * 63) + "\n")
    (folder / "huge_line.csv").write_text("1" * 2_000_000)
    import io
    import zipfile

    header = io.BytesIO()  # a model member claiming 40 TB of float32
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10 ** 13,)})
    with zipfile.ZipFile(folder / "absurd.npz", "w") as archive:
        archive.writestr("w1.npy", header.getvalue() + bytes(64))
    with zipfile.ZipFile(folder / "m.npz") as source, zipfile.ZipFile(folder / "text_weights.npz", "w") as archive:
        for info in source.infolist():  # the model with one weight replaced by strings
            data = source.read(info)
            if info.filename == "enc1.weight.npy":
                array = io.BytesIO()
                np.lib.format.write_array(array, np.array(["a", "b"]), allow_pickle=False)
                data = array.getvalue()
            archive.writestr(info.filename, data)
    return folder


CASES = [
    # 14.7: a FIFO as input hung; virtual, external and fill-value-only data kept count busy
    ("count-fifo", ["count", "{f}/pipe"], r"pipe is a FIFO \(named pipe\), not a recording file"),
    ("train-fifo", ["train", "{f}/pipe", "-o", "{f}/new.npz"], r"FIFO"),
    ("count-model-fifo", ["count", "{f}/held.h5", "--model", "{f}/pipe"], r"model file .*pipe is a FIFO"),
    ("run-model-fifo", ["run", "--model", "{f}/pipe", "--sensor", "sim", "--lights", "none", "--no-dashboard"],
     r"model file .*pipe is a FIFO"),
    ("count-virtual-dataset", ["count", "{f}/virtual.h5"], r"'frames' is a virtual dataset.*thermalcount import"),
    ("count-claims-more-than-stored", ["count", "{f}/claims.h5"],
     r"'frames' claims 1000000000 rows but the file holds data for at most 0"),
    ("count-external-dataset", ["count", "{f}/external.h5"], r"'frames' keeps its data in external files"),
    ("record-append-to-virtual", ["record", "--sensor", "sim", "--out", "{f}/virtual.h5", "--append",
                                  "--frames", "5", "--no-preview"], r"virtual dataset"),
    # 14.8: --overwrite with the output the same file as the input
    ("export-onto-its-model", ["export", "{f}/m.npz", "-o", "{f}/m.npz", "--overwrite"],
     r"m.npz is the model .*m.npz itself"),
    ("export-onto-a-symlink-of-its-model", ["export", "{f}/m.npz", "-o", "{f}/link.npz", "--overwrite"],
     r"is the model"),
    ("export-onto-a-hardlink-of-its-model", ["export", "{f}/m.npz", "-o", "{f}/hard.npz", "--overwrite"],
     r"is the model"),
    ("import-onto-its-source", ["import", "{f}/good.npy", "--out", "{f}/good.npy", "--overwrite"],
     r"is the input .*itself"),
    ("import-onto-a-symlink-of-its-source", ["import", "{f}/good.npy", "--out", "{f}/link.npy", "--overwrite"],
     r"is the input"),
    ("train-onto-its-recording", ["train", "{f}/held.h5", "-o", "{f}/held.h5", "--overwrite"],
     r"is the recording .*itself"),
    ("train-onto-a-hardlink-of-its-recording", ["train", "{f}/other.h5", "{f}/held.h5", "-o", "{f}/alias.h5",
                                                "--overwrite"], r"is the recording"),
    ("record-replay-onto-itself", ["record", "--sensor", "replay:{f}/held.h5", "--speed", "max", "--out",
                                   "{f}/alias.h5", "--append", "--no-preview"], r"is the replayed recording"),
    # 14.4: one line instead of exit 70
    ("count-name-too-long", ["count", "{f}/" + "n" * 300 + ".h5"], r"cannot use .*: File name too long"),
    ("import-name-too-long", ["import", "{f}/" + "n" * 300 + ".npy", "--out", "{f}/new.h5"], r"File name too long"),
    ("export-name-too-long", ["export", "{f}/" + "n" * 300 + ".npz", "-o", "{f}/new.onnx"], r"File name too long"),
    ("inspect-name-too-long", ["inspect", "{f}/" + "n" * 300 + ".onnx"], r"File name too long"),
    ("count-model-name-too-long", ["count", "{f}/held.h5", "--model", "{f}/" + "n" * 300 + ".onnx"],
     r"File name too long"),
    ("export-absurd-array-shape", ["export", "{f}/absurd.npz", "-o", "{f}/new.onnx"],
     r"absurd.npz is damaged: an array in it claims more memory"),
    ("export-text-weights", ["export", "{f}/text_weights.npz", "-o", "{f}/new.onnx"],
     r"weight\(s\) enc1.weight are not real numbers"),
    ("export-below-a-file", ["export", "{f}/m.npz", "-o", "{f}/a_file/x.onnx"], r"a_file is a file, not a folder"),
    ("import-timestamp-1e20", ["import", "{f}/huge_time.csv", "--out", "{f}/new.h5"],
     r"line 1 column 1: timestamp '1e20' is not a plausible time"),
    ("import-cell-over-128k", ["import", "{f}/huge_cell.csv", "--out", "{f}/new.h5"],
     r"line 1: not a CSV row of numbers"),
    ("import-line-over-1m", ["import", "{f}/huge_line.csv", "--out", "{f}/new.h5"], r"line 1 is longer than 1024 KiB"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args, hint", [pytest.param(args, hint, id=row) for row, args, hint in CASES])
def test_bad_input_case(inputs, args, hint):
    _invoke(inputs, args, hint)
    assert not (inputs / "new.h5").exists() and not (inputs / "new.npz").exists()


def test_csv_with_a_latin1_comment_imports(tmp_path):
    """Not binary data: a European tool's comment in Latin-1 above plain numbers."""
    rows = "\n".join(",".join(["22.5"] * 64) for _ in range(30)) + "\n"
    source = tmp_path / "flur.csv"
    source.write_bytes("# Temperatur in °C, gemessen im Flur\n".encode("latin-1") + rows.encode())
    result = CliRunner().invoke(cli, ["import", str(source), "--out", str(tmp_path / "flur.h5")])
    assert result.exit_code == 0, result.output
    with open_recording(tmp_path / "flur.h5") as recording:
        assert recording.n_frames == 30


# -- 14.2 for errors ulimit cannot make: EIO (a failing card), EDQUOT (a quota) ---------------------
class _DiskThatFails:
    """Opens files like safe_files.open_locked, but writes past ``limit`` bytes fail with ``code``."""

    def __init__(self, code: int, limit: int):
        self.code, self.limit = code, limit

    def __call__(self, path, mode):
        code, limit = self.code, self.limit

        class Failing(io.FileIO):
            def write(self, data):
                if self.tell() + len(memoryview(data).cast("B")) > limit:
                    raise OSError(code, os.strerror(code))
                return super().write(data)

        return Failing(path, mode.replace("b", ""))


@pytest.mark.parametrize("code", [errno.EIO, errno.EDQUOT, errno.EFBIG], ids=errno.errorcode.get)
def test_record_write_error_keeps_every_flushed_frame(tmp_path, monkeypatch, code):
    from thermalcount.support import safe_files

    monkeypatch.setattr(safe_files, "open_locked", _DiskThatFails(code, 600_000))
    out = tmp_path / "rec.h5"
    result = CliRunner().invoke(cli, ["record", "--sensor", "sim", "--speed", "max", "--frames", "100000",
                                      "--no-preview", "--out", str(out)])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    line = _check(result.output, result.exit_code, rf"\({re.escape(os.strerror(code))}, {errno.errorcode[code]}\)")
    assert result.exit_code == 1 and "copy it again" not in result.output
    saved = int(re.search(r"the (\d+) frames saved so far, the file opens with them", line).group(1))
    assert saved > 0
    monkeypatch.undo()
    with open_recording(out) as recording:
        assert recording.n_frames == saved
        assert np.isfinite(recording.read()).all()
    assert [p.name for p in tmp_path.iterdir()] == ["rec.h5"]


def test_rollback_file_restores_the_committed_bytes(tmp_path):
    """The mechanism under the record cases: bytes overwritten since the commit come back."""
    from thermalcount.support.safe_files import RollbackFile

    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 1000)
    disk = RollbackFile(_DiskThatFails(errno.EIO, 1500)(path, "r+b"))
    disk.seek(100)
    disk.write(b"b" * 50)  # inside the committed bytes: kept for the undo
    disk.seek(990)
    disk.write(b"c" * 100)  # across the committed end
    disk.truncate(500)  # a shrink, also undone
    disk.seek(1400)
    disk.write(b"d" * 200)  # fails: past the disk's limit
    assert disk.failed.errno == errno.EIO
    disk.seek(0)
    disk.write(b"e" * 10)  # discarded after the failure
    assert disk.rollback()
    disk.close()
    assert path.read_bytes() == b"a" * 1000


def test_socket_output_is_refused(folder):
    import socket

    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "sock"))
        _invoke(folder, ["simulate", "--out", "{f}/sock", "--overwrite", "--frames", "20"],
                r"sock: it is a socket, not a file")
        assert (folder / "sock").is_socket()


def test_overwrite_through_a_symlink_writes_the_file_it_points_to(tmp_path):
    """A link to a USB stick stays a link: the new file lands where the old one was."""
    (tmp_path / "stick").mkdir()
    write_recording(tmp_path / "stick" / "rec.h5", np.full((30, 8, 8), 21.0, np.float32), fps=10.0)
    os.symlink("stick/rec.h5", tmp_path / "latest.h5")
    result = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path / "latest.h5"), "--overwrite",
                                      "--frames", "60"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "latest.h5").is_symlink()
    with open_recording(tmp_path / "stick" / "rec.h5") as recording:
        assert recording.n_frames == 60
    assert sorted(p.name for p in (tmp_path / "stick").iterdir()) == ["rec.h5"]
