"""Command line: argparse -> option dataclasses -> Pipeline; errors -> one line + exit status.

This is the only place that configures logging, prints tracebacks, or turns exceptions into
exit statuses (0 ok, 1 failure while processing, 2 usage or bad input, 130/143 interrupted).
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

from ..errors import Interrupted, SinkError, SourceError, UsageError, VsrError
from ..frames import Stats
from ..model.registry import DEFAULT_DEGRADATION, DEGRADATIONS, TIERS, BundledModel
from ..options import (
    DEFAULT_MAX_PIXELS,
    ColorPath,
    Device,
    ModelOptions,
    OnError,
    Precision,
    ProgressStyle,
    SinkOptions,
    SourceOptions,
)
from ..pipeline import interrupts
from ..version import __version__

if TYPE_CHECKING:
    from ..pipeline.run import Run

log = logging.getLogger("vsr")
T = TypeVar("T")


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    INTERRUPTED = 130  # 128 + SIGINT
    TERMINATED = 143  # 128 + SIGTERM


def _key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k, v


def _batch(text: str) -> int:
    """--batch: 'auto' (0) or a positive number."""
    return 0 if text == "auto" else _positive(text)


def _time(text: str) -> float:
    """--start/--duration: seconds ("90", "1.5") or [HH:]MM:SS[.fraction], as FFmpeg's -ss."""
    parts = text.split(":")
    try:
        if len(parts) > 3 or any(not p for p in parts):
            raise ValueError
        seconds = 0.0
        for p in parts:
            seconds = seconds * 60 + float(p)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds or [HH:]MM:SS[.ms], got {text!r}") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text!r}")
    return seconds


