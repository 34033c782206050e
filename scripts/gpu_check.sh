#!/usr/bin/env bash
# The GPU checks, as one script for a device machine (../shared/tools/gpu/README.md explains
# how onnxruntime-gpu and PyAV get there): the CUDA tests, the model-stage throughput with its
# candidate variants (uint8 I/O in the graph, I/O binding, fp16), the benchmark against its
# anchors, the live benchmark, and, when Ray is there, the scale-out GPU layouts (one worker x
# 1 GPU against 2 x 0.5 and 4 x 0.25). Writes its reports to $OUT or ./gpu_out.
#   ../shared/tools/gpu/prepare ray==2.60.0 click msgpack jsonschema jsonschema-specifications \
#       referencing rpds-py      # Ray too (wheels without deps; about 8 pieces in all)
#   source .gpu/p1/install-on-device && bash scripts/gpu_check.sh
set -u
out=${OUT:-gpu_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
{ nvidia-smi -L; python3 -c "import onnxruntime as o, av; print('onnxruntime', o.__version__, o.get_available_providers(), 'av', av.__version__)"; } 2>&1 | tee "$out/env.txt"
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_model.py -k "cuda or batch_auto" 2>&1 | tail -5 | tee "$out/tests.txt"
timeout 100 python3 scripts/model_fps.py --device cuda --sizes 640x360 1280x720 --seconds 3 --variants all 2>&1 | tee "$out/model_fps.md"
timeout 120 python3 scripts/bench.py --device cuda --json "$out/bench.json" > "$out/bench.md" 2>&1; tail -22 "$out/bench.md"
timeout 90 python3 scripts/bench_live.py --device cuda --sizes 640x360 1280x720 --seconds 6 --json "$out/bench_live.json" > "$out/bench_live.md" 2>&1; tail -6 "$out/bench_live.md"
if python3 -c "import ray" 2>/dev/null; then
  timeout 150 python3 scripts/bench_scaleout.py --size 640x360 --frames 480 --gop 48 --segments 4 \
    --gpu-layouts 1x1,2x0.5,4x0.25 --sim-workers 1,8 --json "$out/bench_scaleout.json" > "$out/bench_scaleout.md" 2>&1
  tail -16 "$out/bench_scaleout.md"
fi
