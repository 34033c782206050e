"""One upscaling job from parsed `vsr upscale` options: the option dataclasses and the run.

Shared by the command line and the job service, so that a job submitted over HTTP is built
exactly as `vsr upscale` builds it from the same options.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from ..options import (
    ColorPath,
    Device,
    Engine,
    ModelOptions,
    OnError,
    Precision,
    SinkOptions,
    SourceOptions,
)

if TYPE_CHECKING:
    from ..pipeline.run import Run

log = logging.getLogger("vsr")


def model_options(args: argparse.Namespace) -> ModelOptions:
    """The ModelOptions of the options `_model_args` defines, for upscale and live alike (live
    has no --tile: whole frames)."""
    return ModelOptions(
        model=args.model,
        scale=args.scale,
        device=Device(args.device),
        batch=args.batch,
        tile=getattr(args, "tile", 0),
        threads=args.threads,
        precision=Precision(args.precision),
        quality=args.quality,
        degrade=args.degrade,
        engine=Engine(getattr(args, "engine", "auto")),
    )


def source_options(args: argparse.Namespace, url: str) -> SourceOptions:
    """The input options of `vsr upscale`."""
    return SourceOptions(
        url,
        format=args.input_format,
        options=dict(args.input_option),
        max_frames=args.frames,
        max_pixels=args.max_pixels,
        start=args.start,
        duration=args.duration,
    )


def open_job(
    args: argparse.Namespace,
    url: str,
    output: str,
    upscaler: Any,
    scale_out: bool,
    work_dir: str | None,
    label: str = "",
) -> Run:
    """The Pipeline (or, for --segments and friends, the ScaleOutJob) upscaling one file with
    the already loaded `upscaler`; warns (once, prefixed by `label`) if its output is huge."""
    from ..pipeline.pipeline import Pipeline
    from .limits import large_output_warning

    source = source_options(args, url)
    model = model_options(args)
    sink = sink_options(args, output)
    job: Run
    if scale_out:
        from ..scaleout import ScaleOutJob, ScaleOutOptions

        options = ScaleOutOptions(
            segments=args.segments,
            segment_seconds=args.segment_seconds,
            workers=args.workers,
            gpus_per_worker=args.gpus_per_worker,
            cpus_per_worker=args.cpus_per_worker,
            ray_address=args.ray_address,
            executor=args.executor,
            work_dir=work_dir,
            resume=args.resume,
            restart=args.restart,
            keep_work=args.keep_work,
        )
        job = ScaleOutJob(
            source,
            model,
            sink,
            options,
            on_error=OnError(args.on_error),
            color=ColorPath(args.color),
            upscaler=upscaler,
        )
    else:
        job = Pipeline(
            source,
            model,
            sink,
            upscaler=upscaler,
            on_error=OnError(args.on_error),
            color=ColorPath(args.color),
        )
    v = job.info.video
    warning = large_output_warning(v.width, v.height, job.upscaler.scale, job.batch)
    if warning:
        log.warning("%s%s", label, warning)
    return job


def sink_options(args: argparse.Namespace, url: str) -> SinkOptions:
    """The output options `upscale` and `live` share."""
    return SinkOptions(
        url,
        format=args.format,
        codec=args.codec,
        crf=args.crf,
        preset=args.preset,
        pix_fmt=args.pix_fmt,
        codec_options=dict(args.codec_option),
        container_options=dict(args.container_option),
        overwrite=args.overwrite,
        audio="none" if args.no_audio else "auto",
        square_pixels=args.square_pixels,
        width=args.width,
        height=args.height,
    )


def scale_out_requested(args: argparse.Namespace) -> bool:
    return (
        any(
            getattr(args, name) not in (None, False)
            for name in (
                "segments",
                "segment_seconds",
                "workers",
                "gpus_per_worker",
                "ray_address",
                "work_dir",
                "resume",
                "restart",
                "keep_work",
            )
        )
        or args.executor != "auto"
        or args.cpus_per_worker != 1.0
    )
