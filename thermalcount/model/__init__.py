"""The model file: its contract (:mod:`~thermalcount.model.contract`), loading and inference
(:mod:`~thermalcount.model.loader` and the two backends), and everything that builds or reads
the one ONNX graph (preprocessing, frame rules, graph, export, the trained-model file). Needs
numpy, never torch; import the parts directly, this package imports nothing by itself."""
