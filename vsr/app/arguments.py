"""vsr's command line, declared: every command, its options, their types and defaults.

Declared apart from what the commands do (`vsr.app.cli`) so that the job service checks a
job's options with the very same parser (`build_parser(raising=True)`): a bad value is the
same one-line message over HTTP as in a terminal.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from ..errors import UsageError
from ..model.registry import DEGRADATIONS, TIERS
from ..options import DEFAULT_MAX_PIXELS, ColorPath, Device, Engine, OnError, Precision, ProgressStyle
from ..version import __version__


def key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k, v


def batch_size(text: str) -> int:
    """--batch: 'auto' (0) or a positive number."""
    return 0 if text == "auto" else positive(text)


def time_value(text: str) -> float:
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


def length(text: str) -> float:
    """--duration: a `time_value` above 0."""
    seconds = time_value(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return seconds


def positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors about one option's value (`--scale 5`) are one line
    naming the choices, not the whole usage; other errors keep the usage."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument "):
            self.exit(UsageError.exit_status, f"{self.prog}: {message}\n")
        super().error(message)


class _RaisingParser(_Parser):
    """The same parser for callers that are not a terminal (the job service): an error is a
    `UsageError` with argparse's one-line message, never a usage text on stderr and an exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError((message or "invalid arguments").strip())


