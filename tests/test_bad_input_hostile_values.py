"""Hostile values (issue 14, classes 4, 5 and 8): none ends in "internal error" or a wrong count.

Options given nan, inf, absurd or out-of-range numbers; models that pass onnx's checker but
cannot run, or answer states they do not have, at load or only later; and recordings whose
timestamps are NaN, reversed or constant. Each case runs the real command through Click's
runner and checks what tests/test_bad_input.py checks: a non-zero exit (2 for a usage
error), one ``Error:`` line with the promised hint, no traceback, inputs byte-identical.
"""

from __future__ import annotations

import hashlib
import re
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from thermalcount.cli import cli
from tests.file_hashes import file_hashes



def _hot_frames_break_state(proto, threshold: float = 40.0):
    """The model, changed so any frame hotter than ``threshold`` gets state + 100: valid ONNX
    that runs, passes the load-time test frames (at most 35 °C) and fails later."""
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    for node in graph.node:
        node.output[:] = ["state_raw" if name == "state" else name for name in node.output]
        node.input[:] = ["state_raw" if name == "state" else name for name in node.input]
    graph.initializer.extend([numpy_helper.from_array(np.array(threshold, np.float32), "hot_limit"),
                              numpy_helper.from_array(np.array(100, np.int64), "state_jump")])
    graph.node.extend([
        helper.make_node("ReduceMax", ["frames"], ["frame_max"], axes=[1, 2], keepdims=0),
        helper.make_node("GreaterOrEqual", ["frame_max", "hot_limit"], ["too_hot"]),
        helper.make_node("Add", ["state_raw", "state_jump"], ["state_jumped"]),
        helper.make_node("Where", ["too_hot", "state_jumped", "state_raw"], ["state"]),
    ])
    del TensorProto  # only helper/numpy_helper are needed
    return proto


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import onnx

    from thermalcount.model.contract import default_model_path
    from thermalcount.store import write_recording

    folder = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(1)
    frames = (22 + rng.normal(0, 0.3, (300, 8, 8))).astype(np.float32)
    write_recording(folder / "good.h5", frames, fps=10.0)
    hot = frames.copy()
    hot[150:160, 2:5, 2:5] = 45.0
    write_recording(folder / "hot.h5", hot, fps=10.0)
    np.save(folder / "good.npy", frames[:20])

    proto = onnx.load_model(str(default_model_path()))
    always = onnx.load_model(str(default_model_path()))
    (folder / "hot_breaks_state.onnx").write_bytes(_hot_frames_break_state(proto).SerializeToString())
    (folder / "always_out_of_range.onnx").write_bytes(
        _hot_frames_break_state(always, threshold=-1000.0).SerializeToString())
    # Valid for onnx's checker, but an encoder weight of the wrong size: the graph cannot run.
    broken = onnx.load_model(str(default_model_path()))
    gemm_weights = {node.input[1] for node in broken.graph.node if node.op_type == "Gemm"}
    for init in broken.graph.initializer:
        if init.name in gemm_weights and len(init.dims) == 2 and init.dims[0] > 3:
            array = onnx.numpy_helper.to_array(init)[:-3]
            init.CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(array), init.name))
            break
    (folder / "wrong_weight_size.onnx").write_bytes(broken.SerializeToString())
    return folder


