"""`run` reads the real sensor unless told otherwise, and a simulated one says so (issue 15.1).

Bad-input cases follow tests/test_bad_input.py: a real CLI run, a non-zero exit, exactly one
`Error:` line with the promised hint, no traceback, the files in the folder byte-identical.
The other cases read every plain log line of a short run and the dashboard's rendering.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from thermalcount.cli import cli
from tests.file_hashes import file_hashes

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")



@pytest.fixture
def folder(tmp_path):
    """An event log from an earlier run that a refused start must leave as it was."""
    (tmp_path / "events.jsonl").write_text('{"frame": 3, "direction": "in", "occupancy": 1}\n')
    return tmp_path


def _check_refused(result, hint: str, before: dict, folder: Path, exit_code: int) -> None:
    output = result.output
    assert result.exit_code == exit_code, output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    assert "Traceback" not in output
    error_lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and len(output.strip().splitlines()) == 1, output
    assert re.search(hint, error_lines[0]), error_lines[0]
    assert file_hashes(folder) == before, "an input file changed"


# -- without --sensor: the real part ---------------------------------------------------------------


def test_run_without_sensor_on_a_machine_without_i2c_says_how_to_try_it(folder):
    # Bus 97 exists on no machine: the same as a laptop or a Pi with I2C disabled.
    before = file_hashes(folder)
    result = CliRunner().invoke(cli, ["run", "--bus", "97", "--lights", "none", "--no-dashboard",
                                      "--events-out", str(folder / "events.jsonl"), "--duration", "1s"])
    _check_refused(result, r"/dev/i2c-97 does not exist.*raspi-config.*use --sensor sim to try it without hardware",
                   before, folder, exit_code=1)


def test_run_without_sensor_is_the_real_part_which_cannot_be_sped_up(folder):
    # Under the old default (sim) this ran ten times faster and exited 0.
    before = file_hashes(folder)
    result = CliRunner().invoke(cli, ["run", "--speed", "10", "--lights", "none", "--no-dashboard",
                                      "--duration", "1s"])
    _check_refused(result, r"a real AMG8833 runs in real time", before, folder, exit_code=2)


def test_run_help_shows_amg8833_as_the_default():
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert result.exit_code == 0
    help_text = " ".join(result.output.split())
    assert re.search(r"--sensor SENSOR .*\[default: amg8833\]", help_text), help_text


# -- a simulated sensor says so on every line --------------------------------------------------------


@pytest.mark.parametrize("sensor", ["sim", "emulated"])
def test_every_log_line_of_a_simulated_run_says_simulated(sensor):
    result = CliRunner().invoke(cli, ["run", "--sensor", sensor, "--speed", "max", "--duration", "90s",
                                      "--lights", "none", "--no-dashboard", "--scenario", "busy"])
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    logged = [line for line in lines if STAMP.match(line)]
    # counting:, at least one event, the travel-axis notice: more than a token few lines.
    assert len(logged) >= 3 and any(" in  frame " in line for line in logged), lines
    prefix = f"SIMULATED sensor ({sensor}): "
    assert [line for line in logged if not STAMP.sub("", line).startswith(prefix)] == []
    assert lines[-1].startswith(prefix + "stopped (duration):"), lines[-1]


def test_a_replay_beside_a_simulation_is_not_called_simulated(tmp_path):
    from thermalcount.store import write_recording

    rng = np.random.default_rng(1)
    write_recording(tmp_path / "quiet.h5", (22 + rng.normal(0, 0.2, (50, 8, 8))).astype(np.float32), fps=10.0)
    outputs = {}
    for sensor in ("sim", f"replay:{tmp_path / 'quiet.h5'}"):
        result = CliRunner().invoke(cli, ["run", "--sensor", sensor, "--speed", "max", "--duration", "3s",
                                          "--lights", "none", "--no-dashboard"])
        assert result.exit_code == 0, result.output
        outputs[sensor.partition(":")[0]] = result.stderr
    assert "counting: sensor replay:" in outputs["replay"] and "SIMULATED" not in outputs["replay"]
    assert "SIMULATED sensor (sim): counting: sensor sim" in outputs["sim"]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("sensor", ["sim", "emulated"])
def test_the_dashboard_of_a_simulated_run_shows_a_banner_and_a_replay_none(sensor, capsys, tmp_path):
    from thermalcount.app.run import OutputOptions, RunOptions, SensorOptions, run_session
    from thermalcount.lights.registry import LightsSettings
    from thermalcount.store import write_recording

    run_session(RunOptions(sensor=SensorOptions(spec=sensor, speed=None),
                           lights=LightsSettings(kind="none"),
                           output=OutputOptions(max_frames=30, dashboard=True)),
                out=_Terminal())
    shown = capsys.readouterr().err
    assert "thermalcount run" in shown  # the dashboard was drawn
    assert f"SIMULATED sensor ({sensor}): the people counted are made up" in " ".join(shown.split())
    # A recording is real data: no banner.
    write_recording(tmp_path / "r.h5", np.full((30, 8, 8), 22.0, np.float32), fps=10.0)
    run_session(RunOptions(sensor=SensorOptions(spec=f"replay:{tmp_path / 'r.h5'}", speed=None),
                           lights=LightsSettings(kind="none"),
                           output=OutputOptions(dashboard=True)), out=_Terminal())
    shown = capsys.readouterr().err
    assert "thermalcount run" in shown and "SIMULATED" not in shown


# -- the docs name the sensor they mean ---------------------------------------------------------------


def test_every_run_command_in_the_docs_names_its_sensor():
    """A `thermalcount run` copied from the docs onto a Pi must not quietly count made-up people,
    nor, copied onto a laptop, fail without saying which sensor it wanted."""
    root = Path(__file__).resolve().parents[1]
    files = [root / "README.md", *sorted((root / "docs").glob("*.md")), *sorted((root / "examples").glob("*"))]
    unnamed = []
    for path in files:
        text = path.read_text()
        if path.suffix == ".md":
            text = "\n".join(re.findall(r"```[^\n]*\n(.*?)```", text, re.S))
        for line in text.replace("\\\n", " ").splitlines():
            match = re.search(r"(?:^|[\s/])thermalcount run\b(.*)", line)
            if match and not re.search(r"--sensor|--help|\[OPTIONS\]", match.group(1)):
                unnamed.append(f"{path.name}: {line.strip()}")
    assert unnamed == []
