"""The CLI's shell: help, version, lazy loading, no training stack on the runtime path."""

from __future__ import annotations


from click.testing import CliRunner

from tests.conftest import modules_loaded_by
from thermalcount.cli import cli, COMMANDS
from thermalcount.cli.options import parse_duration


def test_help_lists_built_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Lifecycle" in result.output


def test_every_listed_command_has_help():
    runner = CliRunner()
    for name in cli.list_commands(None):
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert len(result.output.strip()) > 40, name


def test_help_never_imports_training_stack():
    code = (
        "import sys\n"
        "from thermalcount.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
    )
    assert modules_loaded_by(code) == []


def test_run_and_record_help_load_no_numpy():
    """--help of the commands a Pi user types most stays a click-only start (no numpy, h5py,
    onnxruntime): the sensor options read their defaults from the registry, not the sensors."""
    for command in ("run", "record", "doctor"):
        code = f"from thermalcount.cli import main\ntry:\n    main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
        assert modules_loaded_by(code, roots=("numpy", "h5py", "onnxruntime", "onnx")) == [], command


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2


def test_parse_duration():
    assert parse_duration("90") == 90
    assert parse_duration("30s") == 30
    assert parse_duration("10m") == 600
    assert parse_duration("1.5h") == 5400
    for bad in ("", "ten", "5 parsecs", "-3s"):
        try:
            parse_duration(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_all_commands_registered_point_at_modules():
    for name, target in COMMANDS.items():
        assert ":" in target, name


def test_cli_starts_in_a_plain_interpreter():
    """No hidden reliance on modules that an editable install or pytest happen to import
    (a regular `pip install .` once failed on `importlib.util`)."""
    import os
    import site
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    path = os.pathsep.join([str(root), *site.getsitepackages()])
    code = "from thermalcount.cli import main\nmain(['run', '--help'])\n"
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": path}, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Usage: thermalcount run" in result.stdout


def test_once_a_command_is_over_ctrl_c_cannot_interrupt_the_clean_up():
    """A Ctrl-C that meets a finished command must not print an 'Exception ignored' traceback
    from the interpreter's clean-up after the result: main() ignores SIGINT on its way out."""
    from tests.conftest import run_python

    code = ("import signal\nfrom thermalcount.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)\n")
    result = run_python(code)
    assert result.returncode == 0 and result.stdout.strip().splitlines()[-1] == "True", result.stderr
