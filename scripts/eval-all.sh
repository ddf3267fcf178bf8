#!/usr/bin/env bash
# Reproduces every accuracy figure in the README (writes runs/eval/<name>/metrics.json and report.png).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
EDGE=${EDGE:-.venv/bin/edge}
if [ ! -d "$DATA" ]; then echo "no evaluation data at $DATA: nothing to do"; exit 0; fi
# A failing run is reported and the others go on; the script exits non-zero at the end.
status=0
run() { local name=$1; shift; echo "== $name: edge eval $*"; "$EDGE" eval "$@" --out "runs/eval/$name" > "runs/eval/$name.log" 2>&1 || { echo "   FAILED (runs/eval/$name.log)"; status=1; }; }
mkdir -p runs/eval
run deeppcb            "$DATA/deeppcb"
run deeppcb-line       "$DATA/deeppcb" --perturb line
run bottle-k1          "$DATA/mvtec/bottle" --k 1
run bottle             "$DATA/mvtec/bottle"
run bottle-line        "$DATA/mvtec/bottle" --perturb line
run metal_plate        "$DATA/mvtec/metal_plate"
run metal_plate-line   "$DATA/mvtec/metal_plate" --perturb line
run metal_plate-k1     "$DATA/mvtec/metal_plate" --k 1
run fryum              "$DATA/mvtec/fryum"
run fryum-line         "$DATA/mvtec/fryum" --perturb line
run magnetic_tile      "$DATA/mvtec/magnetic_tile"
run magnetic_tile-line "$DATA/mvtec/magnetic_tile" --perturb line
# The yardstick, side by side on the same images (clean and line-perturbed).
PEER=../shared/tools/patch_knn_peer.py
if [ -f "$PEER" ]; then
  echo "== yardstick: $PEER $DATA/mvtec --perturb"
  .venv/bin/python "$PEER" "$DATA/mvtec" --perturb --json runs/eval/yardstick.json > runs/eval/yardstick.log 2>&1 || true
fi
.venv/bin/python -m edge.eval.table runs/eval | tee runs/eval/table.md
exit $status
