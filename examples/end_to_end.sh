#!/usr/bin/env bash
# The whole lifecycle on simulated data: simulate -> train -> export -> count.
# Needs the [train] extra: pip install 'thermalcount[train]'
#   examples/end_to_end.sh [WORKDIR] [TRAIN_FRAMES]
set -euo pipefail
WORK="${1:-thermalcount-demo}"
FRAMES="${2:-60000}"
mkdir -p "$WORK"

# Training data: mixed scenarios in one room; test data: a different seed (another room).
thermalcount simulate --scenario mixed --seed 1 --frames "$FRAMES" --out "$WORK/train.h5" --overwrite
thermalcount simulate --scenario mixed --seed 2 --frames "$((FRAMES / 2))" --out "$WORK/test.h5" --overwrite

thermalcount train "$WORK/train.h5" --out "$WORK/model.npz" --seed 0 --overwrite
thermalcount export "$WORK/model.npz" --out "$WORK/model.onnx" --overwrite
thermalcount inspect "$WORK/model.onnx"

# Count the held-out recording; the JSON has precision/recall/F1 against its ground truth.
thermalcount count "$WORK/test.h5" --model "$WORK/model.onnx" --json > "$WORK/count.json"
python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['score']; print('F1 overall:', s['overall']['f1'])" "$WORK/count.json"