def _length(text: str) -> float:
    """--duration: a `_time` above 0."""
    seconds = _time(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return seconds


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors about one option's value (`--scale 5`) are one line
    naming the choices, not the whole usage; other errors keep the usage."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument "):
            self.exit(ExitStatus.USAGE, f"{self.prog}: {message}\n")
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vsr", description="Streaming video super-resolution "
                "(ESPCN on luma, bicubic chroma) with PyAV and onnxruntime.")
    p.add_argument("--version", action="version", version=f"vsr {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    up = sub.add_parser("upscale", help="upscale video or image files, URLs or a pipe",
                        usage="%(prog)s [options] INPUT [OUTPUT]\n"
                              "       %(prog)s [options] INPUT|FOLDER ... --output-dir DIR")
    up.add_argument("inputs", nargs="+", metavar="INPUT",
                    help="path, URL, or - for standard input; then OUTPUT: a path or - for "
                         "standard output (default: INPUT_x3.ext; images become .png). With "
                         "--output-dir: any number of files and folders")
    m = _model_args(up, batch_help="frames per model call (default auto: 1 on the CPU, measured "
                    "on a GPU)")
    m.add_argument("--tile", type=int, default=0, help="run dynamic models in tiles of this size "
                   "(input pixels; 0: whole frames)")
    _encoding_args(up, crf=18, preset="medium")
    i = _input_args(up, format_help="force the demuxer (e.g. mpegts)")
    i.add_argument("--frames", type=_positive, help="stop after this many frames")
    i.add_argument("--start", type=_time, default=0.0, metavar="TIME",
                   help="begin at this time (seconds or [HH:]MM:SS[.ms] after the first frame, as "
                        "'vsr compare --at'); audio and subtitles are trimmed with the video")
    i.add_argument("--duration", type=_length, metavar="TIME",
                   help="upscale this much of the input from --start (seconds or [HH:]MM:SS[.ms])")
    up.add_argument("--overwrite", "-y", action="store_true", help="replace an existing output")
    _batch_args(up)
    _scale_out_args(up)
    _common(up)

    lv = sub.add_parser("live", help="upscale a webcam or network stream in real time")
    lv.add_argument("input", help="device (/dev/video0), URL (udp://, rtsp://, srt://, http://), "
                    "file, or - for standard input")
    lv.add_argument("output", nargs="?", help="file (.mkv/.ts survive crashes; .mp4 is finalised "
                    "on exit), URL (udp://, tcp://, rtmp://, srt://), or - (needs --format)")
    _model_args(lv, batch_help="largest batch (default auto); it adapts to --max-latency")
    r = lv.add_argument_group("real time")
    r.add_argument("--max-latency", type=float, default=500, metavar="MS",
                   help="latency target in milliseconds from arrival to output (default 500)")
    r.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    r.add_argument("--reconnect", type=float, default=10, metavar="S",
                   help="keep retrying a network input that drops for S seconds (default 10; 0: off)")
    r.add_argument("--stall-timeout", type=float, default=5, metavar="S",
                   help="a network input silent for S seconds counts as dropped (default 5)")
    r.add_argument("--preview", action="store_true",
                   help="serve a live MJPEG preview page (http://127.0.0.1:8080/)")
    r.add_argument("--preview-host", default="127.0.0.1", help="preview address (default 127.0.0.1)")
    r.add_argument("--preview-port", type=int, default=8080, help="preview port (0: any free port)")
    r.add_argument("--stats", choices=("text", "json"), default="text",
                   help="final statistics as a text line (default) or a JSON record on stderr; "
                        "json also prints a JSON line every second")
    _encoding_args(lv, crf=23, preset="veryfast")
    _input_args(lv, format_help="force the demuxer/device (v4l2, mpegts, rtsp, ...)")
    lv.add_argument("--overwrite", "-y", action="store_true", help="replace an existing output file")
    _common(lv, progress=False)

    info = sub.add_parser("info", help="describe an input and a model")
    info.add_argument("input")
    info.add_argument("--model", help="model to describe (default: the bundled x3)")
    info.add_argument("--scale", type=int, choices=(2, 3, 4))
    info.add_argument("--quality", choices=TIERS, help="the bundled model of this tier with --scale")
    info.add_argument("--codec", default="libx264",
                      help="predict the output for this encoder (default libx264, MP4's): its pixel "
                           "format, and its size where it needs even sizes")
    info.add_argument("--width", type=_positive, metavar="W", help="the output width to predict for")
    info.add_argument("--height", type=_positive, metavar="H", help="the output height to predict for")
    info.add_argument("--square-pixels", action="store_true",
                      help="predict the output with non-square pixels resampled to square ones")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument("--keyframes", action="store_true",
                      help="also scan the video's packets for where it can be cut into segments "
                           "(reads the whole file; no decoding)")
    info.add_argument("--count", action="store_true",
                      help="decode the whole video to report its real frame count and duration "
                           "(headers can be wrong, e.g. an MP4 edit list)")
    _common(info, progress=False)

    cmp = sub.add_parser("compare", help="one frame as bicubic | vsr side by side (PNG or HTML page)")
    cmp.add_argument("input", help="video or image")
    cmp.add_argument("--at", type=float, metavar="SECONDS",
                     help="which frame of a video (default: the middle)")
    cmp.add_argument("--model", help="bundled model name (see 'vsr models') or path to .onnx")
    cmp.add_argument("--scale", type=int, choices=(2, 3, 4), help="pick the bundled model of this scale")
    cmp.add_argument("--quality", choices=TIERS, help="pick the bundled model of this tier with --scale")
    cmp.add_argument("--device", choices=[x.value for x in Device], default="auto")
    cmp.add_argument("--against", metavar="NAME|PATH|TIER",
                     help="add a third panel: another model, or a tier (fast, balanced, quality)")
    cmp.add_argument("-o", "--output", metavar="FILE.png|FILE.html",
                     help="a PNG sheet or a self-contained HTML page with a slider and zoom "
                          "(default: INPUT_compare.png)")
    cmp.add_argument("--overwrite", "-y", action="store_true", help="replace an existing output")
    _common(cmp, progress=False)

    models = sub.add_parser("models", help="list the bundled models")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.add_argument("--no-timing", action="store_true",
                        help="skip measuring each model's speed on this CPU")
    _common(models, progress=False)
    return p


def _model_args(p: argparse.ArgumentParser, batch_help: str) -> argparse._ArgumentGroup:
    """The model options upscale and live share (one definition, so their names, choices and
    defaults cannot drift apart); each command adds its own to the group returned."""
    m = p.add_argument_group("model")
    m.add_argument("--model", help="bundled model name (see 'vsr models') or path to .onnx")
    m.add_argument("--scale", type=int, choices=(2, 3, 4), help="pick the bundled model of this scale")
    m.add_argument("--quality", choices=TIERS, help="pick the bundled model of this tier with "
                   "--scale: fast, balanced (default) or quality ('vsr models' lists them)")
    m.add_argument("--degrade", choices=DEGRADATIONS, help="pick the bundled model trained for this "
                   "input: clean (default) or video, for input an encoder has already damaged "
                   "(streams, downloads, phone clips; the *_video models)")
    m.add_argument("--device", choices=[x.value for x in Device], default="auto")
    m.add_argument("--batch", type=_batch, default=0, metavar="N|auto", help=batch_help)
    m.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    m.add_argument("--precision", choices=[x.value for x in Precision], default="auto",
                   help="model arithmetic (default auto: fp16 on CUDA, fp32 on the CPU)")
    return m