# (case id, arguments with {f} = the inputs folder, exit code, hint the message must contain)
CASES = [
    # -- numbers that are not numbers ----------------------------------------------------------
    ("run-off-delay-nan", ["run", "--sensor", "sim", "--off-delay", "nan"], 2, r"not a finite number"),
    ("run-off-delay-inf", ["run", "--sensor", "sim", "--off-delay", "inf"], 2, r"not a finite number"),
    ("room-off-delay-nan", ["room", "--mqtt", "mqtt://127.0.0.1", "--door", "a", "--name", "r",
                            "--off-delay", "nan"], 2, r"not a finite number"),
    ("run-speed-tiny", ["run", "--sensor", "sim", "--speed", "1e-300"], 2, r"greater than zero, from 0\.001"),
    ("run-speed-nan", ["run", "--sensor", "sim", "--speed", "nan"], 2, r"greater than zero"),
    ("run-speed-inf", ["run", "--sensor", "sim", "--speed", "inf"], 2, r"or 'max'"),
    ("run-duration-centuries", ["run", "--sensor", "sim", "--duration", "99999999d"], 2, r"longer than 10 years"),
    ("simulate-ambient-nan", ["simulate", "--out", "{f}/new.h5", "--ambient", "nan"], 2, r"not a finite number"),
    ("simulate-ambient-boiling", ["simulate", "--out", "{f}/new.h5", "--ambient", "100"], 2, r"0<=x<=60"),
    ("simulate-seed-huge", ["simulate", "--out", "{f}/new.h5", "--seed", str(2**64)], 2, r"--seed"),
    ("simulate-room-huge", ["simulate", "--out", "{f}/new.h5", "--room", str(2**64)], 2, r"--room"),
    ("simulate-frames-absurd", ["simulate", "--out", "{f}/new.h5", "--frames", "99999999999999999999"], 2,
     r"--frames"),
    ("record-frames-absurd", ["record", "--sensor", "sim", "--out", "{f}/new.h5", "--frames", "1e30"], 2,
     r"--frames"),
    ("import-fps-inf", ["import", "{f}/good.npy", "--out", "{f}/new.h5", "--fps", "inf"], 2, r"--fps"),
    ("train-val-split-nan", ["train", "{f}/good.h5", "-o", "{f}/new.npz", "--val-split", "nan"], 2,
     r"not a finite number"),
    ("train-clip-high-inf", ["train", "{f}/good.h5", "-o", "{f}/new.npz", "--clip-high", "inf"], 2,
     r"not a finite number"),
    # -- option ranges are what training accepts (usage errors, exit 2) ------------------------------
    ("train-clusters-17", ["train", "{f}/good.h5", "-o", "{f}/new.npz", "--clusters", "17"], 2, r"2<=x<=16"),
    ("train-latent-1", ["train", "{f}/good.h5", "-o", "{f}/new.npz", "--latent", "1"], 2, r"2<=x<=16"),
    ("train-batch-size-1", ["train", "{f}/good.h5", "-o", "{f}/new.npz", "--batch-size", "1"], 2, r"x>=8"),
    ("train-epochs-0", ["train", "{f}/good.h5", "-o", "{f}/new.npz", "--epochs", "0"], 2, r"x>=1"),
    # -- paths the operating system refuses -----------------------------------------------------------
    ("run-model-name-too-long", ["run", "--sensor", "sim", "--lights", "none", "--no-dashboard",
                                 "--model", "{f}/" + "é" * 300], 1, r"cannot use .*File name too long"),
    ("count-model-name-too-long", ["count", "{f}/good.h5", "--model", "{f}/" + "m" * 400 + ".onnx"], 1,
     r"too long"),
    # -- models that validate but cannot be run, or answer states they do not have ------------------
    ("count-numpy-backend-broken-graph", ["count", "{f}/good.h5", "--backend", "numpy", "--model",
                                          "{f}/wrong_weight_size.onnx"], 1, r"numpy backend cannot run.*re-export"),
    ("count-onnxruntime-broken-graph", ["count", "{f}/good.h5", "--backend", "onnxruntime", "--model",
                                        "{f}/wrong_weight_size.onnx"], 1, r"re-export"),
    ("inspect-broken-graph", ["inspect", "{f}/wrong_weight_size.onnx"], 1, r"re-export"),
    ("count-state-out-of-range-at-load", ["count", "{f}/good.h5", "--model", "{f}/always_out_of_range.onnx"], 1,
     r"gave state 1\d\d for test frame 0.*states 0-\d+.*re-export"),
    ("inspect-state-out-of-range", ["inspect", "{f}/always_out_of_range.onnx"], 1, r"gave state 1\d\d"),
    ("count-state-out-of-range-later", ["count", "{f}/hot.h5", "--model", "{f}/hot_breaks_state.onnx"], 1,
     r"gave state 1\d\d for frame \d+ of this batch.*re-export"),
    ("count-state-out-of-range-later-numpy", ["count", "{f}/hot.h5", "--backend", "numpy",
                                              "--model", "{f}/hot_breaks_state.onnx"], 1, r"gave state 1\d\d"),
    ("run-state-out-of-range-after-start", ["run", "--sensor", "replay:{f}/hot.h5", "--speed", "max",
                                            "--lights", "none", "--no-dashboard", "--model",
                                            "{f}/hot_breaks_state.onnx"], 1, r"gave state 1\d\d for frame 15\d"),
]


