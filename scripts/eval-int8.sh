#!/usr/bin/env bash
# INT8 (Q/DQ) accuracy gate (b): the same evaluations as scripts/eval-all.sh with the INT8 vision encoder,
# calibrated on each SKU's golden images only. Compare with runs/eval/<name>/metrics.json (FP32).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
EDGE=${EDGE:-.venv/bin/edge}
if [ ! -d "$DATA" ]; then echo "no evaluation data at $DATA: nothing to do"; exit 0; fi
mkdir -p runs/eval-int8 runs/calib/deeppcb
# DeepPCB golden images are the *_temp.jpg files next to the test images: link only those.
find "$DATA/deeppcb" -name '*_temp.jpg' -print0 | while IFS= read -r -d '' f; do
  ln -sf "$(realpath "$f")" runs/calib/deeppcb/
done
# An INT8 export its gate refuses is a result too (that station runs FP32): report it and go on.
run() {
  local name=$1; shift; echo "== $name: edge eval $*"
  "$EDGE" eval "$@" --precision int8 --out "runs/eval-int8/$name" > "runs/eval-int8/$name.log" 2>&1 \
    || echo "   $name: no INT8 result: $(grep -E 'Error' "runs/eval-int8/$name.log" | tail -1)"
}
run deeppcb-line "$DATA/deeppcb" --perturb line --calib runs/calib/deeppcb --artifacts runs/artifacts/int8-deeppcb
run bottle       "$DATA/mvtec/bottle" --calib "$DATA/mvtec/bottle/train/good" --artifacts runs/artifacts/int8-bottle
run metal_plate-line "$DATA/mvtec/metal_plate" --perturb line --calib "$DATA/mvtec/metal_plate/train/good" --artifacts runs/artifacts/int8-metal_plate
run fryum        "$DATA/mvtec/fryum" --calib "$DATA/mvtec/fryum/train/good" --artifacts runs/artifacts/int8-fryum
run magnetic_tile-line "$DATA/mvtec/magnetic_tile" --perturb line --calib "$DATA/mvtec/magnetic_tile/train/good" --artifacts runs/artifacts/int8-magnetic_tile
.venv/bin/python -m edge.eval.table runs/eval-int8 | tee runs/eval-int8/table.md