def _encoding_args(p: argparse.ArgumentParser, crf: int, preset: str) -> None:
    """Output encoding options; only the defaults differ (live favours speed over size)."""
    e = p.add_argument_group("output encoding")
    e.add_argument("--codec", help="video encoder (default libx264, or the container's own "
                   "where it cannot hold H.264: VP9 for .webm)")
    e.add_argument("--crf", type=int, default=crf, help=f"quality for encoders with CRF (default {crf})")
    e.add_argument("--preset", default=preset, help=f"encoder preset (default {preset})")
    e.add_argument("--pix-fmt", help="output pixel format (default: the input's bit depth and "
                   "chroma layout where the encoder takes them, else yuv420p)")
    e.add_argument("--square-pixels", action="store_true",
                   help="resample non-square pixels to square ones (width x SAR) instead of "
                        "carrying the pixel aspect ratio, for players that ignore it")
    e.add_argument("--width", type=_positive, metavar="W",
                   help="output width: the model's output resampled to it; alone, the height "
                        "follows the aspect ratio")
    e.add_argument("--height", type=_positive, metavar="H",
                   help="output height, e.g. 1080; alone, the width follows the aspect ratio. "
                        "Beyond the model's scale the rest is bicubic")
    e.add_argument("--format", help="container format, required for - (e.g. matroska, mpegts, nut)")
    e.add_argument("--codec-option", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="extra encoder option (repeatable)")
    e.add_argument("--container-option", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="extra muxer option, e.g. movflags=+faststart")
    e.add_argument("--no-audio", action="store_true", help="drop audio and subtitle streams")
    e.add_argument("--color", choices=[x.value for x in ColorPath], default=ColorPath.AUTO.value,
                   help="colour handling: native 4:2:0 planes when input and output allow "
                        "(auto, the default), or the model card's OpenCV YCrCb round trip")


def _input_args(p: argparse.ArgumentParser, format_help: str) -> argparse._ArgumentGroup:
    i = p.add_argument_group("input")
    i.add_argument("--input-format", help=format_help)
    i.add_argument("--input-option", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="demuxer/device/protocol option (repeatable), "
                   "e.g. video_size=640x480")
    i.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse input frames larger than this many pixels "
                        f"(default {DEFAULT_MAX_PIXELS}, DCI 4K; 0: no limit)")
    i.add_argument("--on-error", choices=[x.value for x in OnError], default=OnError.SKIP.value,
                   help="damaged input: skip what cannot be decoded and report it (default), "
                        "or stop at the first damage with exit 1")
    return i


def _batch_args(p: argparse.ArgumentParser) -> None:
    b = p.add_argument_group("many inputs")
    b.add_argument("--output-dir", metavar="DIR",
                   help="write NAME_x3.EXT (images: .png) for every INPUT into DIR (created if "
                        "missing); a FOLDER input means its video and image files")
    b.add_argument("--recursive", "-r", action="store_true",
                   help="also take the files in a FOLDER's sub-folders (their outputs go to the "
                        "same sub-folders of DIR)")
    b.add_argument("--skip-existing", action="store_true",
                   help="skip files whose output exists (vsr only ever renames finished "
                        "outputs into place): re-run an interrupted folder to resume it")
    b.add_argument("--fail-fast", action="store_true",
                   help="stop at the first file that fails (default: report it, go on)")


def _scale_out_args(p: argparse.ArgumentParser) -> None:
    so = p.add_argument_group("scale-out (a file split at keyframes over many workers; "
                               "any of these turns it on)")
    so.add_argument("--segments", type=_positive, metavar="N",
                    help="split into N segments (cut at the nearest keyframes)")
    so.add_argument("--segment-seconds", type=float, metavar="S", help="or segments of about S seconds")
    so.add_argument("--workers", type=_positive, metavar="W",
                    help="workers (default: every GPU slot of the Ray cluster, or its CPUs)")
    so.add_argument("--gpus-per-worker", type=float, metavar="G",
                    help="GPUs per Ray worker; 0.5 puts two workers on each card (default 1, or 0 "
                         "without GPUs)")
    so.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="C",
                    help="CPUs per Ray worker (default 1)")
    so.add_argument("--ray-address", metavar="ADDR",
                    help="join a Ray cluster: auto, or ray://HEAD:10001 (default: a local Ray)")
    so.add_argument("--executor", choices=("auto", "ray", "local"), default="auto",
                    help="where segments run: ray, or local threads in this process (default "
                         "auto: Ray for more than one segment)")
    so.add_argument("--work-dir", metavar="DIR",
                    help="parts and manifest (default OUTPUT.vsr-work; shared storage on a cluster)")
    resume = so.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true",
                        help="continue the job in the work directory (same input and settings)")
    resume.add_argument("--restart", action="store_true",
                        help="delete the work directory's job and start over")
    so.add_argument("--keep-work", action="store_true", help="keep parts and manifest after the join")


