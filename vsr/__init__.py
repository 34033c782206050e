"""vsr: streaming video super-resolution (ESPCN on luma + bicubic chroma) with PyAV and onnxruntime.

Public API:
    upscale_video(input, output, **options) -> Stats   # a whole file, URL or pipe
    ImageUpscaler(model=None, device="auto", batch=4)  # images in memory (BGR numpy arrays)
    Pipeline(SourceOptions, ModelOptions, SinkOptions) # the streaming pipeline itself
    ScaleOutJob(..., ScaleOutOptions(segments=8), executor=RayExecutor())  # one file, many workers

Aliases kept for code written against earlier names (the same objects, not copies):
    Upscaler = ImageUpscaler       # the image API's earlier name
    Progress = ProgressStyle       # the --progress enum's earlier name
"""

from __future__ import annotations

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
from .frames import StageTimes, Stats
from .images import ImageUpscaler
from .options import (
                     ColorPath,
                     Device,
                     ModelOptions,
                     OnError,
                     Precision,
                     ProgressStyle,
                     SinkOptions,
                     SourceOptions,
)
from .pipeline import Pipeline, upscale_video
from .scaleout import LocalExecutor, RayExecutor, ScaleOutJob, ScaleOutOptions
from .version import __version__

Upscaler = ImageUpscaler
Progress = ProgressStyle

__all__ = [
                     "Cancelled",
                     "ColorPath",
                     "DecodeError",
                     "Device",
                     "EncodeError",
                     "ImageUpscaler",
                     "Interrupted",
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
