"""The reduced-precision guard (issue 35), measured one way for the tests and the script:
a model run in bfloat16 on OpenVINO (or, an int8 model, as int8 on OpenVINO) against the same
model in its reference arithmetic on onnxruntime (float32, or int8 for an int8 model).

Two bars:
- PSNR under the shared protocol on Set5 and Set14 within `MAX_LOSS_DB` of the reference;
- every pixel of the generated hard images (`vsr.lab.hard_images`: text, line art, flat
  fields, stripes, a dark scene) within `MAX_LEVELS` grey levels of the reference's.

Used by tests/test_engines.py (a few models) and scripts/models/precision_guard.py (every
bundled model, the README's table).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import protocol

if TYPE_CHECKING:
    from vsr.model.load import OnnxUpscaler

MAX_LOSS_DB = 0.02
MAX_LEVELS = 2


@dataclass(frozen=True)
class HardDistance:
    """How far one run is from the reference on the hard images: the most grey levels any
    pixel is off, the share of pixels more than `MAX_LEVELS` off, and the image where the
    most is."""

    max_levels: int
    share_over: float
    worst_image: str


def pair(model: Path, precision: str, threads: int = 0) -> tuple[OnnxUpscaler, OnnxUpscaler]:
    """(reference, candidate) upscalers: the model on onnxruntime as it is, and on OpenVINO in
    `precision` ("bf16", "fp32", or "int8" for an int8 model)."""
    from vsr.model.load import OnnxUpscaler
    from vsr.options import Device, Precision

    ref = OnnxUpscaler(model, Device.CPU, engine="onnxruntime", threads=threads)
    want = Precision.AUTO if precision == "int8" else Precision(precision)
    cand = OnnxUpscaler(model, Device.CPU, engine="openvino", precision=want, threads=threads)
    return ref, cand


def psnr(upscaler: OnnxUpscaler, scale: int, folder: Path) -> float:
    """Mean Y-PSNR of `upscaler` on a folder under the shared protocol, to 4 decimals."""
    return round(protocol.mean_psnr(protocol.luma_runner(upscaler), scale, folder), 4)


def hard_distance(ref: OnnxUpscaler, cand: OnnxUpscaler, scale: int, folder: Path) -> HardDistance:
    """`cand` against `ref` on every hard image in `folder` (at `scale`, LR by the protocol)."""
    worst, worst_name, over, total = 0, "", 0, 0
    for path in protocol.list_images(folder):
        _, lr = protocol.hr_lr_pair(path, scale)
        y = protocol.y_channel(lr)[None]
        diff = np.abs(ref(y).astype(np.int16) - cand(y).astype(np.int16))
        if int(diff.max()) > worst:
            worst, worst_name = int(diff.max()), path.stem
        over += int((diff > MAX_LEVELS).sum())
        total += diff.size
    return HardDistance(worst, over / max(1, total), worst_name)
