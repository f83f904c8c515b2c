"""Secrets and untrusted files: credentials stay 0600, never reach the screen or a log, never
come from the command line; nothing we read is unpickled."""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import thermalcount
from thermalcount import config
from thermalcount.cli import COMMANDS, cli
from thermalcount.testing.fake_hue import FakeHueBridge

PACKAGE = Path(thermalcount.__file__).parent
SECRET_WORDS = ("key", "password", "passwd", "token", "secret", "credential", "username", "apikey")


def _all_commands():
    """(path, command) for every command and sub-command the CLI offers."""
    found = []

    def walk(command, path):
        found.append((path, command))
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), f"{path} {name}")

    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        walk(cli.get_command(ctx, name), name)
    return found


def test_no_command_takes_a_secret_on_the_command_line():
    commands = _all_commands()
    assert len(commands) >= len(COMMANDS)  # every command is inspected, sub-commands included
    offenders = []
    for path, command in commands:
        for param in command.params:
            names = [param.name or ""] + list(getattr(param, "opts", [])) + list(getattr(param, "secondary_opts", []))
            for name in names:
                words = re.split(r"[-_]+", name.lower().lstrip("-"))
                if any(word in SECRET_WORDS for word in words):
                    offenders.append(f"{path}: {name}")
    assert offenders == []


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs():
    """Every logger (ours, phue, paho, urllib3) at DEBUG into one list, as a user debugging would."""
    capture = _Capture()
    capture.setFormatter(logging.Formatter("%(name)s %(message)s %(args)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    names = ("thermalcount", "phue", "paho", "urllib3")
    saved = {name: (logging.getLogger(name).level, logging.getLogger(name).propagate) for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield capture.lines
    root.removeHandler(capture)
    root.setLevel(previous)
    for name, (level, propagate) in saved.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).propagate = propagate


@pytest.mark.slow
def test_hue_key_never_printed_or_logged_by_pair_lights_run(debug_logs, tmp_path):
    runner = CliRunner()
    with FakeHueBridge(lights={"1": "Hall"}) as bridge:
        threading.Timer(0.3, bridge.press_link_button).start()
        paired = runner.invoke(cli, ["hue", "pair", "--bridge", bridge.host, "--wait", "10"])
        assert paired.exit_code == 0, paired.output
        key = config.hue_key(bridge.host)
        assert key and len(key) >= 16
        creds = config.credentials_path()
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        assert stat.S_IMODE(creds.parent.stat().st_mode) & 0o077 == 0

        listed = runner.invoke(cli, ["hue", "lights", "--plain"])
        assert listed.exit_code == 0, listed.output
        ran = runner.invoke(cli, ["run", "--sensor", "sim", "--scenario", "busy", "--speed", "max",
                                  "--duration", "60s", "--lights", "hue", "--light", "Hall", "--off-delay", "1",
                                  "--no-dashboard"])
        assert ran.exit_code == 0, ran.output
        assert bridge.changes("light"), "the run switched the light, so requests carrying the key were made"
        bridge.revoke(key)  # the error path names the problem, not the key
        revoked = runner.invoke(cli, ["hue", "lights"])
        assert revoked.exit_code != 0
        config_text = config.config_path().read_text() if config.config_path().exists() else ""

    everything = "\n".join([paired.output, listed.output, ran.output, revoked.output, *debug_logs, config_text])
    # phue logs every request URL (which holds the key) at DEBUG: those lines were seen, redacted.
    assert any(line.startswith("phue ") and "/api/" in line for line in debug_logs)
    assert key not in everything


@pytest.mark.slow
def test_mqtt_password_never_printed_or_logged_by_run_or_room(debug_logs, tmp_path, monkeypatch):
    from tests.mqtt_broker import Mosquitto

    import subprocess

    passwd = tmp_path / "passwd"
    secret = "Sup3r-s3cret-pw-0451"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "door", secret], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Mosquitto()
    server.config.write_text(server.config.read_text().replace("allow_anonymous true", "allow_anonymous false")
                             + f"password_file {passwd}\n")
    server.start()
    try:
        monkeypatch.setenv("THERMALCOUNT_MQTT_USERNAME", "door")
        config.save_mqtt_password(secret)  # from the 0600 file, as a service would
        assert stat.S_IMODE(config.credentials_path().stat().st_mode) == 0o600
        runner = CliRunner()
        ran = runner.invoke(cli, ["run", "--sensor", "sim", "--speed", "max", "--duration", "30s", "--lights", "none",
                                  "--mqtt", server.url, "--door", "front", "--no-dashboard"])
        assert ran.exit_code == 0, ran.output
        room = runner.invoke(cli, ["room", "--mqtt", server.url, "--name", "hall", "--door", "front",
                                   "--duration", "1s", "--lights", "none", "--no-dashboard"])
        assert room.exit_code == 0, room.output
        monkeypatch.setenv("THERMALCOUNT_MQTT_PASSWORD", "wrong-" + secret[::-1])
        refused = runner.invoke(cli, ["run", "--sensor", "sim", "--speed", "max", "--duration", "5s",
                                      "--lights", "none", "--mqtt", server.url, "--no-dashboard"])
    finally:
        server.close()
    assert "Not authorized" in refused.output  # the wrong password was really refused
    everything = "\n".join([ran.output, room.output, refused.output, *debug_logs])
    assert secret not in everything and secret[::-1] not in everything


def test_loosened_credentials_directory_file_is_tightened_before_use(tmp_path):
    config.save_hue_key("10.0.0.2", "k" * 40)
    path = config.credentials_path()
    os.chmod(path, 0o644)
    assert config.hue_key("10.0.0.2") == "k" * 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# ------------------------------------------------------------------ no pickle anywhere

def _python_sources():
    return sorted(PACKAGE.rglob("*.py"))


def _calls(pattern: str):
    """(file, line number, call text) for each call matching ``pattern`` (calls may span lines)."""
    found = []
    for path in _python_sources():
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(pattern, text):
            depth, end = 0, match.end() - 1
            for end in range(match.end() - 1, len(text)):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            found.append((path.relative_to(PACKAGE), text.count("\n", 0, match.start()) + 1,
                          text[match.start():end + 1]))
    return found


def test_no_module_imports_pickle_or_its_relatives():
    offenders = []
    for path in _python_sources():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.match(r"\s*(import|from)\s+(pickle|cPickle|dill|joblib|shelve|marshal)\b", line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
            if re.search(r"\b(pickle|joblib|dill)\.(load|loads)\b", line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert offenders == []


def test_every_numpy_load_refuses_pickles():
    calls = _calls(r"\bnp\.load\(|\bnumpy\.load\(")
    offenders = [f"{path}:{line}: {call}" for path, line, call in calls if "allow_pickle=False" not in call]
    assert offenders == []


def test_every_torch_load_is_weights_only():
    calls = _calls(r"\btorch\.load\(")
    offenders = [f"{path}:{line}: {call}" for path, line, call in calls if "weights_only=True" not in call]
    assert offenders == []


def test_the_scanner_sees_calls_that_span_lines(tmp_path):
    """The scans above would miss nothing: a multi-line call is read to its closing bracket."""
    sample = "x = np.load(\n    path,\n    allow_pickle=False,\n)\n"
    match = re.search(r"\bnp\.load\(", sample)
    depth = 0
    for end in range(match.end() - 1, len(sample)):
        depth += {"(": 1, ")": -1}.get(sample[end], 0)
        if depth == 0:
            break
    assert "allow_pickle=False" in sample[match.start():end + 1]
