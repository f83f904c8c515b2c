"""Docs stay true: the CLI reference is generated from --help, links resolve, every command
has an example, and the README's quick start names commands that exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from thermalcount.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def _all_commands():
    ctx = click.Context(cli, info_name="thermalcount")
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        yield name, command
        if isinstance(command, click.Group):
            sub_ctx = click.Context(command, info_name=name, parent=ctx)
            for sub in command.list_commands(sub_ctx):
                yield f"{name} {sub}", command.get_command(sub_ctx, sub)


def test_cli_reference_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name,command", list(_all_commands()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_and_an_example(name, command):
    if isinstance(command, click.Group):
        assert command.help, name
        return
    assert command.help and "Example" in command.help, f"thermalcount {name} needs an Example: block"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"thermalcount {name} {param.opts[0]} has no help text"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(doc):
    text = doc.read_text()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_readme_quick_start_uses_real_commands():
    readme = (ROOT / "README.md").read_text()
    names = {name.split()[0] for name, _ in _all_commands()}
    used = set(re.findall(r"(?:^\s*|&& |\.venv/bin/)thermalcount ([a-z][\w-]*)", readme, re.MULTILINE))
    assert "run" in used
    assert used - {"hue"} <= names | {"hue"}, used - names
    assert "./scripts/test.sh" in readme


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Run the tests", 1)[1]
    command = section.split("```sh\n", 1)[1].split("\n```", 1)[0].strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.strip().startswith("#")]
    assert ci_lines[-1] == f"exec {command}"