def build_parser(raising: bool = False) -> argparse.ArgumentParser:
    """vsr's whole command line. `raising`: errors raise `UsageError` instead of exiting (the
    job service checks a job's options with the very parser the CLI uses)."""
    parser_class = _RaisingParser if raising else _Parser
    p = parser_class(
        prog="vsr",
        description="Streaming video super-resolution "
        "(ESPCN on luma, bicubic chroma) with PyAV and onnxruntime.",
    )
    p.add_argument("--version", action="version", version=f"vsr {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=parser_class)

    up = sub.add_parser(
        "upscale",
        help="upscale video or image files, URLs or a pipe",
        usage="%(prog)s [options] INPUT [OUTPUT]\n"
        "       %(prog)s [options] INPUT|FOLDER ... --output-dir DIR",
    )
    up.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="path, URL, or - for standard input; then OUTPUT: a path or - for "
        "standard output (default: INPUT_x3.ext; images become .png). With "
        "--output-dir: any number of files and folders",
    )
    m = model_args(up, batch_help="frames per model call (default auto: 1 on the CPU, measured on a GPU)")
    m.add_argument(
        "--tile",
        type=int,
        default=0,
        help="run dynamic models in tiles of this size (input pixels; 0: whole frames)",
    )
    encoding_args(up, crf=18, preset="medium")
    i = input_args(up, format_help="force the demuxer (e.g. mpegts)")
    i.add_argument("--frames", type=positive, help="stop after this many frames")
    i.add_argument(
        "--start",
        type=time_value,
        default=0.0,
        metavar="TIME",
        help="begin at this time (seconds or [HH:]MM:SS[.ms] after the first frame, as "
        "'vsr compare --at'); audio and subtitles are trimmed with the video",
    )
    i.add_argument(
        "--duration",
        type=length,
        metavar="TIME",
        help="upscale this much of the input from --start (seconds or [HH:]MM:SS[.ms])",
    )
    up.add_argument("--overwrite", "-y", action="store_true", help="replace an existing output")
    batch_args(up)
    scale_out_args(up)
    common(up)

    lv = sub.add_parser("live", help="upscale a webcam or network stream in real time")
    lv.add_argument(
        "input",
        help="device (/dev/video0), URL (udp://, rtsp://, srt://, http://), file, or - for standard input",
    )
    lv.add_argument(
        "output",
        nargs="?",
        help="file (.mkv/.ts survive crashes; .mp4 is finalised "
        "on exit), URL (udp://, tcp://, rtmp://, srt://), or - (needs --format)",
    )
    model_args(lv, batch_help="largest batch (default auto); it adapts to --max-latency")
    r = lv.add_argument_group("real time")
    r.add_argument(
        "--max-latency",
        type=float,
        default=500,
        metavar="MS",
        help="latency target in milliseconds from arrival to output (default 500)",
    )
    r.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="stop after S seconds of wall-clock time, waits for the input included",
    )
    r.add_argument(
        "--reconnect",
        type=float,
        default=10,
        metavar="S",
        help="keep retrying a network input that drops for S seconds (default 10; 0: off); "
        "one that does not come back ends the run with exit 1",
    )
    r.add_argument(
        "--stall-timeout",
        type=float,
        default=5,
        metavar="S",
        help="a network input silent for S seconds counts as dropped (default 5)",
    )
    r.add_argument(
        "--output-reconnect",
        type=float,
        default=0,
        metavar="S",
        help="a network OUTPUT whose receiver goes away is reopened for up to S seconds "
        "(default 0: the run ends, with one line); meanwhile frames are not sent",
    )
    r.add_argument(
        "--record",
        metavar="FILE",
        help="with a network OUTPUT: also record the stream to this local file, kept "
        "finished if the network output goes away",
    )
    r.add_argument(
        "--preview", action="store_true", help="serve a live MJPEG preview page (http://127.0.0.1:8080/)"
    )
    r.add_argument("--preview-host", default="127.0.0.1", help="preview address (default 127.0.0.1)")
    r.add_argument("--preview-port", type=int, default=8080, help="preview port (0: any free port)")
    r.add_argument(
        "--stats",
        choices=("text", "json"),
        default="text",
        help="final statistics as a text line (default) or a JSON record on stderr; "
        "json also prints a JSON line every second",
    )
    encoding_args(lv, crf=23, preset="veryfast")
    input_args(lv, format_help="force the demuxer/device (v4l2, mpegts, rtsp, ...)")
    lv.add_argument("--overwrite", "-y", action="store_true", help="replace an existing output file")
    common(lv, progress=False)

    info = sub.add_parser("info", help="describe an input and a model")
    info.add_argument("input")
    info.add_argument("--model", help="model to describe (default: the bundled x3)")
    info.add_argument("--scale", type=int, choices=(2, 3, 4))
    info.add_argument("--quality", choices=TIERS, help="the bundled model of this tier with --scale")
    info.add_argument(
        "--codec",
        default="libx264",
        help="predict the output for this encoder (default libx264, MP4's): its pixel "
        "format, and its size where it needs even sizes",
    )
    info.add_argument("--width", type=positive, metavar="W", help="the output width to predict for")
    info.add_argument("--height", type=positive, metavar="H", help="the output height to predict for")
    info.add_argument(
        "--square-pixels",
        action="store_true",
        help="predict the output with non-square pixels resampled to square ones",
    )
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument(
        "--keyframes",
        action="store_true",
        help="also scan the video's packets for where it can be cut into segments "
        "(reads the whole file; no decoding)",
    )
    info.add_argument(
        "--count",
        action="store_true",
        help="decode the whole video to report its real frame count and duration "
        "(headers can be wrong, e.g. an MP4 edit list)",
    )
    common(info, progress=False)

    cmp = sub.add_parser("compare", help="one frame as bicubic | vsr side by side (PNG or HTML page)")
    cmp.add_argument("input", help="video or image")
    cmp.add_argument(
        "--at", type=float, metavar="SECONDS", help="which frame of a video (default: the middle)"
    )
    cmp.add_argument("--model", help="bundled model name (see 'vsr models') or path to .onnx")
    cmp.add_argument("--scale", type=int, choices=(2, 3, 4), help="pick the bundled model of this scale")
    cmp.add_argument("--quality", choices=TIERS, help="pick the bundled model of this tier with --scale")
    cmp.add_argument("--device", choices=[x.value for x in Device], default="auto")
    engine_args(cmp)
    cmp.add_argument(
        "--against",
        metavar="NAME|PATH|TIER",
        help="add a third panel: another model, or a tier (fast, balanced, quality)",
    )
    cmp.add_argument(
        "-o",
        "--output",
        metavar="FILE.png|FILE.html",
        help="a PNG sheet or a self-contained HTML page with a slider and zoom (default: INPUT_compare.png)",
    )
    cmp.add_argument("--overwrite", "-y", action="store_true", help="replace an existing output")
    common(cmp, progress=False)

    srv = sub.add_parser(
        "serve", help="run a job service: an HTTP API, a durable queue, metrics and a web page"
    )
    srv.add_argument(
        "--root",
        required=True,
        metavar="DIR",
        help="the folder jobs read from and write to; nothing outside it is reachable",
    )
    srv.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs a token)",
    )
    srv.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free port)")
    srv.add_argument("--jobs", type=positive, default=1, metavar="N", help="jobs run at once (default 1)")
    srv.add_argument("--state", metavar="PATH", help="the jobs database (default ROOT/.vsr/jobs.sqlite)")
    srv.add_argument(
        "--token-file",
        metavar="PATH",
        help="a file holding the bearer token every endpoint but /healthz needs (or set VSR_TOKEN)",
    )
    srv.add_argument(
        "--allow-urls",
        action="store_true",
        help="take http(s), rtmp, rtsp, srt, udp and tcp URLs as job inputs",
    )
    srv.add_argument(
        "--grace",
        type=float,
        default=30.0,
        metavar="S",
        help="on SIGTERM, seconds running jobs have to finish before they are queued again (default 30)",
    )
    srv.add_argument(
        "--max-connections",
        type=positive,
        default=256,
        metavar="N",
        help="open connections at once; more are closed as they arrive (default 256)",
    )
    srv.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds a connection has to send a whole request head (default 10)",
    )
    srv.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="run jobs with segments on this Ray cluster (default: in this process)",
    )
    model_args(
        srv,
        batch_help="most frames in one model call, merged from concurrent jobs "
        "(default auto: 8 on CUDA, 1 on the CPU)",
    )
    encoding_args(srv, crf=18, preset="medium")
    common(srv, progress=False)

    models = sub.add_parser("models", help="list the bundled models")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.add_argument(
        "--no-timing",
        action="store_true",
        help="skip measuring each model's speed and engine choice on this CPU",
    )
    common(models, progress=False)
    return p


