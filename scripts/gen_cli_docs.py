#!/usr/bin/env python3
"""Writes docs/cli.md from the commands' own --help, so the reference never drifts.

    python scripts/gen_cli_docs.py          # rewrite docs/cli.md
    python scripts/gen_cli_docs.py --check  # exit 1 if docs/cli.md is out of date (tests do this)
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.testing import CliRunner

from thermalcount.cli import cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"

HEADER = """# Command reference

Generated from each command's `--help` by `python scripts/gen_cli_docs.py`; a test fails when
this page and the commands disagree. Guides: [recording](recording.md), [model](model.md),
[counting](counting.md), [running](running.md), [lights](lights.md),
[Home Assistant](home-assistant.md), [performance](performance.md), [accuracy](accuracy.md).
"""


def _help(args: list) -> str:
    result = CliRunner().invoke(cli, args + ["--help"], terminal_width=100, prog_name="thermalcount")
    if result.exit_code != 0:
        raise SystemExit(f"thermalcount {' '.join(args)} --help failed:\n{result.output}")
    return result.output.rstrip()


def _walk(group: click.Group, path: list):
    ctx = click.Context(group, info_name="thermalcount")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield path + [name], command
        if isinstance(command, click.Group):
            yield from _walk(command, path + [name])


def render() -> str:
    parts = [HEADER, "## thermalcount\n", "```\n" + _help([]) + "\n```\n"]
    for path, _command in _walk(cli, []):
        parts.append(f"{'#' * min(2 + len(path) - 1, 4)} thermalcount {' '.join(path)}\n")
        parts.append("```\n" + _help(path) + "\n```\n")
    return "\n".join(parts)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        if not DOC.exists() or DOC.read_text() != text:
            print("docs/cli.md is out of date: run python scripts/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
