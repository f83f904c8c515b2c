"""What runs on the Raspberry Pi with a model: the counter, the live loop, offline counting.

Never torch/sklearn. Import the parts directly (``from thermalcount.runtime.counter import
Counter``); this package imports nothing by itself so that ``thermalcount --help`` stays fast.
"""
