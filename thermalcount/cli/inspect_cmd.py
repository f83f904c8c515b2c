"""``thermalcount inspect``: show what a model (ONNX or training file) contains."""

from __future__ import annotations

import click


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def inspect(model, as_json):
    """Print a model's metadata, cluster meanings, inputs, outputs and nodes.

    Accepts an exported .onnx file, a training model file, or "default" for the
    model shipped with thermalcount.

    \b
    Example:
      thermalcount inspect model.onnx
      thermalcount inspect default --json
    """
    import json

    from thermalcount.model import contract

    path = contract.resolve_model_path(model)
    if path.suffix == ".onnx":
        from thermalcount.model.graph import graph_summary
        from thermalcount.model.loader import Model

        data = contract.read_model_bytes(path)  # read once: validated and summarised from the same bytes
        Model.from_bytes(data, path)  # the validator count and run use: inspect accepts only what they do
        summary = graph_summary(contract.parse_model(data, path))
        summary["file"] = str(path)
    else:
        from thermalcount.model.trained_file import load_model

        trained = load_model(path)
        summary = {"file": str(path), "metadata": trained.metadata(),
                   "weights": {name: list(array.shape) for name, array in sorted(trained.weights.items())}}
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    _print_summary(summary)


def _print_summary(summary: dict) -> None:
    import json

    meta = summary["metadata"]
    click.echo(f"File: {summary['file']}")
    for key, value in meta.items():
        if key in ("states", "training", "preprocessing", "extra"):
            continue
        click.echo(f"{key}: {value}")
    if "preprocessing" in meta:
        click.echo(f"preprocessing: {json.dumps(meta['preprocessing'], sort_keys=True)}")
    click.echo("states:")
    for state in meta.get("states", []):
        position = "-" if state["position"] is None else f"{state['position']:.2f}"
        line = f"  {state['cluster']}: {state['name']:<10} position {position:<5} people {state['people']}"
        if isinstance(state.get("rule"), dict):  # a frame rule's state (thermalcount/model/rules.py)
            rule = dict(state["rule"])
            shown = [f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in sorted(rule.items())
                     if k != "test"]
            line += f" (rule: {rule.get('test')}, {', '.join(shown)})"
        elif state.get("apart"):  # a cluster of two people apart: where the pair sits
            line += f" (two humps, where {state['apart']})"
        click.echo(line)
    training = meta.get("training", {})
    if isinstance(training, dict) and training:
        click.echo(f"training: {training.get('frames', '?')} frames, seed {training.get('seed')}, "
                   f"options {json.dumps(training.get('options', {}), sort_keys=True)}")
        for item in training.get("files", []):
            click.echo(f"  {item['name']}: {item['frames']} frames, sha256 {item['sha256'][:16]}...")
    if "inputs" in summary:
        for kind in ("inputs", "outputs"):
            click.echo(f"{kind}:")
            for item in summary[kind]:
                click.echo(f"  {item['name']}: {item['type']} {item['shape']}")
        click.echo(f"opset {summary['opset']}, {len(summary['nodes'])} nodes: {', '.join(summary['nodes'])}")
    else:
        click.echo("weights: " + ", ".join(f"{k} {v}" for k, v in summary["weights"].items()))
