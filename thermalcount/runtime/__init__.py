"""What runs on the Raspberry Pi: the model, the counter, the live loop. Never torch/sklearn.

Import the parts directly (``from thermalcount.model.loader import Model``); this package
imports nothing heavy by itself so that ``thermalcount --help`` stays fast.
"""
