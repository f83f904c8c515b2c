"""Packaging metadata that pip and PyPI read: no deprecated forms, nothing missing."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the runtime supports 3.9, the tests run on 3.11
    import tomli as tomllib


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_is_an_spdx_expression_with_its_file():
    # The {text = ...} table is deprecated by setuptools (an error from February 2027).
    project = _project()["project"]
    assert isinstance(project["license"], str) and project["license"] == "MIT"
    for name in project["license-files"]:
        assert (ROOT / name).is_file(), name
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_build_backend_understands_license_expressions():
    # setuptools reads `license = "MIT"` (PEP 639) from 77 on; older ones reject it.
    requires = _project()["build-system"]["requires"]
    setuptools = [item for item in requires if item.startswith("setuptools")]
    assert setuptools and int(setuptools[0].split(">=")[1].split(".")[0]) >= 77


def test_torch_range_keeps_the_cpu_wheel():
    # torch 2.14 on PyPI is a multi-GB CUDA build; the [train] range must stop below it.
    train = _project()["project"]["optional-dependencies"]["train"]
    torch = [item for item in train if item.startswith("torch")]
    assert torch and "<2.14" in torch[0]
