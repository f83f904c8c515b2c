"""thermalcount: count people through a doorway with an 8x8 thermal sensor and switch the lights.

The package is split at the model file: everything that runs on the Raspberry Pi (sensors,
frame store, runtime, lights, MQTT) needs only numpy, h5py, onnxruntime and friends; training
(``thermalcount.training``) needs the ``[train]`` extra (torch, scikit-learn).
"""

__version__ = "0.1.0"
