"""Shared fixtures. Area-specific fixtures live in the test module that uses them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest


def pytest_configure(config):
    """Ctrl-C works in the tests however the suite was started. A suite started as a
    background job of a script (``./scripts/test.sh &``) inherits SIGINT *ignored*; Python
    then installs no KeyboardInterrupt handler, and neither do the commands the tests start
    and stop with SIGINT, so those tests saw commands that never stopped. With a handler
    here, children start with the default action again (exec resets caught signals)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory, monkeypatch):
    """Never touch the developer's real config directory or ~/.python_hue."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("THERMALCOUNT_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("HOME", str(home))


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run Python code in a fresh interpreter (for import-isolation checks)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def modules_loaded_by(code: str, roots=("torch", "sklearn")) -> list:
    """Run ``code`` in a fresh interpreter; the modules under the packages ``roots`` that it
    left imported (sorted). The code must succeed."""
    probe = (code + "\nimport sys as _sys, json as _json\n"
             f"print(_json.dumps(sorted(m for m in _sys.modules if m.split('.')[0] in {tuple(roots)!r})))\n")
    result = run_python(probe)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])