def _common(p: argparse.ArgumentParser, progress: bool = True) -> None:
    if progress:
        p.add_argument("--progress", choices=[m.value for m in ProgressStyle], default="auto",
                       help="bar on a terminal (auto), bar, json lines on stderr, or none")
    p.add_argument("--quiet", "-q", action="store_true", help="only errors")
    p.add_argument("--verbose", "-v", action="store_true", help="more log detail")
    p.add_argument("--debug", action="store_true", help="show tracebacks for all errors")


def main(argv: list[str] | None = None, stderr: TextIO | None = None) -> int:
    """Run the CLI; returns the exit status instead of exiting (tests call it directly)."""
    err = stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse prints its own usage message
        return int(exc.code or 0) if exc.code in (0, None) else ExitStatus.USAGE
    _configure_logging(args, err)
    try:
        with interrupts.handled() as signals:
            status = _command(args, err, signals)
            signals.check()  # a signal whose exception was lost (see vsr.pipeline.interrupts)
            return status
    except VsrError as exc:
        if args.debug:
            traceback.print_exc(file=err)
        err.write(f"vsr: {exc}\n")
        if exc.hint:
            err.write(f"hint: {exc.hint}\n")
        return exc.exit_status
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        err.write("vsr: aborted; the recording so far was closed\n" if args.command == "live"
                  else "vsr: interrupted; partial output removed\n")
        return ExitStatus.TERMINATED if signum == signal.SIGTERM else ExitStatus.INTERRUPTED
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that cannot fail too.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        if args.command in ("info", "models"):
            return ExitStatus.OK  # `vsr models | head` is not an error
        err.write("vsr: output pipe closed by the reader\n")
        return ExitStatus.ERROR


def _command(args: argparse.Namespace, err: TextIO, signals: interrupts.Interrupts) -> int:
    if args.command == "upscale":
        return _upscale(args, err, signals)
    if args.command == "live":
        return _live(args, err, signals)
    if args.command == "info":
        return _info(args)
    if args.command == "compare":
        return _compare(args, err)
    return _models(args)


def _checked(events: Iterator[T], signals: interrupts.Interrupts) -> Iterator[T]:
    """`events`, raising at each one the Interrupted of a signal that was lost on its way."""
    for e in events:
        signals.check()
        yield e


def _configure_logging(args: argparse.Namespace, err: TextIO) -> None:
    level = logging.ERROR if args.quiet else logging.DEBUG if args.verbose else logging.WARNING
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("vsr: %(message)s"))
    root = logging.getLogger("vsr")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _upscale(args: argparse.Namespace, err: TextIO, signals: interrupts.Interrupts) -> int:
    from ..media.output import default_output
    from ..model.load import load
    from .progress import plural, show, stats_record

    if args.output_dir is not None:
        return _upscale_many(args, err, signals)
    if len(args.inputs) > 2:
        raise UsageError(f"{len(args.inputs)} inputs need --output-dir DIR (only 'vsr upscale "
                         "INPUT OUTPUT' names its output)")
    url, output = args.inputs[0], (args.inputs[1] if len(args.inputs) == 2 else None)
    if os.path.isdir(url):
        raise UsageError(f"input '{url}' is a folder", hint="pass --output-dir DIR to upscale "
                         "the video and image files in it")
    if output is not None and output != "-" and os.path.isdir(output):
        raise SinkError(f"output '{output}' is a directory",
                        hint="to write into a folder, pass --output-dir")
    upscaler = load(_model_options(args))
    if output is None:
        if url == "-":
            raise UsageError("an OUTPUT is required when reading standard input")
        output = default_output(url, upscaler.scale)
    if args.skip_existing and output != "-" and "://" not in output and os.path.exists(output):
        if not args.quiet:
            err.write(f"vsr: skipped {url}: '{output}' exists\n")
        return ExitStatus.OK
    pipeline = _open_job(args, url, output, upscaler, _scale_out_requested(args), args.work_dir)
    style = _progress_style(args, err)
    log.info("%s -> %s (x%d)", url, output, pipeline.upscaler.scale)
    try:
        show(_checked(pipeline.progress(), signals), style, err)
    finally:
        pipeline.close()  # interrupted: stop what runs, remove the temporary file
    stats = pipeline.stats()
    damage = _damage_report(stats)
    if damage:
        log.warning("%s", damage)
    if style is ProgressStyle.JSON:
        err.write(json.dumps(stats_record(stats)) + "\n")
    elif not args.quiet:
        extra = f", {plural(stats.segments, 'segment')}" if stats.segments else ""
        err.write(f"vsr: {plural(stats.frames, 'frame')} {stats.input_size[0]}x{stats.input_size[1]} -> "
                  f"{stats.output_size[0]}x{stats.output_size[1]} in {stats.seconds:.1f}s "
                  f"({stats.fps:.1f} fps, {stats.model + ', ' if stats.model else ''}{stats.provider}"
                  f"{' ' + stats.precision if stats.precision else ''}){extra} -> {stats.output}\n")
    return ExitStatus.OK


