#!/usr/bin/env python3
"""The int8 ship rule, re-checked on this CPU for every bundled int8 model.

    python scripts/bench/bench_int8.py                 # every models/*_int8.onnx
    python scripts/bench/bench_int8.py --models quality_x4_int8 --rounds 25
    python scripts/bench/bench_int8.py --engines onnxruntime     # onnxruntime only, as before OpenVINO

An int8 model ships only if it is >= 1.4x as fast as its float model and <= 0.1 dB below it on
Set5 and Set14, on AVX2-only and VNNI CPUs alike. onnxruntime runs different int8 kernels on the
two kinds (VNNI sums products in int32; AVX2 pairs them into a saturating int16), so
`quantize.py`'s figures, taken on the CPU the model was made on, hold for that kind only. Run
this on the other kind. For each model it prints, side by side and measured in this one run:
the float and int8 PSNR here, the int8 PSNR recorded when the model was made (and on what CPU:
equal figures mean the same pixels on both kinds), and the speed ratio at 640x360, the float
and int8 runs interleaved. The speed is measured twice: both models on onnxruntime, and each
on the best engine this CPU offers it (`--engine auto`: on a CPU with bfloat16 units the float
model in bfloat16 on OpenVINO, the int8 model as int8 on OpenVINO where it has VNNI); the
rule is judged on the latter, the speed a user gets. Exit status 1 if any model misses the
rule here.

PSNR needs ../shared/data/eval (Set5, Set14); without it only the speed is measured.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from vsr.lab.ship_rule import SPEED_SIZE, cpu_features, misses, psnr_of, speedup_on
from vsr.model.registry import read_metadata
from vsr.paths import MODELS, SHARED_DATA

SETS = ("Set5", "Set14")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", help="int8 model names (default: every bundled one)")
    ap.add_argument("--eval", type=Path, default=SHARED_DATA / "eval")
    ap.add_argument("--rounds", type=int, default=15, help="timed calls per model (median)")
    ap.add_argument("--threads", type=int, default=0, help="engine threads (0: their default)")
    ap.add_argument(
        "--engines",
        default="onnxruntime,auto",
        help="speed columns: onnxruntime (both models on it) and/or auto (each on "
        "its best engine here); the rule is judged on the last",
    )
    args = ap.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    paths = (
        [MODELS / f"{m.removesuffix('.onnx')}.onnx" for m in args.models]
        if args.models
        else sorted(MODELS.glob("*_int8.onnx"))
    )
    sets = [s for s in SETS if (args.eval / s).is_dir()]
    print(
        f"CPU: {cpu_features()}, {os.cpu_count()} cores; onnxruntime threads: {args.threads or 'default'}; "
        f"speed at {SPEED_SIZE[0]}x{SPEED_SIZE[1]}, median of {args.rounds} interleaved calls"
    )
    if not sets:
        print(f"(no {args.eval}/Set5 or Set14: speed only)")
    print(
        f"| int8 model | float here | int8 here | int8 when made | "
        f"{' | '.join(f'speed vs float ({e})' for e in engines)} | ship rule here |"
    )
    print(f"|---|---|---|---|{'---|' * len(engines)}---|")
    failed = 0

    def fig(d: dict[str, float]) -> str:
        return " / ".join(f"{d[s]:.3f}" for s in sets if s in d) or "—"

    for path in paths:
        meta = read_metadata(path)
        fp32 = MODELS / f"{meta['vsr.float_model']}.onnx"
        scale = int(meta.get("vsr.scale", "3"))
        here = {s: psnr_of(path, scale, args.eval / s) for s in sets}
        base = {s: psnr_of(fp32, scale, args.eval / s) for s in sets}
        made = json.loads(meta.get("vsr.psnr", "{}"))
        made_on = meta.get("vsr.int8_speedup", "").partition(" on ")[2] or "?"
        speeds = [speedup_on(fp32, path, args.rounds, args.threads, e) for e in engines]
        ratio = speeds[-1][0]
        loss = max((base[s] - here[s] for s in sets), default=0.0)
        missed = misses(loss, ratio)
        failed += bool(missed)
        same = all(made.get(s) == here[s] for s in sets)
        print(
            f"| {path.stem} | {fig(base)} | {fig(here)} | {fig(made)} ({'same' if same else 'DIFFERENT'}; "
            f"{made_on}) | {' | '.join(f'{r:.2f}x ({ran[1]} vs {ran[0]})' for r, ran in speeds)} | "
            f"{'holds' if not missed else 'MISSES: ' + '; '.join(missed)} |",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
