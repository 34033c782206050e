"""A job request (JSON) checked into what `vsr upscale` would run: confined paths and the
CLI's own parsed options.

Why through the CLI's parser: a job's options are `vsr upscale`'s by their long names with
underscores, so they are checked by the same code (`build_parser(raising=True)`), with the
same one-line messages and the same defaults; the service's own model and encoder options are
the defaults a job does not set. Only the options listed in `JOB_OPTIONS` are taken: the rest
(`codec_option`, `input_option`, `work_dir`, ...) would let a stranger pass FFmpeg options or
paths past the confinement.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import UsageError
from ...media.output_container import default_output
from ...model.registry import model_dirs
from ...scaleout.job import ScaleOutOptions, check_request
from ...scaleout.manifest import NAME as MANIFEST
from ..arguments import build_parser
from ..jobs import sink_options, source_options
from .confine import Input, check_input, inside, is_url

#: The options a job may set: `vsr upscale`'s long names, with underscores.
JOB_OPTIONS = (
    "scale",
    "quality",
    "model",
    "codec",
    "crf",
    "preset",
    "pix_fmt",
    "start",
    "duration",
    "width",
    "height",
    "square_pixels",
    "no_audio",
    "overwrite",
    "on_error",
    "segments",
)
#: Of those, the ones that are flags (true or false in JSON).
FLAGS = frozenset({"square_pixels", "no_audio", "overwrite"})
#: The service's own options that are defaults for every job (the model and the encoder).
#: (`--batch` is not one: it sizes the shared model's merged calls; each job batches as
#: `vsr upscale --batch auto` does, and the shared model merges the jobs' calls.)
DEFAULT_DESTS = (
    "model",
    "scale",
    "quality",
    "degrade",
    "device",
    "threads",
    "precision",
    "codec",
    "crf",
    "preset",
    "pix_fmt",
    "square_pixels",
    "no_audio",
    "color",
    "codec_option",
    "container_option",
    "require_gpu",
)


@dataclass(frozen=True)
class Paths:
    """Where a service keeps its things."""

    root: Path
    state: Path  # the state folder (jobs database, segment work folders)

    def work_dir(self, job_id: str) -> Path:
        return self.state / "work" / job_id


@dataclass(frozen=True)
class CheckedJob:
    """A request that passed every check: what to store and how to run it."""

    input: Input
    output: Path  # absolute, inside the root
    output_shown: str  # relative to the root, as the API shows it
    options: dict[str, Any]  # as the client gave them (re-parsed when the job runs)
    args: argparse.Namespace  # `vsr upscale`'s parsed arguments for this job


def option_argv(options: dict[str, Any]) -> list[str]:
    """A job's options as `vsr upscale` arguments (`--crf=20`: a value that starts with a
    dash stays a value).

    Raises:
        UsageError: an option that is not a job option, or a value of the wrong JSON type.
    """
    argv = []
    for name, value in options.items():
        if name not in JOB_OPTIONS:
            raise UsageError(f"unknown option '{name}'", hint="job options: " + ", ".join(JOB_OPTIONS))
        flag = "--" + name.replace("_", "-")
        if name in FLAGS:
            if not isinstance(value, bool):
                raise UsageError(f"option '{name}' must be true or false, not {value!r}")
            if value:
                argv.append(flag)
        elif value is not None:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise UsageError(f"option '{name}' must be a string or a number, not {value!r}")
            argv.append(f"{flag}={value}")
    return argv


def parse(
    input_url: str, output: str, options: dict[str, Any], defaults: dict[str, Any]
) -> argparse.Namespace:
    """`vsr upscale INPUT OUTPUT --opt=... ` parsed, the service's defaults filling what the
    job leaves out."""
    args = build_parser(raising=True).parse_args(["upscale", input_url, output, *option_argv(options)])
    for dest, value in defaults.items():
        if dest not in options:
            setattr(args, dest, value)
    return args


def check(
    paths: Paths,
    body_input: str,
    body_output: str | None,
    options: dict[str, Any],
    defaults: dict[str, Any],
    *,
    allow_urls: bool,
    scale_of: Any,
) -> CheckedJob:
    """A job request checked: paths confined, options parsed as the CLI parses them.

    Args:
        scale_of: a function from the parsed arguments to the model's scale (loads the model
            through the service's shared pool): the default output name needs it.

    Raises:
        Refused: a path or URL the service does not allow (HTTP 403).
        UsageError: anything else wrong with the request (HTTP 422).
    """
    source = check_input(paths.root, body_input, allow_urls=allow_urls, state=paths.state)
    options = dict(options)
    if isinstance(options.get("model"), str):
        options["model"] = _model_option(paths, options["model"])
    # Parsed once with a placeholder output: the default output name needs the model's scale.
    placeholder = str(paths.root / "output.mp4")
    args = parse(source.url, placeholder, options, defaults)
    if body_output is None:
        named = default_output(body_input, scale_of(args))
        where = Path(body_input).parent if not source.is_url else Path(".")
        body_output = str(where / Path(named).name)
    output = inside(paths.root, body_output, what="output", state=paths.state)
    if not source.is_url and output == Path(source.url):
        raise UsageError(f"output '{body_output}' is the input file", hint="choose another output name")
    if output.is_dir():
        raise UsageError(f"output '{body_output}' is a directory")
    args.inputs = [source.url, str(output)]
    if args.segments:
        check_request(
            source_options(args, source.url),
            sink_options(args, str(output)),
            ScaleOutOptions(segments=args.segments),
        )
    shown = str(output.relative_to(paths.root.resolve()))
    return CheckedJob(source, output, shown, options, args)


def _model_option(paths: Paths, model: str) -> str:
    """A job's `model`: a bundled name, or an .onnx file inside the root (as an absolute path).

    Raises:
        Refused: a model path outside the root.
        UsageError: no bundled model of that name.
    """
    if model.lower().endswith(".onnx") or "/" in model or "\\" in model or is_url(model):
        return str(inside(paths.root, model, what="model", state=paths.state))
    if not any((d / f"{model}.onnx").is_file() for d in model_dirs()):
        raise UsageError(f"unknown model {model!r}", hint="'vsr models' lists the bundled models")
    return model


def with_run_paths(
    args: argparse.Namespace, source: Input, work_dir: Path, ray_address: str | None
) -> argparse.Namespace:
    """The arguments a job runs with: its input's confinement options, and for segments the
    work folder the service keeps for it (resumed after a restart) and where segments run."""
    args = argparse.Namespace(**vars(args))
    args.input_option = list(source.options.items())
    if args.segments:
        args.work_dir = str(work_dir)
        args.resume = (work_dir / MANIFEST).exists()
        args.executor = "ray" if ray_address else "local"
        args.ray_address = ray_address
    return args