def _progress_style(args: argparse.Namespace, err: TextIO) -> ProgressStyle:
    """--progress as drawn on `err`: --quiet turns the automatic bar off (a --progress asked
    for by name stays)."""
    from .progress import resolve_style

    asked = ProgressStyle(args.progress)
    if args.quiet and asked is ProgressStyle.AUTO:
        return ProgressStyle.NONE
    return resolve_style(asked, err)


def _model_options(args: argparse.Namespace) -> ModelOptions:
    """The ModelOptions of the options `_model_args` defines, for upscale and live alike (live
    has no --tile: whole frames)."""
    return ModelOptions(model=args.model, scale=args.scale, device=Device(args.device),
                        batch=args.batch, tile=getattr(args, "tile", 0), threads=args.threads,
                        precision=Precision(args.precision), quality=args.quality,
                        degrade=args.degrade)


def _open_job(args: argparse.Namespace, url: str, output: str, upscaler: Any, scale_out: bool,
              work_dir: str | None, label: str = "") -> Run:
    """The Pipeline (or, for --segments and friends, the ScaleOutJob) upscaling one file with
    the already loaded `upscaler`; warns (once, prefixed by `label`) if its output is huge."""
    from ..pipeline.pipeline import Pipeline
    from .limits import large_output_warning

    source = SourceOptions(url, format=args.input_format, options=dict(args.input_option),
                           max_frames=args.frames, max_pixels=args.max_pixels,
                           start=args.start, duration=args.duration)
    model = _model_options(args)
    sink = _sink_options(args, output)
    job: Run
    if scale_out:
        from ..scaleout import ScaleOutJob, ScaleOutOptions

        options = ScaleOutOptions(
            segments=args.segments, segment_seconds=args.segment_seconds, workers=args.workers,
            gpus_per_worker=args.gpus_per_worker, cpus_per_worker=args.cpus_per_worker,
            ray_address=args.ray_address,
            executor=args.executor, work_dir=work_dir, resume=args.resume,
            restart=args.restart, keep_work=args.keep_work)
        job = ScaleOutJob(source, model, sink, options, on_error=OnError(args.on_error),
                          color=ColorPath(args.color), upscaler=upscaler)
    else:
        job = Pipeline(source, model, sink, upscaler=upscaler, on_error=OnError(args.on_error),
                       color=ColorPath(args.color))
    v = job.info.video
    warning = large_output_warning(v.width, v.height, job.upscaler.scale, job.batch)
    if warning:
        log.warning("%s%s", label, warning)
    return job


def _upscale_many(args: argparse.Namespace, err: TextIO, signals: interrupts.Interrupts) -> int:
    """`vsr upscale A B FOLDER ... --output-dir DIR`: one model, the files one after another
    (vsr.app.batch), a failure reported and passed over (unless --fail-fast), exit 1 if any failed."""
    from ..model.load import load
    from .batch import BatchItem, BatchProgress, FileResult, Status, expand, plan, run_batch
    from .progress import show_batch

    out_dir = Path(args.output_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--output-dir '{out_dir}' is a file, not a folder")
    found = expand(args.inputs, args.recursive)
    upscaler = load(_model_options(args))
    items = plan(found, out_dir, upscaler.scale)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"cannot create output folder '{out_dir}': {exc.strerror or exc}") from exc
    scale_out = _scale_out_requested(args)

    def open_job(item: BatchItem) -> Any:
        try:
            item.output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create output folder '{item.output.parent}': "
                            f"{exc.strerror or exc}") from exc
        work_dir = (str(Path(args.work_dir) / f"{item.output.name}.vsr-work")
                    if args.work_dir else None)
        log.info("%s -> %s (x%d)", item.input, item.output, upscaler.scale)
        return _open_job(args, item.input, str(item.output), upscaler,
                         scale_out and not item.is_image, work_dir, label=f"{item.input}: ")

    results: list[FileResult] = []

    def collect(events: Iterator[BatchProgress | FileResult]) -> Iterator[BatchProgress | FileResult]:
        for e in events:
            if isinstance(e, FileResult):
                results.append(e)
                damage = _damage_report(e.stats) if e.stats else ""
                if damage:
                    log.warning("%s: %s", e.item.input, damage)
                if e.status is Status.FAILED:
                    log.info("%s failed: %s", e.item.input, e.error)
            yield e

    style = _progress_style(args, err)
    t0 = time.monotonic()
    events = run_batch(items, open_job, skip_existing=args.skip_existing, fail_fast=args.fail_fast)
    try:
        show_batch(collect(_checked(events, signals)), style, err)
    except KeyboardInterrupt:
        events.close()  # the file in progress stops and its temporary file goes, now
        _batch_summary(args, err, style, len(items), results, time.monotonic() - t0, True)
        raise
    _batch_summary(args, err, style, len(items), results, time.monotonic() - t0, False)
    failed = any(r.status is Status.FAILED for r in results)
    return ExitStatus.ERROR if failed else ExitStatus.OK


