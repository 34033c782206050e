"""The in-memory Python API: upscale BGR images (numpy arrays) with the same model and colour
recipe as the video pipeline, for callers that bring their own frames. Runs in the caller's
thread.

`ImageUpscaler` is exported as `vsr.ImageUpscaler`, and also as `vsr.Upscaler`, its earlier
name, kept as an alias. It takes whole images; the model stage's luma interface is
`model.LumaUpscaler`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..errors import UsageError
from ..media.color import merge_upscaled, split_ycrcb
from ..options import Device, Engine, ModelOptions, Precision, as_enum
from .load import OnnxUpscaler, load


class ImageUpscaler:
    """Upscale images: `ImageUpscaler().upscale(bgr)` -> (sH, sW, 3) uint8.

    Args:
        model: bundled model name or .onnx path (None: the bundled x3, or `scale`'s).
        device: "auto", "cpu" or "cuda".
        batch: images per model call in `upscale_batch`.
        scale: pick the bundled model of this scale.
        tile: tile size for dynamic models (0: whole images).
        precision: "auto", "fp32", "bf16" or "fp16" (auto: fp16 on CUDA; on the CPU bf16 where
            the CPU has bfloat16 units and OpenVINO runs it faster, else fp32).
        engine: "auto", "onnxruntime" or "openvino" (auto: measured on the CPU; `vsr.Engine`).
        quality: the bundled model's tier with `scale`: "fast", "balanced" or "quality".
        degrade: "video" picks the bundled model trained for encoder-damaged input.
    """

    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        batch: int = 4,
        scale: int | None = None,
        tile: int = 0,
        precision: str = "auto",
        quality: str | None = None,
        degrade: str | None = None,
        engine: str = "auto",
    ) -> None:
        if batch < 1:
            raise UsageError("batch must be at least 1")
        self.batch = batch
        self.model: OnnxUpscaler = load(
            ModelOptions(
                model=model,
                scale=scale,
                device=as_enum(Device, device, "device"),
                tile=tile,
                precision=as_enum(Precision, precision, "precision"),
                quality=quality,
                degrade=degrade,
                engine=as_enum(Engine, engine, "engine"),
            )
        )
        self.scale = self.model.scale
        self.provider = self.model.provider
        self.engine = self.model.runtime.value
        self.precision = self.model.precision

    def upscale(self, image_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """One (H, W, 3) BGR uint8 image (or (H, W) grey) -> upscaled, same layout."""
        return self.upscale_batch([image_bgr])[0]

    def upscale_batch(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.uint8]]:
        """Upscale many images; same-sized neighbours share a model call."""
        out: list[npt.NDArray[np.uint8]] = []
        group: list[npt.NDArray[np.uint8]] = []
        for img in images:
            img = _check(img)
            if group and (len(group) == self.batch or group[0].shape != img.shape):
                out.extend(self._run(group))
                group = []
            group.append(img)
        if group:
            out.extend(self._run(group))
        return out

    def _run(self, group: list[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.uint8]]:
        if group[0].ndim == 2:
            return list(self.model(np.stack(group)))
        parts = [split_ycrcb(img) for img in group]
        hr = self.model(np.stack([y for y, _ in parts]))
        return [merge_upscaled(y, crcb) for y, (_, crcb) in zip(hr, parts, strict=True)]


def _check(img: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    a = np.asarray(img)
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise UsageError(f"expected an (H, W, 3) or (H, W) uint8 image, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)
