#!/usr/bin/env bash
# The GPU checks, as one script for a device machine (../shared/tools/gpu/README.md explains
# how onnxruntime-gpu and PyAV get there; onnx is already on that machine): the CUDA tests,
# the model stage's engines (scripts/bench/model_fps.py), the benchmark against its anchors at
# 640x360 and 1280x720 with a model-only and an end-to-end row per tier at 640x360 (what the
# GPU default rule needs: README "Which tier by default, per device"), the 640x360 benchmark
# at batch 4, and float16's quality under the shared protocol for each x3 tier. Everything lands in $OUT (or ./gpu_out) as it is produced, so a run cut
# short still reports what it measured.
#   ../shared/tools/gpu/prepare; cp -r ../shared/data/eval .data/   # here, once
#   source .gpu/p1/install-on-device && bash scripts/device/gpu_check.sh     # there (carry .data)
set -u
out=${OUT:-gpu_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# The scripts import vsr (and vsr.lab) from this checkout, installed or not.
export PYTHONPATH="$(cd "$(dirname "$0")/../.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
log="$out/log.txt"
{ date; nvidia-smi -L; nproc; python3 -c "import onnxruntime as o, av, onnx; print('onnxruntime', o.__version__, o.get_available_providers(), 'av', av.__version__, 'onnx', onnx.__version__)"; } >> "$log" 2>&1
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_model.py -k "cuda or bound or batch_auto" >> "$log" 2>&1
tail -3 "$log"
timeout 150 python3 scripts/bench/model_fps.py --device cuda --sizes 640x360 1280x720 --seconds 2 \
  --variants all --also-batches 1,32 > "$out/model_fps.md" 2>&1
cat "$out/model_fps.md"
timeout 300 python3 scripts/bench/bench.py --device cuda --frames 600 --batch auto --tiers all \
  --json "$out/bench.json" > "$out/bench.md" 2>&1
tail -34 "$out/bench.md"
timeout 100 python3 scripts/bench/bench.py --device cuda --size 1280x720 --frames 150 --batch auto \
  --anchors a > "$out/bench_720.md" 2>&1
tail -16 "$out/bench_720.md"
timeout 60 python3 scripts/bench/bench.py --device cuda --frames 600 --batch 4 --anchors none \
  > "$out/bench_b4.md" 2>&1
tail -14 "$out/bench_b4.md"
if [ -d .data/eval ]; then
  timeout 120 python3 scripts/models/eval.py --sets .data/eval/Set5 .data/eval/Set14 --scales 3 --device cuda \
    --model models/fast_x3.onnx models/balanced_x3.onnx models/quality_x3.onnx --precision fp32 fp16 \
    --no-bicubic > "$out/eval.md" 2>&1
  cat "$out/eval.md"
fi
date >> "$log"