def _batch_summary(args: argparse.Namespace, err: TextIO, style: ProgressStyle, total: int,
                   results: list[Any], seconds: float, interrupted: bool) -> None:
    """One line per failed file, then the totals (a JSON "summary" record with --progress json)."""
    from .batch import Status, tally
    from .progress import plural

    counts = tally(results)
    frames = sum(r.frames for r in results if r.status is Status.DONE)
    unfinished = total - len(results)
    if style is ProgressStyle.JSON:
        err.write(json.dumps({
            "event": "summary", "files": total, **{s.value: counts[s] for s in Status},
            "unfinished": unfinished, "frames": frames, "seconds": round(seconds, 3),
            "output_dir": args.output_dir, "interrupted": interrupted}) + "\n")
        return
    for r in results:
        if r.status is Status.FAILED:
            err.write(f"vsr: failed {r.item.input}: {r.error}\n")
    if args.quiet:
        return
    rest = ""
    if unfinished:
        rest = (f", {unfinished} not finished (interrupted)" if interrupted
                else f", {unfinished} not started (--fail-fast)")
    fps = frames / seconds if seconds > 0 else 0.0
    err.write(f"vsr: {plural(total, 'file')}: {counts[Status.DONE]} done, "
              f"{counts[Status.FAILED]} failed, {counts[Status.SKIPPED]} skipped{rest}; "
              f"{plural(frames, 'frame')} in {seconds:.1f}s ({fps:.1f} fps) -> {args.output_dir}\n")


def _sink_options(args: argparse.Namespace, url: str) -> SinkOptions:
    """The output options `upscale` and `live` share."""
    return SinkOptions(url, format=args.format, codec=args.codec, crf=args.crf,
                       preset=args.preset, pix_fmt=args.pix_fmt,
                       codec_options=dict(args.codec_option),
                       container_options=dict(args.container_option),
                       overwrite=args.overwrite, audio="none" if args.no_audio else "auto",
                       square_pixels=args.square_pixels, width=args.width, height=args.height)


def _scale_out_requested(args: argparse.Namespace) -> bool:
    return any(getattr(args, name) not in (None, False) for name in (
        "segments", "segment_seconds", "workers", "gpus_per_worker", "ray_address", "work_dir",
        "resume", "restart", "keep_work")) or args.executor != "auto" or args.cpus_per_worker != 1.0


