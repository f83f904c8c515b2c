"""config.toml keys nothing reads are said once, with a "did you mean"; nan/inf refused.

Each case writes a config.toml, runs a real command through Click's runner and checks the
exit code, the one warning (or one ``Error:``) line, no traceback, and that config.toml is
byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import logging
import re

import pytest
from click.testing import CliRunner

from thermalcount import config
from thermalcount.cli import cli

RUN = ["run", "--sensor", "sim", "--speed", "max", "--duration", "2s", "--lights", "none", "--no-dashboard"]


@pytest.fixture(autouse=True)
def _fresh_warnings():
    config._warned.clear()  # "once per process": each case is its own process here
    yield
    config._warned.clear()


def _write(text: str):
    path = config.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


# (case id, config.toml, what the warning must say (regex), what it must not say)
UNKNOWN = [
    ("hue-typo", "[hue]\nof_delay = 300\n",
     r"unknown key \[hue\] of_delay ignored; did you mean \[lights\] off_delay\?.*valid keys in \[hue\]: bridge, lights, group\)"),
    ("mqtt-passwd", '[mqtt]\nurl = "mqtt://127.0.0.1:1"\npasswd = "hunter2-secret"\n',
     r"unknown key \[mqtt\] passwd ignored.*url, user.*THERMALCOUNT_MQTT_PASSWORD"),
    ("unknown-table", "[light]\ngroup = \"Hall\"\n", r"unknown table \[light\] ignored; did you mean \[lights\]\?.*\[hue\], \[lights\], \[mqtt\]"),
    ("table-typo", "[hues]\nbridge = \"1.2.3.4\"\n", r"unknown table \[hues\] ignored; did you mean \[hue\]\?"),
    ("top-level-setting", "off_delay = 60\n[hue]\n", r"unknown key off_delay ignored; did you mean \[lights\] off_delay\?"),
    ("mqtt-user-typo", '[mqtt]\nusr = "door"\n', r"did you mean \[mqtt\] user\?"),
]


@pytest.mark.parametrize("case, text, wanted", [pytest.param(*row, id=row[0]) for row in UNKNOWN])
def test_unknown_key_is_said_once(case, text, wanted, caplog):
    path, before = _write(text)
    with caplog.at_level(logging.WARNING, logger="thermalcount"):
        result = CliRunner().invoke(cli, RUN)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    said = [record.getMessage() for record in caplog.records if "ignored" in record.getMessage()]
    assert len(said) == 1, said  # run reads config.toml several times: said once
    assert re.search(wanted, said[0]), said[0]
    assert "\n" not in said[0]
    assert "hunter2-secret" not in result.output + said[0]  # the value is never echoed
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_known_keys_say_nothing(caplog):
    _write('[hue]\nbridge = "1.2.3.4"\nlights = ["Hall"]\ngroup = "x"\n[lights]\noff_delay = 5\n'
           '[mqtt]\nurl = "mqtt://h"\nuser = "u"\n')
    with caplog.at_level(logging.WARNING, logger="thermalcount"):
        settings = config.load_config()
    assert settings.unknown == ()
    assert [r for r in caplog.records if "ignored" in r.getMessage()] == []


def test_unknown_keys_are_exposed_for_doctor():
    _write("[hue]\nof_delay = 3\n[mqtt]\npasswd = \"x\"\n[extra]\na = 1\n")
    names = [item.name for item in config.load_config().unknown]
    assert names == ["[hue] of_delay", "[mqtt] passwd", "[extra]"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan"])
@pytest.mark.parametrize("table", ["lights", "hue"])  # [hue] is where it was before [lights]
def test_non_finite_off_delay_is_one_line(value, table):
    path, before = _write(f"[{table}]\noff_delay = {value}\n")
    result = CliRunner().invoke(cli, RUN)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert re.search(rf"\[{table}\] off_delay must be a finite number of seconds >= 0", errors[0]), errors[0]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_off_delay_under_hue_is_still_read_with_one_warning_saying_where_it_goes(caplog):
    path, before = _write("[hue]\noff_delay = 7\n")
    with caplog.at_level(logging.WARNING, logger="thermalcount"):
        assert config.load_config().off_delay == 7.0
        assert config.load_config().off_delay == 7.0
    said = [record.getMessage() for record in caplog.records]
    assert len(said) == 1 and "\n" not in said[0], said
    assert re.search(r"\[hue\] off_delay is deprecated; move it to \[lights\] off_delay", said[0]), said[0]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_off_delay_under_lights_wins_over_the_old_place():
    _write("[hue]\noff_delay = 7\n[lights]\noff_delay = 0\n")
    assert config.load_config().off_delay == 0.0
