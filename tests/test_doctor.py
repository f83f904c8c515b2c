"""``thermalcount doctor``: every row against real parts and deliberate faults.

The sensor rows run the real AMG8833 driver over real smbus2 to the emulated part (faults
from its fault plan); the Hue rows the real phue client against the fake bridge over HTTP;
the MQTT rows a real mosquitto. Each case runs the command (through Click's runner, or the
library where a fault can only be staged there), and checks the exit code, the row's status
and its advice, no traceback, and that no secret reaches the table or the --json.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import modules_loaded_by
from tests.mqtt_broker import MOSQUITTO, Mosquitto, free_port
from thermalcount import config
from thermalcount.cli import cli
from thermalcount.app.doctor import DoctorOptions, run_checks
from thermalcount.testing.fake_hue import FakeHueBridge

EMULATED = ["doctor", "--sensor", "emulated"]


def doctor(*args, env=None):
    """Run doctor with --json; (exit code, {row name: check dict}, raw output)."""
    result = CliRunner().invoke(cli, [*args, "--json"], env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout.startswith("{"), result.output
    report = json.loads(result.stdout)
    rows = {row["name"]: row for row in report["checks"]}
    assert report["ok"] == (result.exit_code == 0)
    return result.exit_code, rows, result.output


def row(args, name, **kw):
    code, rows, _ = doctor(*args, **kw)
    return code, rows[name]


# ------------------------------------------------------------------------------ all well


def test_everything_in_place_on_the_emulated_sensor(tmp_path):
    code, rows, _ = doctor(*EMULATED, "--data-dir", str(tmp_path))
    assert code == 0
    assert {name: r["status"] for name, r in rows.items()} == {
        "python": "ok", "backend": "ok", "i2c bus": "ok", "sensor address": "ok", "sensor frame": "ok",
        "model": "ok", "config": "ok", "hue bridge": "skip", "mqtt broker": "skip", "disk": "ok"}
    assert "thermistor" in rows["sensor frame"]["detail"]
    assert "travel axis rows" in rows["model"]["detail"]
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in rows["python"]["detail"]


def test_table_has_a_row_each_and_says_what_to_do():
    result = CliRunner().invoke(cli, [*EMULATED, "--faults", "open=2"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[2].startswith("FAIL  i2c bus") and "-> " in lines[3] and "raspi-config" in lines[3]
    assert "1 problem: i2c bus" in result.stderr


def test_doctor_never_imports_torch_or_sklearn():
    code = ("from click.testing import CliRunner\nfrom thermalcount.cli import cli\n"
            "r = CliRunner().invoke(cli, ['doctor', '--sensor', 'emulated'])\nassert r.exit_code == 0, r.output\n")
    assert modules_loaded_by(code) == []


# ------------------------------------------------------------------------------ the sensor


@pytest.mark.parametrize("faults, name, status, hint", [
    ("open=2", "i2c bus", "fail", r"raspi-config.*dtparam=i2c_arm=on"),
    ("open=13", "i2c bus", "fail", r"group i2c"),
    ("busy", "sensor address", "fail", r"dtoverlay"),
    ("errno=121:1", "sensor address", "fail", r"wiring.*i2cdetect"),
    ("absurd=1", "sensor frame", "fail", r"wiring and power"),
], ids=["i2c-disabled", "i2c-permission", "address-claimed-by-driver", "no-ack", "impossible-frame"])
def test_sensor_faults(faults, name, status, hint):
    import re

    code, found = row([*EMULATED, "--faults", faults], name)
    assert code == 1
    assert found["status"] == status and re.search(hint, found["fix"]), found


def test_sensor_at_the_other_address_is_named():
    checks = {c.name: c for c in run_checks(DoctorOptions(sensor="emulated", address=0x69,
                                                          emulated_device_address=0x68))}
    assert checks["sensor address"].status == "fail"
    assert "pass --address 0x68" in checks["sensor address"].fix
    assert checks["sensor frame"].status == "skip"


def test_implausible_thermistor_fails_the_frame_row():
    from thermalcount.sensors.emulated.sources import CallableSource

    source = CallableSource(lambda i: 22.0 + np.random.default_rng(i).random((8, 8)), thermistor=-40.0)
    checks = {c.name: c for c in run_checks(DoctorOptions(sensor="emulated", emulated_source=source))}
    assert checks["sensor frame"].status == "fail"
    assert "thermistor reads -40" in checks["sensor frame"].detail


def test_faults_need_the_emulated_sensor():
    result = CliRunner().invoke(cli, ["doctor", "--sensor", "sim", "--faults", "busy"])
    assert result.exit_code == 2 and result.output.count("Error:") == 1


def test_unknown_sensor_is_a_usage_error():
    result = CliRunner().invoke(cli, ["doctor", "--sensor", "kinect"])
    assert result.exit_code == 2 and result.output.count("Error:") == 1 and "choose one of" in result.output


def test_unreadable_replay_fails_the_sensor_row(tmp_path):
    code, found = row(["doctor", "--sensor", f"replay:{tmp_path}/nope.h5"], "sensor")
    assert code == 1 and found["status"] == "fail" and "does not exist" in found["detail"]


def test_sim_sensor_has_no_i2c_rows():
    code, rows, _ = doctor("doctor", "--sensor", "sim")
    assert code == 0 and "i2c bus" not in rows and rows["sensor"]["status"] == "ok"


# ------------------------------------------------------------------------------ model, backend


def test_broken_model_fails_with_the_count_validator(tmp_path):
    bad = tmp_path / "door.onnx"
    bad.write_text("not a model")
    before = bad.read_bytes()
    code, found = row([*EMULATED, "--model", str(bad)], "model")
    assert code == 1 and found["status"] == "fail" and "thermalcount export" in found["detail"]
    assert bad.read_bytes() == before


def test_numpy_backend_is_said():
    code, found = row([*EMULATED, "--backend", "numpy"], "backend")
    assert code == 0 and found["detail"].startswith("numpy (chosen with --backend numpy")


def test_backend_without_onnxruntime():
    """A Pi Zero: onnxruntime cannot be imported. auto says numpy and why; onnxruntime fails."""
    probe = ("import sys, json\nsys.modules['onnxruntime'] = None\n"
             "from thermalcount.app.doctor import _backend\n"
             "print(json.dumps([_backend('auto').__dict__, _backend('onnxruntime').__dict__]))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    auto, forced = json.loads(out)
    assert auto["status"] == "ok" and auto["detail"].startswith("numpy (")
    assert forced["status"] == "fail" and "--backend numpy" in forced["fix"]


# ------------------------------------------------------------------------------ config


def _config(text):
    path = config.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_unknown_config_keys_are_named_but_not_fatal():
    _config("[hue]\nof_delay = 30\n[mqtt]\npasswd = \"x-secret-x\"\n")
    code, found = row(EMULATED, "config")
    result = CliRunner().invoke(cli, EMULATED)
    assert "ignored" not in result.stderr  # said once, in the table, not again as a log line
    assert code == 0 and found["status"] == "warn"
    assert "[hue] of_delay" in found["detail"] and "did you mean [hue] off_delay" in found["detail"]
    assert "[mqtt] passwd" in found["detail"] and "x-secret-x" not in found["detail"]


def test_malformed_config_fails():
    path = _config("[hue\n")
    before = path.read_bytes()
    code, found = row(EMULATED, "config")
    assert code == 1 and found["status"] == "fail" and "not valid TOML" in found["detail"]
    assert path.read_bytes() == before


# ------------------------------------------------------------------------------ Hue


@pytest.fixture
def bridge():
    with FakeHueBridge(lights={"1": "Hall", "2": "Desk"}, groups={"1": ("Living room", ["1", "2"])}) as fake:
        yield fake


def test_hue_all_present(bridge):
    key = bridge.create_key()
    config.save_hue_key(bridge.host, key)
    _config(f'[hue]\nbridge = "{bridge.host}"\ngroup = "Living room"\n')
    code, rows, output = doctor(*EMULATED)
    assert code == 0, output
    assert [rows[n]["status"] for n in ("hue bridge", "hue key", "hue lights")] == ["ok", "ok", "ok"]
    assert "group Living room (1)" in rows["hue lights"]["detail"]
    assert key not in output


def test_hue_unknown_light(bridge):
    config.save_hue_key(bridge.host, bridge.create_key())
    code, found = row([*EMULATED, "--bridge", bridge.host, "--light", "Kitchen"], "hue lights")
    assert code == 1 and found["status"] == "fail" and "Hall (1), Desk (2)" in found["detail"]


def test_hue_revoked_key(bridge):
    key = bridge.create_key()
    config.save_hue_key(bridge.host, key)
    bridge.revoke(key)
    code, rows, output = doctor(*EMULATED, "--bridge", bridge.host, "--light", "Hall")
    assert code == 1 and rows["hue bridge"]["status"] == "ok" and rows["hue key"]["status"] == "fail"
    assert "hue pair" in rows["hue key"]["fix"] and key not in output


def test_hue_not_paired(bridge):
    code, found = row([*EMULATED, "--bridge", bridge.host, "--light", "Hall"], "hue key")
    assert code == 1 and found["status"] == "fail" and "hue pair --bridge" in found["fix"]


def test_hue_bridge_down(bridge):
    config.save_hue_key(bridge.host, bridge.create_key())
    bridge.go_down()
    code, found = row([*EMULATED, "--bridge", bridge.host, "--light", "Hall"], "hue bridge")
    assert code == 1 and found["status"] == "fail" and "connection refused" in found["detail"]


def test_hue_without_lights_chosen(bridge):
    config.save_hue_key(bridge.host, bridge.create_key())
    code, found = row([*EMULATED, "--bridge", bridge.host], "hue lights")
    assert code == 1 and found["status"] == "fail" and "config.toml" in found["fix"]


# ------------------------------------------------------------------------------ MQTT

needs_mosquitto = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed")


@needs_mosquitto
def test_mqtt_broker_answers():
    server = Mosquitto().start()
    try:
        code, rows, _ = doctor(*EMULATED, "--mqtt", server.url)
    finally:
        server.stop()
    assert code == 0 and rows["mqtt broker"]["status"] == "ok" and rows["mqtt login"]["status"] == "ok"


@needs_mosquitto
def test_mqtt_from_config_and_broker_down():
    _config(f'[mqtt]\nurl = "mqtt://127.0.0.1:{free_port()}"\n')
    code, rows, _ = doctor(*EMULATED)
    assert code == 1 and rows["mqtt broker"]["status"] == "fail"
    assert "connection refused" in rows["mqtt broker"]["detail"] and rows["mqtt login"]["status"] == "skip"


@needs_mosquitto
def test_mqtt_password_checked_and_never_shown(tmp_path):
    secret = "S3cret-doctor-pw"
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "door", secret], check=True, capture_output=True)
    server = Mosquitto(extra=("allow_anonymous false", f"password_file {passwd}"))
    server.config.write_text(server.config.read_text().replace("allow_anonymous true\n", ""))
    server.start()
    try:
        good = doctor(*EMULATED, "--mqtt", server.url,
                      env={"THERMALCOUNT_MQTT_USERNAME": "door", "THERMALCOUNT_MQTT_PASSWORD": secret})
        config.save_mqtt_password(secret)
        wrong = doctor(*EMULATED, "--mqtt", server.url,
                       env={"THERMALCOUNT_MQTT_USERNAME": "door", "THERMALCOUNT_MQTT_PASSWORD": secret[::-1]})
        plain = CliRunner().invoke(cli, [*EMULATED, "--mqtt", server.url],
                                   env={"THERMALCOUNT_MQTT_USERNAME": "door", "THERMALCOUNT_MQTT_PASSWORD": secret})
    finally:
        server.stop()
    assert good[0] == 0 and good[1]["mqtt login"]["status"] == "ok"
    assert wrong[0] == 1 and wrong[1]["mqtt login"]["status"] == "fail"
    assert "Not authorized" in wrong[1]["mqtt login"]["detail"]
    everything = good[2] + wrong[2] + plain.output
    assert secret not in everything and secret[::-1] not in everything


# ------------------------------------------------------------------------------ disk


def test_disk_space_is_said(tmp_path):
    code, found = row([*EMULATED, "--data-dir", str(tmp_path / "not-yet")], "disk")
    assert code == 0 and found["status"] == "ok" and "GiB free" in found["detail"]


def test_nearly_full_disk_fails(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1 << 30, (1 << 30) - (10 << 20), 10 << 20))
    checks = {c.name: c for c in run_checks(DoctorOptions(sensor="sim", data_dir=str(tmp_path)))}
    assert checks["disk"].status == "fail" and "free some space" in checks["disk"].fix