def _live(args: argparse.Namespace, err: TextIO, signals: interrupts.Interrupts) -> int:
    from ..model.load import load
    from ..options import LiveOptions, Mode
    from ..pipeline.live import DEVICE_FORMATS, is_network
    from ..pipeline.pipeline import Pipeline
    from .progress import resolve_style, show, stats_record
    from .window import with_window

    if args.output is None and not args.preview:
        raise UsageError("nothing to do: give an OUTPUT, --preview, or both")
    if args.input.startswith("/dev/video") and args.input_format is None:
        args.input_format = "v4l2"
    if (args.input_format in DEVICE_FORMATS and args.input.startswith("/dev/")
            and not os.path.exists(args.input)):
        raise SourceError(f"cannot open input {args.input!r}: no such device",
                          hint="list cameras with 'v4l2-ctl --list-devices' (or ls /dev/video*)")
    timeout = args.stall_timeout if is_network(args.input) else 30.0
    source = SourceOptions(args.input, format=args.input_format, options=dict(args.input_option),
                           max_pixels=args.max_pixels, timeout=timeout)
    model = _model_options(args)
    upscaler = load(model)
    sink = _sink_options(args, args.output) if args.output is not None else None
    live = LiveOptions(max_latency=args.max_latency / 1000.0, duration=args.duration,
                       reconnect=args.reconnect, preview=args.preview,
                       preview_host=args.preview_host, preview_port=args.preview_port)
    pipeline = Pipeline(source, model, sink, upscaler=upscaler, mode=Mode.LIVE, live=live,
                        color=ColorPath(args.color), on_error=OnError(args.on_error))
    signals.graceful = pipeline.stop
    style = ProgressStyle.JSON if args.stats == "json" else resolve_style(ProgressStyle.AUTO, err)
    if args.quiet:
        style = ProgressStyle.NONE
    snapshots = pipeline.progress()
    if pipeline.preview is not None:
        snapshots = with_window(snapshots, pipeline.preview)
    try:
        show(snapshots, style, err, every=1.0)
    finally:
        pipeline.close()
    stats = pipeline.stats()
    if args.stats == "json":
        err.write(json.dumps(stats_record(stats)) + "\n")
    elif not args.quiet:
        lat = stats.latency
        lat_text = (f", latency p50 {lat['p50'] * 1000:.0f} / p95 {lat['p95'] * 1000:.0f} / "
                    f"p99 {lat['p99'] * 1000:.0f} ms") if lat else ""
        steady = stats.steady
        after = (f"; {steady.dropped} of the {steady.frames_in} after start-up"
                 if steady and steady.frames_in else "")
        err.write(f"vsr: {stats.frames} of {stats.frames_in} frames upscaled "
                  f"({stats.dropped} dropped to keep up{after}){lat_text}, {stats.seconds:.1f}s, "
                  f"{stats.provider} -> {stats.output or 'preview'}\n")
        hint = keep_up_hint(stats, upscaler.metadata.get("vsr.tier", ""))
        if hint:
            err.write(f"vsr: hint: {hint}\n")
    if stats.input_lost:
        err.write(f"vsr: {stats.input_lost}; the output holds what arrived before\n")
        return ExitStatus.ERROR
    if signals.received:
        return ExitStatus.TERMINATED if signals.received == signal.SIGTERM else ExitStatus.INTERRUPTED
    return ExitStatus.OK


#: Share of a live run's frames dropped above which the run ends with a hint, over the whole
#: run: start-up alone drops about 15 frames (the stream probed, the first frames through:
#: 0.6 s at 25 fps), 12% of a 5-second run; a model too dear for the machine drops half or
#: more (bench_live.py).
KEEP_UP_SHARE = 0.2
#: The same after start-up (`Stats.steady`), where a model that keeps up drops none
#: (bench_live.py's real-time bar is under 2%), over at least this many frames.
STEADY_KEEP_UP_SHARE, STEADY_MIN_FRAMES = 0.05, 50


def keep_up_hint(stats: Stats, tier: str) -> str:
    """What to try when a live run dropped much of its input ("" when it kept up).

    Why: dropping frames is live mode working as designed, so nothing fails, and a user who
    sees "1,200 dropped" may not know that a cheaper model exists; on two CPU cores the
    default (balanced) tier keeps up to about 320x180 input, the fast tier to 480x270.
    Judged on the steady state when the run had enough of one (start-up's drops are not the
    model's fault), else on the whole run with a margin for them. `tier` is the model's
    `vsr.tier` metadata ("" for a model without it).
    """
    steady = stats.steady
    if steady is not None and steady.frames_in >= STEADY_MIN_FRAMES:
        if steady.dropped_share <= STEADY_KEEP_UP_SHARE:
            return ""
        share, when = steady.dropped_share, " after start-up"
    elif stats.frames_in <= 0 or stats.dropped <= KEEP_UP_SHARE * stats.frames_in:
        return ""
    else:
        share, when = stats.dropped / stats.frames_in, ""
    remedy = "a smaller input" if tier == "fast" else "--quality fast (a cheaper model) or a smaller input"
    return (f"{round(100 * share)}% of the frames were dropped{when} to keep up with the input; "
            f"{remedy} drops fewer on this machine")


def _damage_report(stats: Stats) -> str:
    """One line on what was skipped or concealed, with where (empty for a clean input)."""
    parts = []
    if stats.decode_errors:
        parts.append(f"{stats.decode_errors} undecodable packet(s) skipped")
    if stats.corrupt_frames:
        parts.append(f"{stats.corrupt_frames} frame(s) with concealed damage kept")
    if not parts:
        return ""
    times = ", ".join(f"{t:.2f}s" for t in stats.damage_times[:10])
    more = f" and {len(stats.damage_times) - 10} more" if len(stats.damage_times) > 10 else ""
    where = f" at {times}{more}" if times else ""
    return f"input damage: {' and '.join(parts)}{where}"


