"""vsr: streaming video super-resolution (ESPCN on luma + bicubic chroma) with PyAV and onnxruntime.

Public API:
    upscale_video(input, output, model=ModelOptions())  # a whole file, URL or pipe -> Stats
    ImageUpscaler(model=None, device="auto", batch=4)  # images in memory (BGR numpy arrays)
    Pipeline(SourceOptions, ModelOptions, SinkOptions) # the streaming pipeline itself
    ScaleOutJob(..., ScaleOutOptions(segments=8), executor=RayExecutor())  # one file, many workers

Aliases kept for code written against earlier names (the same objects, not copies):
    Upscaler = ImageUpscaler       # the image API's earlier name
    Progress = ProgressStyle       # the --progress enum's earlier name
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    Cancelled,
    DecodeError,
    EncodeError,
    Interrupted,
    ModelError,
    ModelRunError,
    ProviderUnavailable,
    SinkError,
    SourceError,
    UsageError,
    VsrError,
)
from .version import __version__

if TYPE_CHECKING:
    from .frames import LiveStats, ScaleOutStats, StageTimes, Stats
    from .model.images import ImageUpscaler
    from .options import (
        ColorPath,
        Device,
        Engine,
        ModelOptions,
        OnError,
        Precision,
        ProgressStyle,
        SinkOptions,
        SourceOptions,
    )
    from .pipeline.pipeline import Pipeline, upscale_video
    from .scaleout import LocalExecutor, RayExecutor, ScaleOutJob, ScaleOutOptions

    Upscaler = ImageUpscaler
    Progress = ProgressStyle

# Loaded on first use (PEP 562): `import vsr` or `import vsr.lab.protocol` must not import
# PyAV, onnxruntime and OpenCV through every stage. Training on a machine without PyAV (the
# borrowed GPU) imports vsr.lab, and every script and `vsr --version` starts faster.
_LAZY = {
    "LiveStats": "frames",
    "ScaleOutStats": "frames",
    "StageTimes": "frames",
    "Stats": "frames",
    "ImageUpscaler": "model.images",
    "Upscaler": "model.images:ImageUpscaler",
    "ColorPath": "options",
    "Device": "options",
    "Engine": "options",
    "ModelOptions": "options",
    "OnError": "options",
    "Precision": "options",
    "ProgressStyle": "options",
    "Progress": "options:ProgressStyle",
    "SinkOptions": "options",
    "SourceOptions": "options",
    "Pipeline": "pipeline.pipeline",
    "upscale_video": "pipeline.pipeline",
    "LocalExecutor": "scaleout",
    "RayExecutor": "scaleout",
    "ScaleOutJob": "scaleout",
    "ScaleOutOptions": "scaleout",
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'vsr' has no attribute {name!r}")
    module, _, attr = where.partition(":")
    value = getattr(importlib.import_module(f".{module}", __name__), attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Cancelled",
    "ColorPath",
    "DecodeError",
    "Device",
    "EncodeError",
    "Engine",
    "ImageUpscaler",
    "Interrupted",
    "LiveStats",
    "LocalExecutor",
    "ModelError",
    "ModelOptions",
    "ModelRunError",
    "OnError",
    "Pipeline",
    "Precision",
    "Progress",
    "ProgressStyle",
    "ProviderUnavailable",
    "RayExecutor",
    "ScaleOutJob",
    "ScaleOutOptions",
    "ScaleOutStats",
    "SinkError",
    "SinkOptions",
    "SourceError",
    "SourceOptions",
    "StageTimes",
    "Stats",
    "Upscaler",
    "UsageError",
    "VsrError",
    "__version__",
    "upscale_video",
]
