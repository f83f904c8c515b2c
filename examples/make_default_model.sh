#!/bin/sh
# Re-create the default model shipped in thermalcount/data/default_model.onnx.
#
# It is trained on simulated doorways only (scenario families single, busy, following,
# passing, lingering, turnback, low_contrast, warm_room, drift, warm_object; 14 rooms, ambients 18-28 °C;
# 10 and 1 FPS), with a fixed seed: running this again gives the same file apart from the
# "created" timestamp in its metadata. tests/test_default_model.py checks that the shipped file
# still matches what the current code produces. Needs the [train] extra.
set -e
cd "$(dirname "$0")/.."
python -m thermalcount.training.default --out thermalcount/data/default_model.onnx "$@"
thermalcount inspect thermalcount/data/default_model.onnx
