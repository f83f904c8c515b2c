"""scripts/install-pi.sh against a throwaway root: every target directory in tmp_path.

The slow test installs for real (a venv from this checkout, runtime only), checks the
rendered unit, the venv, ``thermalcount --version`` and ``thermalcount doctor --sensor
emulated`` from it, runs the script again (nothing changes), then uninstalls. The fast
cases are refusals: one ``Error:`` line, the right exit code, and nothing deleted.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "install-pi.sh"


def targets(tmp_path: Path) -> dict:
    return {
        "THERMALCOUNT_VENV": str(tmp_path / "opt" / "thermalcount" / "venv"),
        "THERMALCOUNT_UNIT_DIR": str(tmp_path / "etc" / "systemd" / "system"),
        "THERMALCOUNT_CONFIG_DIR": str(tmp_path / "home" / ".config" / "thermalcount"),
        "THERMALCOUNT_DATA_DIR": str(tmp_path / "home" / "thermalcount"),
        "THERMALCOUNT_NO_SYSTEMCTL": "1",
        "THERMALCOUNT_SENSOR": "emulated",
    }


def install(tmp_path: Path, *args: str, **extra) -> subprocess.CompletedProcess:
    env = {**os.environ, **targets(tmp_path), **extra}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=900)


def one_error(result: subprocess.CompletedProcess, code: int, hint: str) -> None:
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and hint in errors[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_install_rerun_uninstall(tmp_path):
    where = targets(tmp_path)
    venv, unit = Path(where["THERMALCOUNT_VENV"]), Path(where["THERMALCOUNT_UNIT_DIR"]) / "thermalcount.service"

    first = install(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]

    # The unit: ExecStart into the venv, the right user, no template field left.
    text = unit.read_text()
    import re

    assert re.findall(r"@[A-Z_]+@", text) == []
    assert ".local/bin" not in text
    exec_line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    words = shlex.split(exec_line[len("ExecStart="):])
    assert words[:2] == [str(venv / "bin" / "thermalcount"), "run"]
    assert words[words.index("--sensor") + 1] == "emulated" and "--no-dashboard" in words
    assert f"User={getpass.getuser()}" in text.splitlines()
    assert f"Environment=THERMALCOUNT_CONFIG_DIR={where['THERMALCOUNT_CONFIG_DIR']}" in text

    # The venv works on its own: --version, doctor on the emulated sensor, and no torch.
    version = subprocess.run([str(venv / "bin" / "thermalcount"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("thermalcount, version")
    doctor = subprocess.run([str(venv / "bin" / "thermalcount"), "doctor", "--sensor", "emulated"],
                            capture_output=True, text=True, env={**os.environ, **where})
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    no_torch = subprocess.run([str(venv / "bin" / "python"), "-c",
                               "import importlib.util as u; print(u.find_spec('torch'), u.find_spec('sklearn'))"],
                              capture_output=True, text=True)
    assert no_torch.stdout.strip() == "None None"

    # Again: the same unit, byte for byte and not rewritten; the venv still works.
    (Path(where["THERMALCOUNT_CONFIG_DIR"]) / "config.toml").write_text("[hue]\noff_delay = 45\n")
    before = (hashlib.sha256(unit.read_bytes()).hexdigest(), unit.stat().st_mtime_ns)
    again = install(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "unchanged" in again.stderr
    assert (hashlib.sha256(unit.read_bytes()).hexdigest(), unit.stat().st_mtime_ns) == before
    assert subprocess.run([str(venv / "bin" / "thermalcount"), "--version"]).returncode == 0
    assert sorted(p.name for p in unit.parent.iterdir()) == ["thermalcount.service"]  # no temp file left

    # Uninstall: unit and venv gone, the user's config and data kept.
    gone = install(tmp_path, "--uninstall")
    assert gone.returncode == 0, gone.stderr
    assert not unit.exists() and not venv.exists()
    assert (Path(where["THERMALCOUNT_CONFIG_DIR"]) / "config.toml").read_text() == "[hue]\noff_delay = 45\n"
    assert Path(where["THERMALCOUNT_DATA_DIR"]).is_dir()
    assert install(tmp_path, "--uninstall").returncode == 0  # twice is fine too


# -- refusals (fast: they stop before pip) ---------------------------------------------------------


def test_missing_wheel(tmp_path):
    one_error(install(tmp_path, "--wheel", str(tmp_path / "nope.whl")), 1, "does not exist")
    assert not Path(targets(tmp_path)["THERMALCOUNT_VENV"]).exists()


def test_unknown_option(tmp_path):
    one_error(install(tmp_path, "--frobnicate"), 2, "unknown option --frobnicate")


def test_relative_target(tmp_path):
    one_error(install(tmp_path, THERMALCOUNT_VENV="venv"), 1, "not an absolute path")


def test_uninstall_never_deletes_a_folder_that_is_not_a_venv(tmp_path):
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "holiday.jpg").write_bytes(b"\xff\xd8 keep me")
    one_error(install(tmp_path, "--uninstall", THERMALCOUNT_VENV=str(precious)), 1, "not a venv")
    assert (precious / "holiday.jpg").read_bytes() == b"\xff\xd8 keep me"


def test_install_refuses_a_folder_that_is_not_a_venv(tmp_path):
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "holiday.jpg").write_bytes(b"keep")
    one_error(install(tmp_path, THERMALCOUNT_VENV=str(precious)), 1, "is not a venv")
    assert sorted(p.name for p in precious.iterdir()) == ["holiday.jpg"]