def model_args(p: argparse.ArgumentParser, batch_help: str) -> argparse._ArgumentGroup:
    """The model options upscale and live share (one definition, so their names, choices and
    defaults cannot drift apart); each command adds its own to the group returned."""
    m = p.add_argument_group("model")
    m.add_argument("--model", help="bundled model name (see 'vsr models') or path to .onnx")
    m.add_argument("--scale", type=int, choices=(2, 3, 4), help="pick the bundled model of this scale")
    m.add_argument(
        "--quality",
        choices=TIERS,
        help="pick the bundled model of this tier with "
        "--scale: fast, balanced (default) or quality ('vsr models' lists them)",
    )
    m.add_argument(
        "--degrade",
        choices=DEGRADATIONS,
        help="pick the bundled model trained for this "
        "input: clean (default) or video, for input an encoder has already damaged "
        "(streams, downloads, phone clips; the *_video models)",
    )
    m.add_argument("--device", choices=[x.value for x in Device], default="auto")
    m.add_argument("--batch", type=batch_size, default=0, metavar="N|auto", help=batch_help)
    m.add_argument("--threads", type=int, default=0, help="model engine threads (0: all cores)")
    engine_args(m)
    m.add_argument(
        "--require-gpu",
        action="store_true",
        help="fail (exit 2) unless the model runs on a GPU (onnxruntime's CUDA "
        "provider): never fall back to the CPU silently",
    )
    return m


def engine_args(m: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """--engine and --precision, for upscale, live and compare (and the job service's jobs)."""
    m.add_argument(
        "--engine",
        choices=[x.value for x in Engine],
        default="auto",
        help="what runs the model (default auto: onnxruntime on CUDA; on the CPU the "
        "fastest of onnxruntime and OpenVINO that runs it exactly enough, measured "
        "once per model and CPU)",
    )
    m.add_argument(
        "--precision",
        choices=[x.value for x in Precision],
        default="auto",
        help="model arithmetic (default auto: fp16 on CUDA; on the CPU bf16 where it "
        "has bfloat16 units, the model keeps the quality bars in bf16 and it measured faster, "
        "else fp32; bf16 runs any float model in bfloat16)",
    )


def encoding_args(p: argparse.ArgumentParser, crf: int, preset: str) -> None:
    """Output encoding options; only the defaults differ (live favours speed over size)."""
    e = p.add_argument_group("output encoding")
    e.add_argument(
        "--codec",
        help="video encoder (default libx264, or the container's own "
        "where it cannot hold H.264: VP9 for .webm)",
    )
    e.add_argument("--crf", type=int, default=crf, help=f"quality for encoders with CRF (default {crf})")
    e.add_argument("--preset", default=preset, help=f"encoder preset (default {preset})")
    e.add_argument(
        "--pix-fmt",
        help="output pixel format (default: the input's bit depth and "
        "chroma layout where the encoder takes them, else yuv420p)",
    )
    e.add_argument(
        "--square-pixels",
        action="store_true",
        help="resample non-square pixels to square ones (width x SAR) instead of "
        "carrying the pixel aspect ratio, for players that ignore it",
    )
    e.add_argument(
        "--width",
        type=positive,
        metavar="W",
        help="output width: the model's output resampled to it; alone, the height follows the aspect ratio",
    )
    e.add_argument(
        "--height",
        type=positive,
        metavar="H",
        help="output height, e.g. 1080; alone, the width follows the aspect ratio. "
        "Beyond the model's scale the rest is bicubic",
    )
    e.add_argument("--format", help="container format, required for - (e.g. matroska, mpegts, nut)")
    e.add_argument(
        "--codec-option",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra encoder option (repeatable)",
    )
    e.add_argument(
        "--container-option",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra muxer option, e.g. movflags=+faststart",
    )
    e.add_argument("--no-audio", action="store_true", help="drop audio and subtitle streams")
    e.add_argument(
        "--color",
        choices=[x.value for x in ColorPath],
        default=ColorPath.AUTO.value,
        help="colour handling: native 4:2:0 planes when input and output allow "
        "(auto, the default), or the model card's OpenCV YCrCb round trip",
    )


def input_args(p: argparse.ArgumentParser, format_help: str) -> argparse._ArgumentGroup:
    i = p.add_argument_group("input")
    i.add_argument("--input-format", help=format_help)
    i.add_argument(
        "--input-option",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="demuxer/device/protocol option (repeatable), e.g. video_size=640x480",
    )
    i.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse input frames larger than this many pixels "
        f"(default {DEFAULT_MAX_PIXELS}, DCI 4K; 0: no limit)",
    )
    i.add_argument(
        "--on-error",
        choices=[x.value for x in OnError],
        default=OnError.SKIP.value,
        help="damaged input: skip what cannot be decoded and report it (default), "
        "or stop at the first damage with exit 1",
    )
    return i


