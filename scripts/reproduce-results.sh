#!/usr/bin/env bash
# Reproduces docs/RESULTS.md's table and the demo's two shipped models from the 5,030 real COCO
# photos of ../shared/data/coco2014-mini/train, on the CPU backend:
#   1. extract frozen EfficientNet-Lite0 features at 224 px once (trainer extract);
#   2. train linear heads (Full, AN, AN-LS, WAN, EPR, ROLE) and Query2Label heads (Full with ASL,
#      WAN, ROLE, AN, EPR) on them, seeds 1-3 (each seed draws its own validation split and single
#      positives);
#   3. print the table (trainer report) and export the seed-1 Query2Label models into www/models.
# Usage: scripts/reproduce-results.sh [runs-dir]   (environment: DATA, TRAINER, BACKEND, SEEDS)
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-../shared/data/coco2014-mini/train}
RUNS=${1:-runs/results}
BACKEND=${BACKEND:-flex}
SEEDS=${SEEDS:-1 2 3}
TRAINER=${TRAINER:-cargo run --release -q -p querylabel-trainer --}
CACHE=$RUNS/features-lite0-224.safetensors
mkdir -p "$RUNS"
LOG=$RUNS/log.txt
echo "started $(date -u +%FT%TZ) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" >>"$LOG"

timed() { # name, command...: runs the command unless its run finished, logging the time
  local name=$1; shift
  if [ -f "$RUNS/$name/done" ]; then return; fi
  local start=$SECONDS
  "$@" --out "$RUNS/$name" --resume
  touch "$RUNS/$name/done"
  echo "$name: $((SECONDS - start)) s" >>"$LOG"
}

[ -f "$CACHE" ] || {
  start=$SECONDS
  $TRAINER extract --data "$DATA" --image-size 224 --backend "$BACKEND" --out "$CACHE"
  echo "extract: $((SECONDS - start)) s" >>"$LOG"
}

# Query2Label head on the 7x7 feature maps: hidden 256, 4 heads, one decoder layer, no encoder
# layer (a lighter head than the paper's, sized for 4,000 training photos and a CPU).
q2l() { # seed, labels, loss
  timed "q2l-$3-seed$1" $TRAINER train --features "$CACHE" --backend "$BACKEND" --seed "$1" \
    --head q2l --labels "$2" --loss "$3" --q2l-encoder-layers 0 --q2l-decoder-layers 1 \
    --q2l-feedforward-dim 512 --epochs 5 --lr 5e-4 --batch-size 64 --ema-decay 0
}
# Linear head on the pooled features, as in the MLSPL paper's linear experiments.
linear() { # seed, labels, loss
  timed "linear-$3-seed$1" $TRAINER train --features "$CACHE" --backend "$BACKEND" --seed "$1" \
    --head linear --labels "$2" --loss "$3" --epochs 20 --lr 3e-3 --batch-size 64 --ema-decay 0
}

# Cheapest first, so that an interrupted reproduction still has whole rows.
for seed in $SEEDS; do
  linear "$seed" full bce
  for loss in an an-ls wan epr role; do linear "$seed" single-positive "$loss"; done
done
for seed in $SEEDS; do
  q2l "$seed" full asl
  for loss in wan role; do q2l "$seed" single-positive "$loss"; done
done
for seed in $SEEDS; do
  for loss in an epr; do q2l "$seed" single-positive "$loss"; done
done

$TRAINER report --plots docs "$RUNS"/linear-*-seed* "$RUNS"/q2l-*-seed* | tee "$RUNS/table.md"

# The demo's models: the seed-1 Query2Label heads, with all labels (ASL) and with one positive
# each (WAN, the best single-positive loss for this head; see docs/RESULTS.md), as one bundle
# over their shared frozen backbone (heads "full" and "wan").
$TRAINER export --model "$RUNS/q2l-asl-seed1" --model "$RUNS/q2l-wan-seed1" --out www/models
echo "finished $(date -u +%FT%TZ)" >>"$LOG"
