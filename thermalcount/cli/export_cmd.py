"""``thermalcount export``: model file -> one fused ONNX graph (no torch needed)."""

from __future__ import annotations

import click


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="ONNX file to write.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def export(model, out, overwrite):
    """Export a trained model as one ONNX graph: °C frames in, state out.

    The graph holds the preprocessing, the encoder and the nearest-centroid step; the
    runtime needs nothing but this file.

    \b
    Example:
      thermalcount export model.npz --out model.onnx
      thermalcount inspect model.onnx
    """
    from thermalcount.model.export import export_model

    graph = export_model(model, out, overwrite=overwrite)
    ops = [node.op_type for node in graph.graph.node]
    click.echo(f"Wrote {out}: {len(ops)} nodes ({', '.join(ops)})")
