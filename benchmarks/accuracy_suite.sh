#!/bin/sh
# The full counting-accuracy suite (docs/accuracy.md): the embedded default model, then
# models trained with --train. Prints both tables with the wall time each took and keeps
# the JSON reports (accuracy-default.json, accuracy-train.json) in the folder given as the
# first argument (default: $TMPDIR or /tmp). From the repository root:
#   benchmarks/accuracy_suite.sh [OUT_DIR]
set -e
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${1:-${TMPDIR:-/tmp}}
for mode in default train; do
    if [ "$mode" = train ]; then args="--train"; else args="--model default"; fi
    start=$(date +%s)
    "$PYTHON" -m thermalcount evaluate $args --size full --json > "$OUT/accuracy-$mode.json"
    end=$(date +%s)
    echo "== $(date -u +%Y-%m-%d) thermalcount evaluate $args --size full: $((end - start)) s wall, $OUT/accuracy-$mode.json"
    "$PYTHON" -c "import json, sys
from thermalcount.cli.evaluate_cmd import plain_table
print(plain_table(json.load(open(sys.argv[1]))))" "$OUT/accuracy-$mode.json"
done
