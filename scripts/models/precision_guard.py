#!/usr/bin/env python3
"""The reduced-precision guard for every bundled model on this CPU (issue 35).

    python scripts/models/precision_guard.py                    # every bundled model
    python scripts/models/precision_guard.py --models balanced_x3 quality_x3
    python scripts/models/precision_guard.py --write models/bf16_guard.json   # what auto reads

For each float model: its Set5 / Set14 PSNR on onnxruntime in float32 and on OpenVINO in
bfloat16, and how far bfloat16's pixels are from float32's on the generated hard images
(vsr/lab/hard_images.py); for each int8 model the same with OpenVINO's int8 against
onnxruntime's. The bars: within 0.02 dB on both sets, every hard-image pixel within 2 grey
levels (vsr/lab/precision_guard.py). Needs OpenVINO, bfloat16 units for the float rows (int8
rows: VNNI), and ../shared/data/eval for the PSNR columns. Exit status 1 if a bar is missed.

`--write FILE` keeps the figures as JSON, per model file and its SHA-256: `--engine auto`
leaves bfloat16 out for a bundled model whose record misses the PSNR bar
(vsr/model/engine_choice.py; the file ships beside the models).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import onnxruntime

from vsr.lab import hard_images
from vsr.lab.precision_guard import MAX_LEVELS, MAX_LOSS_DB, hard_distance, pair, psnr
from vsr.model import cpu, quant
from vsr.model.openvino_engine import version
from vsr.model.registry import read_metadata
from vsr.paths import MODELS, SHARED_DATA

SETS = ("Set5", "Set14")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", help="model names (default: every bundled one)")
    ap.add_argument("--eval", type=Path, default=SHARED_DATA / "eval")
    ap.add_argument("--write", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    if not version():
        print("precision_guard: openvino is not installed", file=sys.stderr)
        return 2
    paths = (
        [MODELS / f"{m.removesuffix('.onnx')}.onnx" for m in args.models]
        if args.models
        else sorted(MODELS.glob("*.onnx"))
    )
    sets = [s for s in SETS if (args.eval / s).is_dir()]
    print(f"CPU: {cpu.describe()}; OpenVINO {version()}")
    print(
        f"bars: PSNR within {MAX_LOSS_DB} dB of the reference on {' and '.join(sets) or '(no sets found)'}; "
        f"every hard-image pixel within {MAX_LEVELS} grey levels\n"
    )
    print(
        "| model | run | reference Set5 / Set14 | run Set5 / Set14 | loss (dB) | hard images: max levels "
        "| pixels > 2 levels | bars |"
    )
    print("|---|---|---|---|---:|---:|---:|---|")
    failed = 0
    records: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="vsr-hard-") as tmp:
        hard = hard_images.write_all(Path(tmp))[0].parent
        for path in paths:
            precision = "int8" if quant.file_precision(path) == "int8" else "bf16"
            if precision == "bf16" and not cpu.native_bf16():
                print(f"| {path.stem} | — | this CPU has no bfloat16 units | | | | | skipped |")
                continue
            if precision == "int8" and quant.cpu_saturates_u8s8():
                print(f"| {path.stem} | — | OpenVINO int8 is not offered without VNNI | | | | | skipped |")
                continue
            scale = int(read_metadata(path).get("vsr.scale", "3"))
            ref, cand = pair(path, precision)
            base = {s: psnr(ref, scale, args.eval / s) for s in sets}
            got = {s: psnr(cand, scale, args.eval / s) for s in sets}
            loss = max((base[s] - got[s] for s in sets), default=0.0)
            far = hard_distance(ref, cand, scale, hard)
            missed = ([f"loss {loss:.3f} dB"] if loss > MAX_LOSS_DB else []) + (
                [f"{far.max_levels} levels ({far.worst_image})"] if far.max_levels > MAX_LEVELS else []
            )
            failed += bool(missed)
            records[path.name] = {
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                precision: {
                    "reference_psnr": base,
                    "psnr": got,
                    "loss_db": round(loss, 4),
                    "max_levels": far.max_levels,
                    "share_over": round(far.share_over, 6),
                    "worst_image": far.worst_image,
                },
            }
            label = (
                "OpenVINO int8 vs onnxruntime int8"
                if precision == "int8"
                else "OpenVINO bf16 vs onnxruntime fp32"
            )
            print(
                f"| {path.stem} | {label} | {' / '.join(f'{base[s]:.3f}' for s in sets)} | "
                f"{' / '.join(f'{got[s]:.3f}' for s in sets)} | {loss:+.4f} | {far.max_levels} | "
                f"{100 * far.share_over:.3f}% | {'hold' if not missed else 'MISSED: ' + ', '.join(missed)} |",
                flush=True,
            )
    if args.write:
        args.write.write_text(
            json.dumps(
                {
                    "cpu": cpu.describe(),
                    "openvino": version(),
                    "onnxruntime": onnxruntime.__version__,
                    "measured": datetime.date.today().isoformat(),
                    "sets": sets,
                    "bars": {"loss_db": MAX_LOSS_DB, "max_levels": MAX_LEVELS},
                    "models": records,
                },
                indent=1,
                sort_keys=True,
            )
            + "\n"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
