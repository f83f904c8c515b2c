#!/bin/sh
# The full counting-accuracy suite (docs/accuracy.md): the embedded default model, then
# models trained with --train. Writes accuracy-default.json and accuracy-train.json in the
# current folder and prints both tables with the time each took. From the repository root:
#   benchmarks/accuracy_suite.sh
set -e
PYTHON=${PYTHON:-.venv/bin/python}
for mode in default train; do
    if [ "$mode" = train ]; then args="--train"; else args="--model default"; fi
    start=$(date +%s)
    "$PYTHON" -m thermalcount evaluate $args --size full --json > "accuracy-$mode.json"
    end=$(date +%s)
    echo "== $(date -u +%Y-%m-%d) thermalcount evaluate $args --size full: $((end - start)) s wall"
    "$PYTHON" -c "import json, sys
from thermalcount.cli.evaluate_cmd import plain_table
print(plain_table(json.load(open(sys.argv[1]))))" "accuracy-$mode.json"
done
