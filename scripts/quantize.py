#!/usr/bin/env python3
"""Make the int8 CPU variant of a model: static QDQ quantization calibrated on training images.

    python scripts/quantize.py                      # models/espcn_x3.onnx -> models/espcn_x3_int8.onnx
    python scripts/quantize.py --model models/espcn_x2.onnx --out models/espcn_x2_int8.onnx

Weights are int8 per output channel, activations uint8 with ranges calibrated (MinMax) on
96x96 LR luma crops of every 6th image of ../shared/data/train, degraded by the shared
protocol, so the ranges are those the model sees on real images. QDQ format, which
onnxruntime fuses into integer convolutions (VNNI on recent x86). The result is checked
against the float model under the shared protocol on Set5/Set14 and the figures are written
into its metadata next to the source model's own.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sr_protocol  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def calibration_batches(scale: int, folder: Path, every: int = 6, crop: int = 96) -> list[dict[str, np.ndarray]]:
    batches = []
    for path in sr_protocol.list_images(folder)[::every]:
        _, lr = sr_protocol.hr_lr_pair(path, scale)
        y = sr_protocol.y_channel(lr)[:crop, :crop].astype(np.float32) / 255.0
        batches.append({"input": y[None, None]})
    return batches


def psnr_of(model: Path, scale: int, folder: Path) -> float:
    sys.path.insert(0, str(ROOT))
    from vsr.model import OnnxUpscaler
    from vsr.options import Device

    up = OnnxUpscaler(model, Device.CPU)
    scores = []
    for path in sr_protocol.list_images(folder):
        hr, lr = sr_protocol.hr_lr_pair(path, scale)
        sr = up(sr_protocol.y_channel(lr)[None])[0]
        scores.append(sr_protocol.psnr_y(sr, sr_protocol.y_channel(hr), scale))
    return round(float(np.mean(scores)), 3)


def main() -> int:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "espcn_x3.onnx")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--data", type=Path, default=DATA / "train")
    ap.add_argument("--eval", type=Path, default=DATA / "eval")
    args = ap.parse_args()
    out = args.out or args.model.with_name(args.model.stem + "_int8.onnx")
    src = onnx.load(str(args.model))
    meta = {p.key: p.value for p in src.metadata_props}
    scale = int(meta.get("vsr.scale", "3"))
    batches = calibration_batches(scale, args.data)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "q.onnx"
        quantize_static(str(args.model), str(raw), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True)
        q = onnx.load(str(raw))
    psnr = {name: psnr_of(args.model, scale, args.eval / name) for name in ("Set5", "Set14")
            if (args.eval / name).is_dir()}
    meta.update({
        "vsr.precision": "int8 (static QDQ, per-channel weights, MinMax-calibrated activations)",
        "vsr.float_psnr": meta.get("vsr.psnr", "{}"),
        "vsr.quantize_command": "python scripts/quantize.py " + " ".join(sys.argv[1:]),
        "vsr.calibration": f"{len(batches)} LR crops of {args.data.name}",
    })
    del q.metadata_props[:]
    onnx.helper.set_model_props(q, meta)
    onnx.save(q, str(out))
    qpsnr = {name: psnr_of(out, scale, args.eval / name) for name in psnr}
    meta["vsr.psnr"] = json.dumps(qpsnr)
    onnx.helper.set_model_props(q, meta)
    onnx.save(q, str(out))
    print(f"wrote {out}: PSNR {qpsnr} (float model {psnr})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
