"""Every ``thermalcount ...`` command shown in the docs is a command that works.

Two levels, like docs/cli.md (generated from --help and checked):

* every command line in a code block of README.md, docs/*.md and examples/README.md parses:
  the command exists, every option exists and every value has the option's type and range;
* the ones that need no hardware and no network (offline commands, ``--sensor sim``,
  ``emulated`` or ``replay:``) are run, in the order a doc shows them, in a folder of their
  own with the input files a doc assumes (a recording called doorway.h5, frames.npy...).
  Sizes are cut to SCALE_FRAMES frames. Commands that run until stopped or longer than this
  suite can wait (run, record, bench, the full accuracy suite) are stopped after RUN_CAP
  seconds with Ctrl-C: they must have started without an error. Every other command runs
  to its end (FINITE_CAP at most), because later examples use what it wrote: on a busy
  machine a 4 s cap once stopped ``export`` before its model was written.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import click
import h5py
import numpy as np
import pytest

from thermalcount.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md", ROOT / "examples" / "README.md"]
#: Seconds a long-running command may run before it is stopped (it must have started cleanly
#: by then). The others run to the end: training takes ~15 s on SCALE_FRAMES frames.
RUN_CAP = 4.0
FINITE_CAP = 180.0
STOPPED_COMMANDS = ("run", "record", "bench", "evaluate")

_COMMAND = re.compile(r"(?:^|&&\s*|\.venv/bin/|/bin/)(thermalcount\s+[a-z].*)")
# Synopsis lines ("count RECORDING.h5 [--model PATH|default]") and diagrams, not commands.
_SYNOPSIS = re.compile(r"\[|\.\.\.|\bFILE\b|\bRECORDING\b|\bPATH\b|\bNAME\b|\bN\b|\s{4,}\S")


def doc_commands() -> list:
    """(doc name, command words) for each command line in a code block, in order."""
    found = []
    for doc in DOCS:
        if not doc.exists():
            continue
        for block in re.findall(r"```[a-z]*\n(.*?)```", doc.read_text(), re.S):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                line = re.sub(r"^\s*\$\s*", "", line).strip()
                if line.startswith("#"):
                    continue
                match = _COMMAND.search(line)
                if not match:
                    continue
                text = re.split(r"\s+#\s", match.group(1))[0].strip()  # a trailing comment
                text = re.split(r"\s*(?:>|\||&&|;)\s*", text)[0]  # redirection, pipe, next command
                if _SYNOPSIS.search(text):
                    continue
                found.append((doc.name, shlex.split(text)[1:]))
    return found


COMMANDS = doc_commands()


def _parse(words: list) -> None:
    """Parse like the shell would run it, converting every value, without running it."""
    parent = click.Context(cli, info_name="thermalcount")
    command, rest, name = cli, list(words), "thermalcount"
    while isinstance(command, click.Group):
        name, rest = rest[0], rest[1:]
        found = command.get_command(parent, name)
        if found is None:
            raise click.UsageError(f"no such command {name!r}")
        command = found
        if isinstance(command, click.Group):
            parent = click.Context(command, info_name=name, parent=parent)
    command.make_context(name, rest, parent=parent)


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 50  # the extraction works: a regex that finds nothing tests nothing
    assert {words[0] for _, words in COMMANDS} >= {"record", "simulate", "import", "train", "export",
                                                   "inspect", "count", "run", "hue", "room", "bench",
                                                   "evaluate"}


@pytest.mark.parametrize("doc, words", COMMANDS, ids=[f"{d}:{' '.join(w)[:60]}" for d, w in COMMANDS])
def test_doc_command_parses(doc, words):
    try:
        _parse(words)
    except click.exceptions.Exit:
        pass  # --help / --version style
    except click.ClickException as error:
        pytest.fail(f"{doc}: thermalcount {' '.join(words)}: {error.format_message()}")


# -- running them ------------------------------------------------------------------------------------

_HARDWARE_OR_NETWORK = ("amg8833", "--mqtt", "hue")


def needs_hardware(words: list) -> bool:
    """A real sensor, a Hue bridge or an MQTT broker: these are parsed, not run, here."""
    if any(word in _HARDWARE_OR_NETWORK or word.startswith("--mqtt") for word in words):
        return True
    if words[0] in ("hue", "room"):
        return True
    if words[0] in ("run", "record", "doctor"):
        sensor = words[words.index("--sensor") + 1] if "--sensor" in words else "amg8833"
        return not (sensor in ("sim", "emulated") or sensor.startswith("replay:"))
    return False


def _inputs(folder: Path) -> None:
    """The files docs assume the reader has: a recording, frames to import, a second model."""
    from thermalcount.model.contract import default_model_path
    from thermalcount.sensors.sim.simulator import write_simulation

    write_simulation(folder / "doorway.h5", 3000, seed=5)
    with h5py.File(folder / "doorway.h5", "r+") as h5:  # as recorded before the axis was stored
        h5.attrs.pop("travel_axis", None)
    rng = np.random.default_rng(0)
    frames = (22 + rng.normal(0, 0.3, (200, 8, 8))).astype(np.float32)
    np.save(folder / "frames.npy", frames)
    rows = [",".join(f"{value:.2f}" for value in frame.reshape(-1)) for frame in frames]
    (folder / "log.csv").write_text("\n".join(rows) + "\n")
    (folder / "crossings.csv").write_text("frame,direction\n20,in\n120,out\n")
    for name in ("my-model.onnx", "my.onnx", "cand.onnx"):
        (folder / name).write_bytes(default_model_path().read_bytes())


def _run(words: list, folder: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "120"}
    # Paths under /tmp in a doc are the reader's scratch files: here, this test's folder.
    words = [word.replace("/tmp/", f"{folder}/") for word in words]
    process = subprocess.Popen([str(Path(sys.executable).parent / "thermalcount"), *words], cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        output, _ = process.communicate(timeout=RUN_CAP if words[0] in STOPPED_COMMANDS else FINITE_CAP)
        stopped = False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        stopped = True
    assert "Traceback" not in output and "Error:" not in output, f"thermalcount {' '.join(words)}:\n{output[-2000:]}"
    assert not stopped or words[0] in STOPPED_COMMANDS, f"thermalcount {' '.join(words)} did not end in {FINITE_CAP:g} s"
    # doctor.md shows doctor finding a fault it was given on purpose: that is exit 1 by design.
    shows_a_fault = words[0] == "doctor" and "--faults" in words and process.returncode == 1 and "FAIL" in output
    assert process.returncode == 0 or shows_a_fault or (stopped and process.returncode in (0, 1, 130, -signal.SIGINT)), (
        f"thermalcount {' '.join(words)} exited {process.returncode}:\n{output[-2000:]}")
    return output


def scaled(words: list) -> list:
    """The command with its sizes cut to what a test can wait for: at most SCALE_FRAMES frames
    and SCALE_SECONDS of sensor time, the rest as written."""
    from thermalcount.cli.options import parse_duration

    words = list(words)
    for index, word in enumerate(words[:-1]):
        value = words[index + 1]
        if word in ("--frames", "--count-frames") and value.isdigit():
            words[index + 1] = str(min(int(value), SCALE_FRAMES))
        elif word == "--duration":
            words[index + 1] = f"{min(parse_duration(value), SCALE_SECONDS):g}s"
    return words


#: Frames a scaled command works on (enough for a trained model to see people and pairs).
SCALE_FRAMES = 12000
SCALE_SECONDS = 30.0

RUNNABLE_DOCS = sorted({doc for doc, words in COMMANDS if not needs_hardware(words)})


@pytest.mark.slow
@pytest.mark.parametrize("doc", RUNNABLE_DOCS)
def test_doc_commands_run(doc, tmp_path):
    """Each doc's commands that need no hardware, in the doc's order, in one folder. An output
    that an earlier example of the same doc already wrote is removed first, as a reader trying
    that example alone would not have it (unless the example appends or overwrites)."""
    _inputs(tmp_path)
    for index, (name, words) in enumerate(COMMANDS):
        if name != doc or needs_hardware(words):
            continue
        if words[0] in ("bench", "evaluate", "run") and words in [w for _, w in COMMANDS[:index]]:
            continue  # shown by an earlier doc too, and run there (these take the longest)
        words = scaled(words)
        for flag in ("--out", "-o"):
            if flag in words and not {"--append", "--overwrite"} & set(words):
                target = tmp_path / words[words.index(flag) + 1]
                if target.is_file():
                    target.unlink()
        output = _run(words, tmp_path)
        if words[:1] == ["train"]:
            # The docs' training examples must make a model that can tell two people apart.
            assert "No two-people state" not in output, output[-2000:]
