#!/usr/bin/env bash
# Reproduces every accuracy figure in the README (writes runs/eval/<name>/metrics.json and report.png).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
EDGE=${EDGE:-.venv/bin/edge}
if [ ! -d "$DATA" ]; then echo "no evaluation data at $DATA: nothing to do"; exit 0; fi
run() { local name=$1; shift; echo "== $name: edge eval $*"; "$EDGE" eval "$@" --out "runs/eval/$name" > "runs/eval/$name.log" 2>&1; }
mkdir -p runs/eval
run deeppcb            "$DATA/deeppcb"
run deeppcb-line       "$DATA/deeppcb" --perturb line
run bottle-k1          "$DATA/mvtec/bottle" --k 1
run bottle             "$DATA/mvtec/bottle"
run bottle-line        "$DATA/mvtec/bottle" --perturb line
run metal_plate        "$DATA/mvtec/metal_plate"
run metal_plate-line   "$DATA/mvtec/metal_plate" --perturb line
run metal_plate-k1     "$DATA/mvtec/metal_plate" --k 1
.venv/bin/python -m edge.eval.table runs/eval | tee runs/eval/table.md
