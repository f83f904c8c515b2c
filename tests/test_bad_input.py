"""Bad input, one test per row of the table in docs/troubleshooting.md.

Every row runs a real command through Click's runner against files prepared in a shared
folder and asserts: a non-zero exit, exactly one line starting with "Error:", no traceback
(the command ended through SystemExit, not an exception), the hint the table promises, and
every file in the folder byte-identical afterwards (sha256 before and after).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from thermalcount import config
from thermalcount.cli import cli
from thermalcount.testing.fake_hue import FakeHueBridge
from tests.file_hashes import file_hashes


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every bad (and a few good) input file, made once."""
    import onnx

    from thermalcount.model.contract import default_model_path
    from thermalcount.store import write_recording

    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    frames = (22 + rng.normal(0, 0.3, (400, 8, 8))).astype(np.float32)
    write_recording(folder / "good.h5", frames, fps=10.0)
    data = (folder / "good.h5").read_bytes()
    (folder / "truncated.h5").write_bytes(data[: len(data) // 2])
    (folder / "empty.h5").write_bytes(b"")
    (folder / "text.h5").write_text("frame,time\n1,2\n")
    import h5py

    with h5py.File(folder / "wrong_schema.h5", "w") as h5:
        h5["data"] = np.zeros((10, 8, 8), np.float32)
    with h5py.File(folder / "wrong_shape.h5", "w") as h5:
        h5.attrs["schema_version"] = 1
        h5["frames"] = np.zeros((10, 16, 4), np.float32)
        h5["timestamps"] = np.zeros(10)
    nan = frames.copy()
    nan[50:60] = np.nan
    write_recording(folder / "nan.h5", nan, fps=10.0)
    absurd = frames.copy()
    absurd[50:60, 3, 3] = 400.0
    write_recording(folder / "absurd.h5", absurd, fps=10.0)

    model = default_model_path()
    (folder / "not_onnx.onnx").write_text("this is not a model")
    (folder / "empty.onnx").write_bytes(b"")
    proto = onnx.load_model(str(model))
    shape = proto.graph.input[0].type.tensor_type.shape
    shape.dim[1].dim_value, shape.dim[2].dim_value = 64, 1
    (folder / "wrong_shape.onnx").write_bytes(proto.SerializeToString())
    proto = onnx.load_model(str(model))
    del proto.metadata_props[:]
    (folder / "no_metadata.onnx").write_bytes(proto.SerializeToString())
    (folder / "not_a_model.npz").write_bytes(b"PK\x03\x04 broken zip")
    np.save(folder / "wrong_shape.npy", np.zeros((10, 7, 7), np.float32))
    (folder / "bad.csv").write_text("a,b,c\n1,2,3\n")
    (folder / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (folder / "events_bad.csv").write_text("frame,direction\n5,sideways\n")
    np.save(folder / "good.npy", np.full((20, 8, 8), 22.0, np.float32))
    (folder / "existing.h5").write_bytes(data)
    (folder / "existing.onnx").write_bytes(model.read_bytes())
    (folder / "existing.npz").write_bytes(b"keep me")
    (folder / "a_file").write_text("not a folder")
    return folder



# (row id, arguments with {f} = the inputs folder, hint the message must contain (regex))
ROWS = [
    # -- recordings ------------------------------------------------------------------------
    ("count-missing-recording", ["count", "{f}/nope.h5"], r"does not exist; check the path"),
    ("count-empty-recording", ["count", "{f}/empty.h5"], r"empty \(0 bytes\)"),
    ("count-truncated-recording", ["count", "{f}/truncated.h5"], r"copy it again"),
    ("count-not-hdf5", ["count", "{f}/text.h5"], r"not an HDF5 file.*thermalcount import"),
    ("count-wrong-schema", ["count", "{f}/wrong_schema.h5"], r"not a thermalcount recording.*import"),
    ("count-wrong-frame-shape", ["count", "{f}/wrong_shape.h5"], r"'frames' has shape .* expected \(N, 8, 8\); .*thermalcount import"),
    ("train-missing-recording", ["train", "{f}/nope.h5", "-o", "{f}/new.npz"], r"does not exist"),
    ("train-truncated-recording", ["train", "{f}/truncated.h5", "-o", "{f}/new.npz"], r"copy it again"),
    ("train-not-hdf5", ["train", "{f}/text.h5", "-o", "{f}/new.npz"], r"thermalcount import"),
    ("train-nan-frames", ["train", "{f}/nan.h5", "-o", "{f}/new.npz"], r"NaN.*drop them"),
    ("train-absurd-frames", ["train", "{f}/absurd.h5", "-o", "{f}/new.npz"], r"outside|range|absurd"),
    ("run-replay-truncated", ["run", "--sensor", "replay:{f}/truncated.h5", "--lights", "none", "--no-dashboard"],
     r"copy it again"),
    ("run-replay-wrong-schema", ["run", "--sensor", "replay:{f}/wrong_schema.h5", "--lights", "none",
                                 "--no-dashboard"], r"import"),
    ("record-replay-empty", ["record", "--sensor", "replay:{f}/empty.h5", "--out", "{f}/new.h5", "--no-preview"],
     r"never written"),
    ("record-append-to-non-hdf5", ["record", "--sensor", "sim", "--out", "{f}/text.h5", "--append", "--frames", "5",
                                   "--no-preview"], r"not an HDF5 file"),
    # -- import sources ----------------------------------------------------------------------
    ("import-missing-source", ["import", "{f}/nope.npy", "--out", "{f}/new.h5"], r"does not exist|not found"),
    ("import-wrong-shape-npy", ["import", "{f}/wrong_shape.npy", "--out", "{f}/new.h5"], r"8, 8|64"),
    ("import-bad-csv", ["import", "{f}/bad.csv", "--out", "{f}/new.h5"], r"64"),
    ("import-hdf5-source", ["import", "{f}/good.h5", "--out", "{f}/new.h5"], r"no import needed"),
    ("import-binary-csv", ["import", "{f}/binary.csv", "--out", "{f}/new.h5"], r"\.npy arrays or CSV text"),
    ("import-bad-events", ["import", "{f}/good.npy", "--out", "{f}/new.h5", "--events", "{f}/events_bad.csv"],
     r"in.*out"),
    # -- models --------------------------------------------------------------------------------
    ("count-model-not-onnx", ["count", "{f}/good.h5", "--model", "{f}/not_onnx.onnx"], r"thermalcount export"),
    ("count-model-empty", ["count", "{f}/good.h5", "--model", "{f}/empty.onnx"], r"re-export"),
    ("count-model-missing", ["count", "{f}/good.h5", "--model", "{f}/nope.onnx"], r"--model"),
    ("count-model-wrong-input-shape", ["count", "{f}/good.h5", "--model", "{f}/wrong_shape.onnx"],
     r"expected Nx8x8.*re-export"),
    ("count-model-no-metadata", ["count", "{f}/good.h5", "--model", "{f}/no_metadata.onnx"], r"metadata.*re-export"),
    ("run-model-wrong-input-shape", ["run", "--sensor", "sim", "--model", "{f}/wrong_shape.onnx", "--no-dashboard"], r"re-export"),
    ("run-model-no-metadata", ["run", "--sensor", "sim", "--model", "{f}/no_metadata.onnx", "--lights", "none", "--no-dashboard"],
     r"re-export"),
    ("inspect-not-onnx", ["inspect", "{f}/not_onnx.onnx"], r"thermalcount export"),
    ("inspect-no-metadata", ["inspect", "{f}/no_metadata.onnx"], r"export"),
    ("export-not-a-model-file", ["export", "{f}/not_a_model.npz", "-o", "{f}/new.onnx"], r"thermalcount train"),
    ("export-onnx-given-as-model-file", ["export", "{f}/existing.onnx", "-o", "{f}/new.onnx"], r"thermalcount train"),
    ("bench-model-not-onnx", ["bench", "--model", "{f}/not_onnx.onnx", "--frames", "100", "--no-startup",
                              "--no-torch"], r"thermalcount export"),
    # -- option values -----------------------------------------------------------------------------
    ("run-speed-zero", ["run", "--sensor", "sim", "--speed", "0"], r"greater than zero"),
    ("run-duration-nonsense", ["run", "--sensor", "sim", "--duration", "soon"], r"30s, 10m"),
    ("run-fps-five", ["run", "--sensor", "sim", "--fps", "5"], r"'10', '1'"),
    ("run-address-out-of-range", ["run", "--sensor", "sim", "--address", "0x99"], r"0x03-0x77"),
    ("run-unknown-sensor", ["run", "--sensor", "kinect", "--no-dashboard"], r"choose one of"),
    ("run-bad-fault-plan", ["run", "--sensor", "emulated", "--faults", "lightning=1", "--no-dashboard"],
     r"not understood; use e\.g\."),
    ("run-faults-on-sim", ["run", "--sensor", "sim", "--faults", "errno=5:0.1", "--no-dashboard"], r"--sensor emulated"),
    ("run-bad-orientation", ["run", "--sensor", "sim", "--orientation", "rotate=45", "--lights", "none", "--no-dashboard"], r"90|rotate"),
    ("count-bad-orientation", ["count", "{f}/good.h5", "--orientation", "sideways"], r"auto"),
    ("import-orientation-auto", ["import", "{f}/good.npy", "--out", "{f}/new.h5", "--orientation", "auto"],
     r"count and run"),
    ("run-unknown-scenario", ["run", "--sensor", "sim", "--scenario", "carnival", "--lights", "none", "--no-dashboard"], r"scenario"),
    ("run-negative-off-delay", ["run", "--sensor", "sim", "--off-delay", "-1"], r">=0|x>=0|0"),
    ("run-light-without-hue", ["run", "--sensor", "sim", "--lights", "console", "--light", "Hall", "--no-dashboard"],
     r"need --lights hue"),
    ("run-door-without-mqtt", ["run", "--sensor", "sim", "--door", "front", "--lights", "none", "--no-dashboard"], r"need --mqtt"),
    ("run-mqtt-password-in-url", ["run", "--sensor", "sim", "--mqtt", "mqtt://u:pw@localhost", "--lights", "none", "--no-dashboard"],
     r"THERMALCOUNT_MQTT_PASSWORD"),
    ("record-real-sensor-at-speed", ["record", "--sensor", "amg8833", "--speed", "10", "--out", "{f}/new.h5"],
     r"real time"),
    ("simulate-zero-frames", ["simulate", "--out", "{f}/new.h5", "--frames", "0"], r"1<=x"),
    ("count-chunk-frames-zero", ["count", "{f}/good.h5", "--chunk-frames", "0"], r"x>=1|at least"),
    ("train-zero-clusters", ["train", "{f}/good.h5", "-o", "{f}/new.npz", "--clusters", "0"], r"clusters"),
    # -- sensors at start ------------------------------------------------------------------------------
    ("run-sensor-absent", ["run", "--sensor", "emulated", "--faults", "open=2", "--lights", "none", "--no-dashboard"],
     r"raspi-config"),
    ("run-sensor-permission", ["run", "--sensor", "emulated", "--faults", "open=13", "--lights", "none",
                               "--no-dashboard"], r"group i2c"),
    ("record-sensor-busy", ["record", "--sensor", "emulated", "--faults", "busy", "--out", "{f}/new.h5",
                            "--no-preview"], r"dtoverlay"),
    # -- output paths ------------------------------------------------------------------------------------
    ("simulate-output-exists", ["simulate", "--out", "{f}/existing.h5", "--frames", "10"], r"--overwrite"),
    ("record-output-exists", ["record", "--sensor", "sim", "--out", "{f}/existing.h5", "--frames", "5",
                              "--no-preview"], r"--append|--overwrite"),
    ("import-output-exists", ["import", "{f}/good.npy", "--out", "{f}/existing.h5"], r"--overwrite"),
    ("export-output-exists", ["export", "{f}/not_a_model.npz", "-o", "{f}/existing.onnx"], r"--overwrite"),
    ("train-output-exists", ["train", "{f}/good.h5", "-o", "{f}/existing.npz"], r"--overwrite"),
    ("simulate-output-unwritable", ["simulate", "--out", "{f}/a_file/new.h5", "--frames", "10"],
     r"a_file is a file, not a folder; choose another --out"),
    ("record-output-folder-missing", ["record", "--sensor", "sim", "--out", "{f}/no/such/dir/new.h5", "--frames", "5",
                                      "--no-preview"], r"does not exist; create it or choose another --out"),
    ("run-events-out-unwritable", ["run", "--sensor", "sim", "--events-out", "{f}/a_file/events.jsonl", "--lights", "none",
                                   "--no-dashboard"], r"choose a writable path"),
    ("import-output-unwritable", ["import", "{f}/good.npy", "--out", "{f}/a_file/new.h5"], r"not a folder"),
]

XFAIL = {
}


def _check(result, hint: str, before: dict, folder: Path) -> None:
    output = result.output
    assert result.exit_code != 0, output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    assert "Traceback" not in output
    error_lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, output
    assert re.search(hint, error_lines[0]), error_lines[0]
    assert file_hashes(folder) == before, "an input file changed"


@pytest.mark.parametrize("row, args, hint", [
    pytest.param(row, args, hint, id=row,
                 marks=[pytest.mark.xfail(strict=True, reason=XFAIL[row])] if row in XFAIL else [])
    for row, args, hint in ROWS])
def test_bad_input_row(files, row, args, hint):
    before = file_hashes(files)
    result = CliRunner().invoke(cli, [arg.format(f=files) for arg in args])
    try:
        _check(result, hint, before, files)
    finally:
        leftovers = [name for name in ("new.h5", "new.npz", "new.onnx") if (files / name).exists()]
        for name in leftovers:
            (files / name).unlink()
    # A refused command must not leave a half-written output behind either.
    assert leftovers == []


# -- lights, bridge and config rows (they need a fake bridge or a config directory) ----------------


@pytest.fixture
def bridge():
    with FakeHueBridge(lights={"1": "Hall", "2": "Desk"}, groups={"1": ("Living room", ["1", "2"])}) as fake:
        yield fake


def _invoke_checked(args, hint, folder):
    before = file_hashes(folder)
    result = CliRunner().invoke(cli, args)
    _check(result, hint, before, folder)
    return result


def test_run_unknown_light_on_reachable_bridge(bridge, files):
    config.save_hue_key(bridge.host, bridge.create_key())
    _invoke_checked(["run", "--sensor", "sim", "--lights", "hue", "--bridge", bridge.host, "--light", "Kitchen", "--no-dashboard"],
                    r"Kitchen.*available: Hall \(1\), Desk \(2\)", files)


def test_run_unknown_group_on_reachable_bridge(bridge, files):
    config.save_hue_key(bridge.host, bridge.create_key())
    _invoke_checked(["run", "--sensor", "sim", "--lights", "hue", "--bridge", bridge.host, "--group", "Attic", "--no-dashboard"],
                    r"Attic.*available: Living room \(1\)", files)


def test_run_unpaired_bridge(bridge, files):
    _invoke_checked(["run", "--sensor", "sim", "--lights", "hue", "--bridge", bridge.host, "--light", "Hall", "--no-dashboard"],
                    r"hue pair", files)


def test_hue_lights_without_any_bridge(files):
    _invoke_checked(["hue", "lights"], r"hue pair|--bridge", files)


def test_hue_pair_bad_address(files):
    _invoke_checked(["hue", "pair", "--bridge", "http://", "--wait", "1"], r"HOST|address", files)


def test_run_malformed_config_file(files):
    path = config.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("off_delay = [unclosed\n")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _invoke_checked(["run", "--sensor", "sim", "--lights", "none", "--no-dashboard"], r"config", files)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_run_config_with_a_secret_in_it(files):
    path = config.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('[hue]\nkey = "abc"\n')
    _invoke_checked(["run", "--sensor", "sim", "--lights", "none", "--no-dashboard"], r"THERMALCOUNT_HUE_KEY|credentials", files)


def test_run_unreadable_config_file(files):
    path = config.config_path()
    path.mkdir(parents=True)  # a folder where the file should be: unreadable even for root
    _invoke_checked(["run", "--sensor", "sim", "--lights", "none", "--no-dashboard"], r"config", files)


def test_run_malformed_credentials_file(bridge, files):
    path = config.credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"{not json")
    os.close(fd)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _invoke_checked(["run", "--sensor", "sim", "--lights", "hue", "--bridge", bridge.host, "--light", "Hall", "--no-dashboard"],
                    r"pair again", files)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_every_row_is_in_the_troubleshooting_table():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md").read_text()
    names = [row for row, _, _ in ROWS] + [name[len("test_"):].replace("_", "-") for name in globals()
                                           if name.startswith("test_") and name not in (
                                               "test_bad_input_row", "test_every_row_is_in_the_troubleshooting_table")]
    missing = [name for name in names if f"`{name}`" not in doc]
    assert missing == []