def _info(args: argparse.Namespace) -> int:
    """`vsr info`: the work is in vsr.app.info; this only maps options and prints."""
    from .info import InfoOptions, report, text

    model = ModelOptions(model=args.model, scale=args.scale, quality=args.quality, device=Device.CPU)
    picture = SinkOptions("-", width=args.width, height=args.height, square_pixels=args.square_pixels)
    rec = report(InfoOptions(args.input, model, args.codec, args.keyframes, args.count, picture))
    print(json.dumps(rec, indent=2) if args.json else "\n".join(text(rec)))
    return ExitStatus.OK


def _compare(args: argparse.Namespace, err: TextIO) -> int:
    """`vsr compare`: the work is in vsr.app.compare; this only maps options and says what it wrote."""
    from .compare import CompareOptions, run

    model = ModelOptions(model=args.model, scale=args.scale, quality=args.quality,
                         device=Device(args.device))
    result = run(CompareOptions(args.input, args.output, args.at, model, args.against, args.overwrite))
    if not args.quiet:
        h, w = result.panels[0].image.shape[:2]
        when = f" at {result.seconds:.2f}s" if result.seconds is not None else ""
        r = result.region
        err.write(f"vsr: {' | '.join(p.label for p in result.panels)}{when}, {w}x{h} each, detail "
                  f"{r.size}x{r.size} at {r.x},{r.y} -> {result.output}\n")
    return ExitStatus.OK


def _models(args: argparse.Namespace) -> int:
    from ..model.cost import ms_per_output_megapixel, timing_size
    from ..model.load import OnnxUpscaler
    from ..model.registry import bundled_models, default_for

    models = bundled_models()
    default = default_for()
    timing: dict[str, float | None] = {}
    for m in models:
        if args.no_timing:
            timing[m.name] = None
            continue
        try:  # one CPU thread each: the same conditions for every model, quick to measure
            up = OnnxUpscaler(m.path, Device.CPU, threads=1)
            timing[m.name] = round(ms_per_output_megapixel(up, timing_size(m.macs_per_pixel)), 1)
        except VsrError:
            timing[m.name] = None
    if args.json:
        print(json.dumps([{"name": m.name, "path": str(m.path), "scale": m.scale, "tier": m.tier,
                           "macs_per_pixel": round(m.macs_per_pixel), "parameters": m.parameters,
                           "degradation": m.degradation, "precision": m.precision, "psnr": m.psnr,
                           "ms_per_output_mp_cpu": timing[m.name],
                           "default": default is not None and m.path == default.path}
                          for m in models], indent=2))
        return ExitStatus.OK
    print(f"  {'name':<18} {'scale':>5} {'tier':<8} {'MACs/px':>8} {'params':>7}  {'precision':<9} "
          f"{'trained on':<10} {'PSNR Set5 / Set14':<17} {'ms/MP':>6}")
    for m in models:
        psnr = " / ".join(f"{m.psnr[k]:.2f}" for k in ("Set5", "Set14") if k in m.psnr) or "-"
        mark = "*" if default is not None and m.path == default.path else " "
        ms = timing[m.name]
        print(f"{mark} {m.name:<18} {'x' + str(m.scale):>5} {m.tier:<8} {m.macs_per_pixel:>8,.0f} "
              f"{m.parameters:>7}  {m.precision:<9} {m.degradation:<10} {psnr:<17} "
              f"{'-' if ms is None else f'{ms:.0f}':>6}")
    print("(* the default; --scale picks x2/x4, --quality the tier, --degrade video the models trained "
          "on video. MACs per input pixel; PSNR in dB under the shared protocol; ms per output "
          "megapixel on this CPU, one thread)")
    missing = missing_tiers(models)
    if missing:
        print(f"not bundled in this version: {', '.join(missing)} (--quality with --scale says so "
              "when asked for one)")
    return ExitStatus.OK


def missing_tiers(models: list[BundledModel]) -> list[str]:
    """The "tier xN" pairs of the family that no bundled float model covers."""
    have = {(m.tier, m.scale) for m in models if m.precision == "fp32" and m.degradation == DEFAULT_DEGRADATION}
    return [f"{t} x{s}" for t in TIERS for s in (2, 3, 4) if (t, s) not in have]


def main_exit() -> None:
    """Console-script entry point."""
    interrupts.exiting_process()
    sys.exit(main())
