"""The training report printed in the terminal (rich)."""

from __future__ import annotations

import math

from thermalcount.model.rules import apart_where


def print_report(result, console, out=None) -> None:
    from rich.table import Table

    model, training = result.model, result.model.training
    last = result.history[-1]
    console.print(f"[bold]Trained[/bold] on {training['frames']:,} frames from {len(training['files'])} file(s) "
                  f"in {result.seconds:.1f} s ({result.frames_seen:,} frames through {len(result.history)} epochs)")
    loss = f"train loss {last['train_loss']:.4f}"
    if "val_loss" in last:
        loss += f", validation loss {last['val_loss']:.4f}"
    console.print(f"Reconstruction: {loss}")
    evidence = result.travel_evidence
    if evidence.get("forced"):
        axis_text = "forced by --travel-axis"
    elif "blob_variance_rows" in evidence:
        axis_text = (f"found from the data: blob position variance rows {evidence['blob_variance_rows']:.2f}, "
                     f"columns {evidence['blob_variance_columns']:.2f}")
    else:
        axis_text = evidence.get("reason", "")
    console.print(f"Travel axis: [bold]{model.travel_axis}[/bold] ({axis_text})")
    console.print(f"Preprocessing: {model.preprocessing.describe()}")

    table = Table(title="Clusters", show_lines=False)
    for column in ("cluster", "meaning", "position", "people", "frames", "share"):
        table.add_column(column, justify="right" if column not in ("meaning",) else "left")
    total = max(1, sum(result.cluster_sizes))
    for state, size in zip(model.states, result.cluster_sizes):
        position = "-" if state["position"] is None else f"{state['position']:.2f}"
        table.add_row(str(state["cluster"]), state["name"], position, str(state["people"]),
                      f"{size:,}", f"{100 * size / total:.1f} %")
    rule_frames = training.get("rule_frames") or {}
    for state in model.states:
        if "rule" in state:  # the frame rules' states: their frames also count in their nearest cluster
            position = "-" if state["position"] is None else f"{state['position']:.2f}"
            frames = rule_frames.get(state["name"], 0)
            table.add_row(str(state["cluster"]), f"{state['name']} (rule: {state['rule']['test']})", position,
                          str(state["people"]), f"{frames:,}", f"{100 * frames / total:.1f} %")
    console.print(table)
    score = result.silhouette
    quality = ("well separated" if score >= 0.5 else "overlapping: consider more data or --clusters"
               if score >= 0.25 else "poorly separated") if not math.isnan(score) else "n/a"
    console.print(f"Separation (silhouette on a sample): {score:.3f} ({quality})")
    if not any(apart_where(state) for state in model.states):
        # Two people are two blobs apart (docs/counting.md); without such a state the counter
        # reads every pair as one person.
        console.print("[yellow]No two-people state:[/yellow] two people in view together will be counted "
                      "as one. Keep the frame rules (no --no-frame-rules) and a noise floor (no --no-clip).")
    if out is not None:
        console.print(f"Model written to [bold]{out}[/bold]; next: thermalcount export {out} --out model.onnx")
    for path in result.plot_files:
        console.print(f"Plot: {path}")
