#!/usr/bin/env bash
# The GPU checks, as one script for a device machine (../shared/tools/gpu/README.md explains
# how onnxruntime-gpu and PyAV get there): the CUDA tests, the model-stage throughput, the
# benchmark against its anchors, and the live benchmark, with --device cuda. Writes its
# reports to $OUT (the device tool's output folder) or ./gpu_out.
#   source .gpu/p1/install-on-device && bash scripts/gpu_check.sh
set -u
out=${OUT:-gpu_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
{ nvidia-smi -L; python3 -c "import onnxruntime as o, av; print('onnxruntime', o.__version__, o.get_available_providers(), 'av', av.__version__)"; } 2>&1 | tee "$out/env.txt"
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_model.py -k "cuda or batch_auto" 2>&1 | tail -5 | tee "$out/tests.txt"
timeout 60 python3 scripts/model_fps.py --device cuda --sizes 640x360 1280x720 --seconds 4 2>&1 | tee "$out/model_fps.md"
timeout 120 python3 scripts/bench.py --device cuda --json "$out/bench.json" > "$out/bench.md" 2>&1; tail -22 "$out/bench.md"
timeout 90 python3 scripts/bench_live.py --device cuda --sizes 640x360 1280x720 --seconds 6 --json "$out/bench_live.json" > "$out/bench_live.md" 2>&1; tail -6 "$out/bench_live.md"
