#!/usr/bin/env bash
# The GPU checks, as one script for a device machine, in the order of what they are worth, so a
# run cut short by the lease still reports the most important ones (everything lands in $OUT, or
# ./gpu_out, as it is produced):
#   1. the CUDA tests (tests/test_model.py: provider, bound engine, batch auto, a clip end to end);
#   2. the GPU default rule's measurement (README "Which tier by default, per device"): the
#      640x360 -> x3 benchmark with a model-only and an end-to-end row per tier, anchor (a);
#   3. float16's quality under the shared protocol for each x3 tier (needs .data/eval);
#   4. the model stage's engines at 640x360 (scripts/bench/model_fps.py);
#   5. the x4 tiers' rows (the quality tier's dearest model).
# Getting onnxruntime-gpu and PyAV there (the device image has CUDA PyTorch, onnx, numpy and
# OpenCV but neither of those two, and its Python is 3.12): scripts/device/stage_wheels.sh here
# makes .gpu/p1..p5, each carried in its own call; the last call unpacks them into /tmp/site and
# puts /tmp/site on PYTHONPATH before running this script (stage_wheels.sh shows the command).
# Name steps to run only those: `bash scripts/device/gpu_check.sh tests bench bench_x4`.
set -u
out=${OUT:-gpu_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# The scripts import vsr (and vsr.lab) from this checkout, installed or not.
export PYTHONPATH="$(cd "$(dirname "$0")/../.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
# onnxruntime-gpu dlopens cuDNN/cuBLAS by soname: the image has them as NVIDIA's pip packages.
nvlibs=$(python3 -c "import glob,os,site; print(':'.join(d for p in site.getsitepackages() for d in glob.glob(os.path.join(p,'nvidia','*','lib'))))")
export LD_LIBRARY_PATH="$nvlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
log="$out/log.txt"
{ date; nvidia-smi -L; nproc; grep -m1 'model name' /proc/cpuinfo
  python3 -c "import onnxruntime as o, av, onnx; print('onnxruntime', o.__version__, o.get_available_providers(), 'av', av.__version__, 'onnx', onnx.__version__)"; } >> "$log" 2>&1
cat "$log"
tests() {
  timeout 100 python3 -m pytest -q -p no:cacheprovider -n 0 tests/test_model.py \
    -k "cuda or bound or batch_auto" >> "$log" 2>&1
  tail -4 "$log"
}
bench() {
  timeout 200 python3 scripts/bench/bench.py --device cuda --frames 600 --batch auto --tiers all \
    --anchors a --json "$out/bench.json" > "$out/bench.md" 2>&1
  tail -30 "$out/bench.md"
}
fp16() {
  [ -d .data/eval ] || { echo "fp16: no .data/eval carried"; return; }
  timeout 90 python3 scripts/models/eval.py --sets .data/eval/Set5 .data/eval/Set14 --scales 3 --device cuda \
    --model models/fast_x3.onnx models/balanced_x3.onnx models/quality_x3.onnx --precision fp32 fp16 \
    --no-bicubic > "$out/eval.md" 2>&1
  cat "$out/eval.md"
}
engines() {
  timeout 70 python3 scripts/bench/model_fps.py --device cuda --sizes 640x360 --seconds 1 \
    --variants all > "$out/model_fps.md" 2>&1
  cat "$out/model_fps.md"
}
bench_x4() {
  timeout 90 python3 scripts/bench/bench.py --device cuda --frames 300 --batch auto --tiers all \
    --model models/espcn_x4.onnx --anchors none --json "$out/bench_x4.json" > "$out/bench_x4.md" 2>&1
  tail -24 "$out/bench_x4.md"
}
# Steps by name on the command line (a rerun of what a cut-short lease missed), else all.
for step in "${@:-tests bench fp16 engines bench_x4}"; do
  for s in $step; do "$s"; done
done
date >> "$log"
