"""What `thermalcount run` imports before it counts (start-up, issue 17).

Start-up is mostly imports, so these pin which packages the run path may load: behaviour in
a fresh interpreter, never a time. `onnx` (with ml_dtypes) was most of a second; h5py, rich,
phue and paho are needed only for a replayed recording, the dashboard, Hue lights and MQTT.
"""

from __future__ import annotations

import pytest

from tests.conftest import modules_loaded_by

# Packages a plain live run (simulated sensor, console lights, log lines) never needs.
NOT_ON_THE_RUN_PATH = ("onnx", "ml_dtypes", "h5py", "rich", "phue", "paho", "torch", "sklearn")


def _cli(*args: str) -> str:
    return ("from thermalcount.cli import main\n"
            f"try:\n    main({list(args)!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n")


@pytest.mark.parametrize("backend", ["onnxruntime", "numpy"])
def test_a_live_run_loads_only_what_it_uses(backend):
    code = _cli("run", "--sensor", "sim", "--duration", "2s", "--speed", "max", "--no-dashboard",
                "--lights", "console", "--backend", backend)
    assert modules_loaded_by(code, roots=NOT_ON_THE_RUN_PATH) == []
    # The probe sees a package that is imported (here the dashboard's rich, once asked for).
    assert modules_loaded_by(code + "import thermalcount.app.dashboard, rich.live\n", roots=("rich",)) != []


def test_the_numpy_backend_loads_without_onnxruntime_or_onnx():
    """A Pi Zero has no onnxruntime wheel: the numpy backend's load must not reach for it."""
    code = ("from thermalcount.model.loader import Model\n"
            "import numpy as np\n"
            "m = Model.load('default', backend='numpy')\n"
            "m.infer_one(np.zeros((8, 8), np.float32)); m.infer_states(np.zeros((5, 8, 8), np.float32))\n")
    assert modules_loaded_by(code, roots=("onnxruntime", "onnx", "ml_dtypes")) == []


def test_run_help_loads_no_numpy_nor_model_code():
    code = _cli("run", "--help")
    assert modules_loaded_by(code, roots=("numpy", "onnxruntime", "google", "onnx", "h5py", "rich")) == []