@pytest.mark.parametrize("case, args, exit_code, hint", [pytest.param(*case, id=case[0]) for case in CASES])
def test_hostile_value(files, case, args, exit_code, hint):
    before = file_hashes(files)
    result = CliRunner().invoke(cli, [arg.format(f=files) for arg in args])
    output = result.output
    assert result.exit_code == exit_code, output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    assert "internal error" not in output and "Traceback" not in output
    error_lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, output
    assert re.search(hint, error_lines[0]), error_lines[0]
    assert file_hashes(files) == before, "an input file changed"


# -- timestamps: repaired from the frame rate, never a silent wrong count ----------------------------


@pytest.fixture(scope="module")
def walks(tmp_path_factory):
    """A 3000-frame simulated recording with people, and copies with broken timestamps."""
    folder = tmp_path_factory.mktemp("walks")
    result = CliRunner().invoke(cli, ["simulate", "--out", str(folder / "clean.h5"), "--frames", "3000",
                                      "--seed", "3"])
    assert result.exit_code == 0, result.output
    breakers = {
        "nan": lambda t: t.__setitem__(slice(600, 700), np.nan),
        "absurd": lambda t: t.__setitem__(slice(600, 700), 1e20),
        "reversed": lambda t: t.__setitem__(slice(None), t[::-1].copy()),
        "constant": lambda t: t.__setitem__(slice(None), 5.0),
        "clock-step-back": lambda t: t.__setitem__(slice(1500, None), t[1500:] - 3600.0),
    }
    for name, breaker in breakers.items():
        shutil.copy(folder / "clean.h5", folder / f"{name}.h5")
        with h5py.File(folder / f"{name}.h5", "r+") as h5:
            stamps = h5["timestamps"][:]
            breaker(stamps)
            h5["timestamps"][:] = stamps
    return folder


def _counted(result) -> list:
    return [line.split()[0] for line in result.output.splitlines() if re.match(r"^(in|out)\s+frame", line)]


@pytest.mark.parametrize("broken, first_bad", [("nan", 600), ("absurd", 600), ("reversed", 10), ("constant", 10),
                                               ("clock-step-back", 1500)])
def test_count_repairs_bad_timestamps(walks, broken, first_bad):
    clean = CliRunner().invoke(cli, ["count", str(walks / "clean.h5")])
    assert clean.exit_code == 0, clean.output
    assert len(_counted(clean)) >= 6  # people walked through: the comparison below means something
    before = hashlib.sha256((walks / f"{broken}.h5").read_bytes()).hexdigest()
    result = CliRunner().invoke(cli, ["count", str(walks / f"{broken}.h5")])
    assert result.exit_code == 0, result.output
    assert _counted(result) == _counted(clean)
    assert re.search(rf"frame time\(s\) were missing, absurd or went backwards \(first: frame {first_bad}\)",
                     result.output), result.output
    assert hashlib.sha256((walks / f"{broken}.h5").read_bytes()).hexdigest() == before


@pytest.mark.parametrize("broken", ["nan", "reversed"])
def test_run_replay_repairs_bad_timestamps(walks, broken):
    def run(name):
        result = CliRunner().invoke(cli, ["run", "--sensor", f"replay:{walks / name}", "--speed", "max",
                                          "--lights", "none", "--no-dashboard"])
        assert result.exit_code == 0, result.output
        return result

    clean, repaired = run("clean.h5"), run(f"{broken}.h5")
    summary = re.compile(r"stopped \(end of recording\): (\d+) frames, (\d+) in, (\d+) out")
    assert summary.search(repaired.output).groups() == summary.search(clean.output).groups()
    assert "went backwards" in repaired.output and "went backwards" not in clean.output


def test_ctrl_c_inside_an_hdf5_callback_is_an_interrupt_not_an_internal_error(monkeypatch, tmp_path):
    """Found by running the docs' commands: Ctrl-C while h5py was inside the store's Python
    file object came back as SystemError("... returned a result with an exception set")."""
    from thermalcount.sensors.sim import simulator

    def interrupted_inside_h5py(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise SystemError("<function RollbackFile.flush> returned a result with an exception set") \
                from interrupt

    monkeypatch.setattr(simulator, "write_simulation", interrupted_inside_h5py)
    result = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path / "x.h5"), "--frames", "10"])
    assert result.exit_code == 1 and "Aborted!" in result.output, result.output
    assert "internal error" not in result.output
