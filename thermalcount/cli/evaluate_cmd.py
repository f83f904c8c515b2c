"""``thermalcount evaluate``: the counting-accuracy suite (held-out simulated doorways), scored."""

from __future__ import annotations

import json
import sys

import click


@click.command()
@click.option("--model", "model_path", default=None, metavar="PATH|default",
              help="ONNX model to score [default: the embedded model]. Not with --train.")
@click.option("--train", "do_train", is_flag=True,
              help="Simulate a training split, train and export models with the standard pipeline, "
                   "then score them (needs the [train] extra).")
@click.option("--size", type=click.Choice(["ci", "full"]), default="ci", show_default=True,
              help="ci: 119-168 true events per family (seconds; ~1 min with --train); full: 483-669 per family.")
@click.option("--family", "families", multiple=True, metavar="NAME",
              help="Only this family (repeat for more) [default: all]; --list-families names them.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--keep", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Keep the recordings (and trained models) in DIR, which must be new or empty.")
@click.option("--list-families", is_flag=True, help="Print the families and exit.")
def evaluate(model_path, do_train, size, families, as_json, keep, list_families):
    """Score people counting on held-out simulated doorways with ground truth.

    Every family (slow/normal/fast walkers, following, passing, lingering, turning back,
    hats, warm room, drift, warm object, other mounting, 1 FPS, and the separate "room
    5 °C warmer" check) is simulated in rooms and with people no training used, written
    through the frame store and counted exactly as 'thermalcount count' does. Prints
    precision, recall and F1 by direction, the net count error, the totals and the weakest
    family. Progress goes to stderr. See docs/accuracy.md.

    \b
    Example:
      thermalcount evaluate
      thermalcount evaluate --model my-model.onnx --family warm_room --family drift
      thermalcount evaluate --train --size full --json > accuracy.json
    """
    from thermalcount.evaluation import suite as evaluation

    if list_families:
        for item in evaluation.FAMILIES:
            click.echo(f"{item.name:<15} {item.description}")
        return
    _check_options(model_path, do_train, keep)
    chosen = evaluation.select_families(families)
    progress = _progress_printer()
    keep_dir = _prepare_keep(keep)
    if do_train:
        report = _train_and_score(chosen, families, size, keep_dir, progress)
    else:
        models = evaluation.given_model(model_path)
        # families=None means "all": run_suite then skips the checks this model cannot take.
        report = evaluation.run_suite(models, size=size, families=list(families) or None, keep=keep_dir,
                                      progress=progress)
    if as_json:
        click.echo(json.dumps(report))
    elif sys.stdout.isatty():
        _print_rich(report)
    else:
        _print_plain(report)


def _check_options(model_path, do_train, keep) -> None:
    from thermalcount.errors import UsageError

    if do_train and model_path is not None:
        raise UsageError("--model and --train exclude each other: --train scores the models it trains")


def _prepare_keep(keep):
    from pathlib import Path

    from thermalcount.errors import OutputPathError

    if keep is None:
        return None
    folder = Path(keep)
    if folder.exists():
        if any(folder.iterdir()):
            raise OutputPathError(f"--keep folder {folder} is not empty; give a new or empty folder "
                                  "(nothing in it was touched)")
        return folder
    if not folder.parent.is_dir():
        raise OutputPathError(f"cannot create --keep folder {folder}: {folder.parent} does not exist")
    folder.mkdir()
    return folder


def _train_and_score(chosen, families, size, keep_dir, progress) -> dict:
    import tempfile
    from pathlib import Path

    from thermalcount.evaluation import suite as evaluation
    from thermalcount.evaluation.training import models_needed, train_models

    with tempfile.TemporaryDirectory(prefix="thermalcount-eval-train-") as scratch:
        folder = keep_dir if keep_dir is not None else Path(scratch)
        models = train_models(folder, names=models_needed(chosen), progress=progress)
        return evaluation.run_suite(models, size=size, families=list(families) or None, keep=keep_dir,
                                    progress=progress)


def _progress_printer():
    import time

    began = time.perf_counter()

    def say(text: str) -> None:
        click.echo(f"[{time.perf_counter() - began:6.1f} s] {text}", err=True)

    return say


# ----------------------------------------------------------------------------------- output

_COLUMNS = ("family", "events", "P in", "R in", "F1 in", "P out", "R out", "F1 out", "F1", "missed", "extra",
            "wrong dir", "net err")
#: Columns kept on a terminal narrower than WIDE_TERMINAL (precision and recall go), with
#: shorter headings so that the table fits 80 columns.
_COMPACT = {"family": "family", "events": "events", "F1 in": "F1 in", "F1 out": "F1 out", "F1": "F1",
            "missed": "miss", "extra": "extra", "wrong dir": "wrong", "net err": "net"}
WIDE_TERMINAL = 120


def _rows(report: dict) -> list:
    rows = [_row(item["name"], item) for item in report["families"]]
    if report["totals"] is not None:
        rows.append(_row("TOTAL (suite)", report["totals"]))
    return rows


def _row(name: str, scores: dict) -> list:
    return [name, str(scores["true_events"]),
            *(f"{scores[d][k]:.3f}" for d in ("in", "out") for k in ("precision", "recall", "f1")),
            f"{scores['overall']['f1']:.3f}", *(str(scores["errors"][k]) for k in ("missed", "extra", "wrong_direction")),
            str(scores["net_error_abs"])]


def _model_lines(report: dict) -> list:
    """Which model counted which family, and any frames turned for it."""
    by_model: dict = {}
    for item in report["families"]:
        name = item["name"] + (f" (frames turned {item['orientation']})" if item["orientation"] else "")
        by_model.setdefault(item["model"], []).append(name)
    if len(by_model) == 1 and not any(item["orientation"] for item in report["families"]):
        return [f"model: {next(iter(by_model))}"]
    return [f"model {model}: {', '.join(names)}" for model, names in by_model.items()]


def _summary_lines(report: dict) -> list:
    lines = []
    weakest = report["weakest"]
    if weakest is not None:
        lines.append(f"weakest family: {weakest['name']} (F1 {weakest['f1']:.3f})")
    verdict, bar = report["verdict"], report["bar"]
    parts = []
    for key, label in (("overall_f1", "overall F1"), ("hardest_family_f1", "weakest family F1"),
                       ("room_plus5_f1", "room +5 °C F1")):
        state = {True: "met", False: "NOT met", None: "not measured"}[verdict[key]]
        parts.append(f"{label} >= {bar[key]}: {state}")
    lines.append("bar: " + "; ".join(parts))
    lines += [f"skipped {item['name']}: {item['reason']}" for item in report.get("skipped", [])]
    lines += _model_lines(report)
    lines.append(f"size {report['size']}, {report['seconds']:.1f} s. F1: counted events within "
                 f"{report['tolerance_s']:g} s of a true one in the same direction; wrong dir: counted at the "
                 "right time the wrong way; net err: sum over recordings of |counted (in - out) - true (in - out)|")
    return lines


def plain_table(report: dict) -> str:
    """The report as the plain-text table ``evaluate`` prints in a pipe (also used by
    benchmarks/accuracy_suite.sh to print saved JSON)."""
    rows = [list(_COLUMNS)] + _rows(report)
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(width) if i == 0 else cell.rjust(width)
                       for i, (cell, width) in enumerate(zip(row, widths))).rstrip() for row in rows]
    return "\n".join(lines + _summary_lines(report))


def _print_plain(report: dict) -> None:
    click.echo(plain_table(report))


def _print_rich(report: dict) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    wide = console.width >= WIDE_TERMINAL
    headings = {c: c for c in _COLUMNS} if wide else _COMPACT
    keep = [_COLUMNS.index(c) for c in headings]
    table = Table(title=f"Counting accuracy, held-out suite ({report['size']} size)", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for column, heading in headings.items():
        table.add_column(heading, justify="left" if column == "family" else "right", no_wrap=True)
    weakest = (report["weakest"] or {}).get("name")
    rows = _rows(report)
    has_totals = report["totals"] is not None
    for index, row in enumerate(rows):
        is_total = has_totals and index == len(rows) - 1
        style = "bold" if is_total else ("red" if row[0] == weakest else None)
        table.add_row(*(row[i] for i in keep), style=style, end_section=has_totals and index == len(rows) - 2)
    console.print(table)
    if not wide:
        console.print(f"(precision and recall by direction: a terminal {WIDE_TERMINAL} columns wide, or --json)",
                      highlight=False)
    for line in _summary_lines(report):
        console.print(line, highlight=False)
