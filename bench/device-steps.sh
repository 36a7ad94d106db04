#!/usr/bin/env bash
# The device measurement of BENCHMARKS.md ("Running on a lent GPU": recorded vs eager step, PyTorch
# anchor, real training loop), in priority order, each part bounded; logs and JSON go to $OUT
# (at most 8 files come back: main.log, torch.json, step_mobilenet_<size>.json ×2, step_all.json,
# train1.log, train10.log, epochs10.csv). Runs from .devkit/ on the GPU machine:
#   bash .devkit/on-device.sh bash .devkit/steps.sh        (carry: .devkit; timeout ~560 s)
# and, as a dry run here on llvmpipe with tiny sizes:
#   SIZES=16 BATCH=4 TRAIN_ARGS="--train-limit 256 --test-limit 256" ALL_SIZE=16 bash .devkit/steps.sh
set -uo pipefail
K=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/xs-out}; mkdir -p "$OUT"
SIZES=${SIZES:-"32 224"}; BATCH=${BATCH:-32}; ALL_SIZE=${ALL_SIZE:-224}
TRAIN_ARGS=${TRAIN_ARGS:-}; EPOCHS10=${EPOCHS10:-10}
T0=$(date +%s); el() { echo "=== [t+$(( $(date +%s) - T0 ))s] $*"; }
left() { echo $(( ${BUDGET_S:-540} - ($(date +%s) - T0) )); }
W=/tmp/xsw; rm -rf "$W/runs1" "$W/runs10"; mkdir -p "$W/fm"; cd "$W"
for f in "$K"/fm/*.xz; do [ -f "fm/$(basename "$f" .xz)" ] || xz -dc "$f" > "fm/$(basename "$f" .xz)"; done
el "commit $(cat "$K/commit" 2>/dev/null); $(nproc) cpus"
# 1. Decisive: MobileNetV2 step, recorded vs eager, and PyTorch eager on the same GPU.
el doctor; timeout 45 deno run -A "$K/doctor.js" 2>&1 | tail -8 | tee -a "$OUT/main.log"
if [ -f "$K/pytorch_anchor.py" ] && python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  el torch; PYTHONUNBUFFERED=1 timeout 100 python3 "$K/pytorch_anchor.py" --sizes "${SIZES// /,}" --steps 30 \
    --json "$OUT/torch.json" 2>&1 | tee -a "$OUT/main.log" | tail -6
fi
for s in $SIZES; do
  el "bench:step mobilenet $s px, recorded vs eager"
  timeout 90 deno run -A "$K/bench_step.js" --model mobilenet --image-size "$s" --batch-size "$BATCH" --steps 10 \
    --json "$OUT/step_mobilenet_$s.json" 2>&1 | tee -a "$OUT/main.log" | tail -4
done
# 2. The real training loop on Fashion-MNIST at 32 px (img/s from the log and epochs.csv).
el "train mobilenet fashion-mnist 32 px, 1 epoch"
timeout $(( $(left) > 200 ? 200 : $(left) )) deno run -A "$K/train.js" --model mobilenet --dataset fashion-mnist \
  --data "$W/fm" --image-size 32 --epochs 1 --out "$W/runs1" --log-every 500 $TRAIN_ARGS 2>&1 | tee "$OUT/train1.log" | tail -5
# 3. All 11 models at 224 px, recorded vs eager.
el "bench:step --all $ALL_SIZE px"
timeout $(( $(left) > 240 ? 240 : $(left) )) deno run -A "$K/bench_step.js" --all --image-size "$ALL_SIZE" \
  --batch-size "$BATCH" --steps 3 --json "$OUT/step_all.json" 2>&1 | tee -a "$OUT/main.log" | tail -26
# 4. If time remains: 10 epochs of Fashion-MNIST (goal >= 93 %).
if [ "$(left)" -gt 60 ]; then
  el "train mobilenet fashion-mnist 32 px, $EPOCHS10 epochs ($(left) s left)"
  timeout "$(left)" deno run -A "$K/train.js" --model mobilenet --dataset fashion-mnist --data "$W/fm" \
    --image-size 32 --epochs "$EPOCHS10" --out "$W/runs10" --log-every 1000 $TRAIN_ARGS 2>&1 | tee "$OUT/train10.log" | tail -12
  cp "$W"/runs10/*/epochs.csv "$OUT/epochs10.csv" 2>/dev/null
fi
el done