def batch_args(p: argparse.ArgumentParser) -> None:
    b = p.add_argument_group("many inputs")
    b.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write NAME_x3.EXT (images: .png) for every INPUT into DIR (created if "
        "missing); a FOLDER input means its video and image files",
    )
    b.add_argument(
        "--recursive",
        "-r",
        action="store_true",
        help="also take the files in a FOLDER's sub-folders (their outputs go to the "
        "same sub-folders of DIR)",
    )
    b.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip files whose output exists (vsr only ever renames finished "
        "outputs into place): re-run an interrupted folder to resume it",
    )
    b.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first file that fails (default: report it, go on)",
    )


def scale_out_args(p: argparse.ArgumentParser) -> None:
    so = p.add_argument_group(
        "scale-out (a file split at keyframes over many workers; any of these turns it on)"
    )
    so.add_argument(
        "--segments", type=positive, metavar="N", help="split into N segments (cut at the nearest keyframes)"
    )
    so.add_argument("--segment-seconds", type=float, metavar="S", help="or segments of about S seconds")
    so.add_argument(
        "--workers",
        type=positive,
        metavar="W",
        help="workers (default: every GPU slot of the Ray cluster, or its CPUs)",
    )
    so.add_argument(
        "--gpus-per-worker",
        type=float,
        metavar="G",
        help="GPUs per Ray worker; 0.5 puts two workers on each card (default 1, or 0 without GPUs)",
    )
    so.add_argument(
        "--cpus-per-worker", type=float, default=1.0, metavar="C", help="CPUs per Ray worker (default 1)"
    )
    so.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="join a Ray cluster: auto, or ray://HEAD:10001 (default: a local Ray)",
    )
    so.add_argument(
        "--executor",
        choices=("auto", "ray", "local"),
        default="auto",
        help="where segments run: ray, or local threads in this process (default "
        "auto: Ray for more than one segment)",
    )
    so.add_argument(
        "--work-dir",
        metavar="DIR",
        help="parts and manifest (default OUTPUT.vsr-work; shared storage on a cluster)",
    )
    resume = so.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume",
        action="store_true",
        help="continue the job in the work directory (same input and settings)",
    )
    resume.add_argument(
        "--restart", action="store_true", help="delete the work directory's job and start over"
    )
    so.add_argument("--keep-work", action="store_true", help="keep parts and manifest after the join")


def common(p: argparse.ArgumentParser, progress: bool = True) -> None:
    if progress:
        p.add_argument(
            "--progress",
            choices=[m.value for m in ProgressStyle],
            default="auto",
            help="bar on a terminal (auto), bar, json lines on stderr, or none",
        )
    p.add_argument("--quiet", "-q", action="store_true", help="only errors")
    p.add_argument("--verbose", "-v", action="store_true", help="more log detail")
    p.add_argument("--debug", action="store_true", help="show tracebacks for all errors")
