#!/usr/bin/env bash
# The model family's trainings on one borrowed GPU, all at once, in a fixed number of minutes.
#
#   scripts/models/train_family_gpu.sh OUT_DIR [MINUTES]     # default 8 minutes
#
# Why this exists beside train_family.sh: the device machine is lent for ~10 minutes per
# command, so every run starts together and follows the clock (`train.py --max-minutes`:
# warm-up, cosine decay and the MSE phase are fractions of the time left; the steps reached
# are recorded in each model's metadata). The small fast-tier runs are bound by kernel
# launches, not by the GPU, so they cost the quality runs little.
# Data comes from .data/train and .data/eval (copies of ../shared/data, which does not travel).
# Writes OUT_DIR/<run>.onnx, OUT_DIR/train.log (every run's lines, prefixed) and
# OUT_DIR/speed.json (model-stage fps of the x3 tiers, scripts/bench/gpu_model_speed.py).
# train.py imports vsr.lab (the shared protocol and networks: numpy, OpenCV, Pillow, torch,
# onnx); vsr's __init__ loads its stages lazily, so PyAV and onnxruntime-gpu need not be there
# (the device image has neither). The checkout itself goes on PYTHONPATH below.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT_DIR=$1
MINUTES=${2:-8}
PY=${PY:-python3}
mkdir -p "$OUT_DIR" /tmp/vsr_ckpt
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # vsr from this checkout, installed or not

common() { echo --scale "$1" --arch ecb --holdout 4 --device "${DEVICE:-cuda}" --threads 2 --data .data/train \
    --eval .data/eval --max-minutes "$MINUTES" --steps 1000000 --log-every 1000 --no-resume; }
quality="--tier quality --channels 64 --blocks 12 --batch 64 --patch 32 --lr 5e-4 --precision bf16 --checkpoint-every 2000"
fast="--tier fast --channels 16 --blocks 5 --batch 64 --patch 24 --lr 1e-3 --checkpoint-every 5000"
fast_x3="${fast/--blocks 5/--blocks 3}"  # x3's fast model is M3C16 (train_family.sh says why)

declare -A RUNS=(
    [x3_quality]="$(common 3) $quality"
    [x2_quality]="$(common 2) $quality"
    [x4_quality]="$(common 4) $quality"
    [x2_fast]="$(common 2) $fast"
    [x4_fast]="$(common 4) $fast"
    [x3_fast]="$(common 3) $fast_x3"
    [x3_fast_video]="$(common 3) $fast_x3 --degrade video"
    [x3_balanced]="$(common 3) --tier balanced --channels 32 --blocks 6 --batch 64 --patch 24 --lr 1e-3 --checkpoint-every 5000"
)
nvidia-smi -L || true
for name in "${!RUNS[@]}"; do
    # shellcheck disable=SC2086  # a word list by design
    ( $PY scripts/models/train.py ${RUNS[$name]} --out "$OUT_DIR/$name.onnx" \
          --checkpoint "/tmp/vsr_ckpt/$name.ckpt" 2>&1 | sed -u "s/^/[$name] /" >> "$OUT_DIR/train.log" ) &
done
wait
nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv || true
$PY scripts/bench/gpu_model_speed.py models/espcn_x3.onnx models/fast_x3.onnx "$OUT_DIR/x3_quality.onnx" \
    --size 640x360 --batch 8 --seconds 3 --json "$OUT_DIR/speed.json" 2>&1 | tee -a "$OUT_DIR/train.log"
ls -la "$OUT_DIR"
