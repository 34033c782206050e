"""Command line: argparse -> option dataclasses -> Pipeline; errors -> one line + exit status.

This is the only place that configures logging, prints tracebacks, or turns exceptions into
exit statuses (0 ok, 1 failure while processing, 2 usage or bad input, 130/143 interrupted).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
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
from typing import Any, TextIO, TypeVar

from ..errors import Interrupted, SinkError, SourceError, UsageError, VsrError
from ..frames import LiveStats, Stats
from ..model.registry import DEFAULT_DEGRADATION, TIERS, BundledModel
from ..options import (
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
from ..pipeline import interrupts
from .arguments import build_parser
from .jobs import model_options, open_job, scale_out_requested, sink_options

log = logging.getLogger("vsr")
T = TypeVar("T")


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    INTERRUPTED = 130  # 128 + SIGINT
    TERMINATED = 143  # 128 + SIGTERM


def main(argv: list[str] | None = None, stderr: TextIO | None = None) -> int:
    """Run the CLI; returns the exit status instead of exiting (tests call it directly)."""
    err = stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse prints its own usage message
        return int(exc.code or 0) if exc.code in (0, None) else ExitStatus.USAGE
    _configure_logging(args, err)
    try:
        if args.command == "serve":  # the server handles its signals itself: a drain, exit 0
            return _serve(args)
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
        err.write(
            "vsr: aborted; the recording so far was closed\n"
            if args.command == "live"
            else "vsr: interrupted; partial output removed\n"
        )
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


def _serve(args: argparse.Namespace) -> int:
    """`vsr serve`: the job service (vsr.app.serve) until SIGTERM or Ctrl-C drains it."""
    try:
        from .serve.jobspec import DEFAULT_DESTS
        from .serve.server import serve
        from .serve.service import ServeOptions
    except ImportError as exc:
        raise UsageError(
            f"vsr serve needs the 'serve' extra ({exc.name} is missing)",
            hint="pip install 'vsr[serve]' (FastAPI, uvicorn, prometheus-client)",
        ) from exc

    if not args.quiet and not args.verbose:
        logging.getLogger("vsr").setLevel(logging.INFO)  # a service logs each job's start and end
    token = os.environ.get("VSR_TOKEN") or None
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as exc:
            raise UsageError(f"cannot read --token-file '{args.token_file}': {exc.strerror or exc}") from exc
        if not token:
            raise UsageError(f"--token-file '{args.token_file}' is empty")
    defaults = {dest: getattr(args, dest) for dest in DEFAULT_DESTS}
    options = ServeOptions(
        Path(args.root),
        host=args.host,
        port=args.port,
        jobs=args.jobs,
        state=Path(args.state) if args.state else None,
        token=token,
        allow_urls=args.allow_urls,
        require_gpu=args.require_gpu,
        grace=args.grace,
        ray_address=args.ray_address,
        batch=args.batch,
        defaults=defaults,
        max_connections=args.max_connections,
        header_timeout=args.header_timeout,
    )
    return serve(options)


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
    from ..media.output_container import default_output
    from ..model.load import load, require_cuda
    from .progress import plural, show, stats_record

    if args.output_dir is not None:
        return _upscale_many(args, err, signals)
    if len(args.inputs) > 2:
        raise UsageError(
            f"{len(args.inputs)} inputs need --output-dir DIR (only 'vsr upscale "
            "INPUT OUTPUT' names its output)"
        )
    url, output = args.inputs[0], (args.inputs[1] if len(args.inputs) == 2 else None)
    if os.path.isdir(url):
        raise UsageError(
            f"input '{url}' is a folder",
            hint="pass --output-dir DIR to upscale the video and image files in it",
        )
    if output is not None and output != "-" and os.path.isdir(output):
        raise SinkError(f"output '{output}' is a directory", hint="to write into a folder, pass --output-dir")
    upscaler = load(model_options(args))
    if args.require_gpu:
        require_cuda(upscaler)
    if output is None:
        if url == "-":
            raise UsageError("an OUTPUT is required when reading standard input")
        output = default_output(url, upscaler.scale)
    if args.skip_existing and output != "-" and "://" not in output and os.path.exists(output):
        if not args.quiet:
            err.write(f"vsr: skipped {url}: '{output}' exists\n")
        return ExitStatus.OK
    pipeline = open_job(args, url, output, upscaler, scale_out_requested(args), args.work_dir)
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
        segments = stats.scale_out.segments if stats.scale_out else 0
        extra = f", {plural(segments, 'segment')}" if segments else ""
        err.write(
            f"vsr: {plural(stats.frames, 'frame')} {stats.input_size[0]}x{stats.input_size[1]} -> "
            f"{stats.output_size[0]}x{stats.output_size[1]} in {stats.seconds:.1f}s "
            f"({stats.fps:.1f} fps, {stats.model + ', ' if stats.model else ''}{stats.provider}"
            f"{' ' + stats.precision if stats.precision else ''}){extra} -> {stats.output}\n"
        )
    return ExitStatus.OK


def _progress_style(args: argparse.Namespace, err: TextIO) -> ProgressStyle:
    """--progress as drawn on `err`: --quiet turns the automatic bar off (a --progress asked
    for by name stays)."""
    from .progress import resolve_style

    asked = ProgressStyle(args.progress)
    if args.quiet and asked is ProgressStyle.AUTO:
        return ProgressStyle.NONE
    return resolve_style(asked, err)


def _upscale_many(args: argparse.Namespace, err: TextIO, signals: interrupts.Interrupts) -> int:
    """`vsr upscale A B FOLDER ... --output-dir DIR`: one model, the files one after another
    (vsr.app.batch), a failure reported and passed over (unless --fail-fast), exit 1 if any failed."""
    from ..model.load import load, require_cuda
    from .batch import BatchItem, BatchProgress, FileResult, Status, expand, plan, run_batch
    from .progress import show_batch

    out_dir = Path(args.output_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--output-dir '{out_dir}' is a file, not a folder")
    found = expand(args.inputs, args.recursive)
    upscaler = load(model_options(args))
    if args.require_gpu:
        require_cuda(upscaler)
    items = plan(found, out_dir, upscaler.scale)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"cannot create output folder '{out_dir}': {exc.strerror or exc}") from exc
    scale_out = scale_out_requested(args)

    def open_item(item: BatchItem) -> Any:
        try:
            item.output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(
                f"cannot create output folder '{item.output.parent}': {exc.strerror or exc}"
            ) from exc
        work_dir = str(Path(args.work_dir) / f"{item.output.name}.vsr-work") if args.work_dir else None
        log.info("%s -> %s (x%d)", item.input, item.output, upscaler.scale)
        return open_job(
            args,
            item.input,
            str(item.output),
            upscaler,
            scale_out and not item.is_image,
            work_dir,
            label=f"{item.input}: ",
        )

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
    events = run_batch(items, open_item, skip_existing=args.skip_existing, fail_fast=args.fail_fast)
    try:
        show_batch(collect(_checked(events, signals)), style, err)
    except KeyboardInterrupt:
        events.close()  # the file in progress stops and its temporary file goes, now
        _batch_summary(args, err, style, len(items), results, time.monotonic() - t0, True)
        raise
    _batch_summary(args, err, style, len(items), results, time.monotonic() - t0, False)
    failed = any(r.status is Status.FAILED for r in results)
    return ExitStatus.ERROR if failed else ExitStatus.OK


def _batch_summary(
    args: argparse.Namespace,
    err: TextIO,
    style: ProgressStyle,
    total: int,
    results: list[Any],
    seconds: float,
    interrupted: bool,
) -> None:
    """One line per failed file, then the totals (a JSON "summary" record with --progress json)."""
    from .batch import Status, tally
    from .progress import plural

    counts = tally(results)
    frames = sum(r.frames for r in results if r.status is Status.DONE)
    unfinished = total - len(results)
    if style is ProgressStyle.JSON:
        err.write(
            json.dumps(
                {
                    "event": "summary",
                    "files": total,
                    **{s.value: counts[s] for s in Status},
                    "unfinished": unfinished,
                    "frames": frames,
                    "seconds": round(seconds, 3),
                    "output_dir": args.output_dir,
                    "interrupted": interrupted,
                }
            )
            + "\n"
        )
        return
    for r in results:
        if r.status is Status.FAILED:
            err.write(f"vsr: failed {r.item.input}: {r.error}\n")
    if args.quiet:
        return
    rest = ""
    if unfinished:
        rest = (
            f", {unfinished} not finished (interrupted)"
            if interrupted
            else f", {unfinished} not started (--fail-fast)"
        )
    fps = frames / seconds if seconds > 0 else 0.0
    err.write(
        f"vsr: {plural(total, 'file')}: {counts[Status.DONE]} done, "
        f"{counts[Status.FAILED]} failed, {counts[Status.SKIPPED]} skipped{rest}; "
        f"{plural(frames, 'frame')} in {seconds:.1f}s ({fps:.1f} fps) -> {args.output_dir}\n"
    )


def _live(args: argparse.Namespace, err: TextIO, signals: interrupts.Interrupts) -> int:
    from ..model.load import load, require_cuda
    from ..options import LiveOptions, Mode
    from ..pipeline.live import DEVICE_FORMATS, is_network
    from ..pipeline.pipeline import Pipeline
    from .progress import resolve_style, show, stats_record
    from .window import with_window

    if args.output is None and not args.preview:
        raise UsageError("nothing to do: give an OUTPUT, --preview, or both")
    if args.input.startswith("/dev/video") and args.input_format is None:
        args.input_format = "v4l2"
    if (
        args.input_format in DEVICE_FORMATS
        and args.input.startswith("/dev/")
        and not os.path.exists(args.input)
    ):
        raise SourceError(
            f"cannot open input {args.input!r}: no such device",
            hint="list cameras with 'v4l2-ctl --list-devices' (or ls /dev/video*)",
        )
    timeout = args.stall_timeout if is_network(args.input) else 30.0
    if args.duration:
        # --duration is wall-clock time, waits included: no read may outlast it.
        timeout = max(0.5, min(timeout, args.duration))
    source = SourceOptions(
        args.input,
        format=args.input_format,
        options=dict(args.input_option),
        max_pixels=args.max_pixels,
        timeout=timeout,
    )
    model = model_options(args)
    upscaler = load(model)
    if args.require_gpu:
        require_cuda(upscaler)
    if (args.record or args.output_reconnect) and (args.output is None or "://" not in args.output):
        flag = "--record" if args.record else "--output-reconnect"
        raise UsageError(
            f"{flag} is for a network OUTPUT (udp://, tcp://, rtmp://, srt://)",
            hint="give a file as OUTPUT to record to it",
        )
    if args.output_reconnect < 0:
        raise UsageError("--output-reconnect must be 0 or more seconds")
    sink = sink_options(args, args.output) if args.output is not None else None
    if sink is not None:
        sink = dataclasses.replace(
            sink, record=args.record, reconnect=args.output_reconnect, stall=args.stall_timeout
        )
    live = LiveOptions(
        max_latency=args.max_latency / 1000.0,
        duration=args.duration,
        reconnect=args.reconnect,
        preview=args.preview,
        preview_host=args.preview_host,
        preview_port=args.preview_port,
    )
    pipeline = Pipeline(
        source,
        model,
        sink,
        upscaler=upscaler,
        mode=Mode.LIVE,
        live=live,
        color=ColorPath(args.color),
        on_error=OnError(args.on_error),
    )
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
    figures = stats.live or LiveStats()
    damage = _damage_report(stats)
    if damage:
        log.warning("%s", damage)
    if args.stats == "json":
        err.write(json.dumps(stats_record(stats)) + "\n")
    elif not args.quiet:
        lat = stats.latency
        lat_text = (
            (
                f", latency p50 {lat['p50'] * 1000:.0f} / p95 {lat['p95'] * 1000:.0f} / "
                f"p99 {lat['p99'] * 1000:.0f} ms"
            )
            if lat
            else ""
        )
        steady = figures.steady
        after = (
            f"; {steady.dropped} of the {steady.frames_in} after start-up"
            if steady and steady.frames_in
            else ""
        )
        err.write(
            f"vsr: {stats.frames} of {stats.frames_in} frames upscaled "
            f"({figures.dropped} dropped to keep up{after}){lat_text}, {stats.seconds:.1f}s, "
            f"{stats.provider}{' ' + stats.precision if stats.precision else ''} -> "
            f"{stats.output or 'preview'}\n"
        )
        hint = keep_up_hint(stats, upscaler.metadata.get("vsr.tier", ""))
        if hint:
            err.write(f"vsr: hint: {hint}\n")
    if figures.input_lost:
        err.write(f"vsr: {figures.input_lost}; the output holds what arrived before\n")
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
    live = stats.live or LiveStats()
    steady = live.steady
    if steady is not None and steady.frames_in >= STEADY_MIN_FRAMES:
        if steady.dropped_share <= STEADY_KEEP_UP_SHARE:
            return ""
        share, when = steady.dropped_share, " after start-up"
    elif stats.frames_in <= 0 or live.dropped <= KEEP_UP_SHARE * stats.frames_in:
        return ""
    else:
        share, when = live.dropped / stats.frames_in, ""
    remedy = "a smaller input" if tier == "fast" else "--quality fast (a cheaper model) or a smaller input"
    return (
        f"{round(100 * share)}% of the frames were dropped{when} to keep up with the input; "
        f"{remedy} drops fewer on this machine"
    )


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

    model = ModelOptions(
        model=args.model,
        scale=args.scale,
        quality=args.quality,
        device=Device(args.device),
        engine=Engine(args.engine),
        precision=Precision(args.precision),
    )
    result = run(CompareOptions(args.input, args.output, args.at, model, args.against, args.overwrite))
    if not args.quiet:
        h, w = result.panels[0].image.shape[:2]
        when = f" at {result.seconds:.2f}s" if result.seconds is not None else ""
        r = result.region
        err.write(
            f"vsr: {' | '.join(p.label for p in result.panels)}{when}, {w}x{h} each, detail "
            f"{r.size}x{r.size} at {r.x},{r.y} -> {result.output}\n"
        )
    return ExitStatus.OK


def _models(args: argparse.Namespace) -> int:
    from ..model.cost import ms_per_output_megapixel, timing_size
    from ..model.load import OnnxUpscaler
    from ..model.registry import bundled_models, default_for

    models = bundled_models()
    default = default_for()
    timing: dict[str, float | None] = {}
    runs_as: dict[str, tuple[str, str] | None] = {}
    for m in models:
        timing[m.name], runs_as[m.name] = None, None
        if args.no_timing:
            continue
        try:  # as `vsr upscale` runs it here: the engine and precision --engine auto picks
            up = OnnxUpscaler(m.path, Device.CPU, engine=Engine.AUTO)
        except VsrError:
            continue
        runs_as[m.name] = (up.runtime.value, up.precision)
        ms = up.choice.ms_per_output_megapixel(up.scale) if up.choice else None
        if ms is None:  # nothing to choose between, so not measured: time it now
            ms = ms_per_output_megapixel(up, timing_size(m.macs_per_pixel))
        timing[m.name] = round(ms, 1)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": m.name,
                        "path": str(m.path),
                        "scale": m.scale,
                        "tier": m.tier,
                        "macs_per_pixel": round(m.macs_per_pixel),
                        "parameters": m.parameters,
                        "degradation": m.degradation,
                        "precision": m.precision,
                        "psnr": m.psnr,
                        "ms_per_output_mp_cpu": timing[m.name],
                        "engine": (runs_as[m.name] or ("", ""))[0],
                        "run_precision": (runs_as[m.name] or ("", ""))[1],
                        "default": default is not None and m.path == default.path,
                    }
                    for m in models
                ],
                indent=2,
            )
        )
        return ExitStatus.OK
    print(
        f"  {'name':<18} {'scale':>5} {'tier':<8} {'MACs/px':>8} {'params':>7}  {'precision':<9} "
        f"{'trained on':<10} {'PSNR Set5 / Set14':<17} {'runs as':<16} {'ms/MP':>6}"
    )
    for m in models:
        psnr = " / ".join(f"{m.psnr[k]:.2f}" for k in ("Set5", "Set14") if k in m.psnr) or "-"
        mark = "*" if default is not None and m.path == default.path else " "
        ms = timing[m.name]
        ran = " ".join(runs_as[m.name] or ("-",))
        print(
            f"{mark} {m.name:<18} {'x' + str(m.scale):>5} {m.tier:<8} {m.macs_per_pixel:>8,.0f} "
            f"{m.parameters:>7}  {m.precision:<9} {m.degradation:<10} {psnr:<17} {ran:<16} "
            f"{'-' if ms is None else f'{ms:.0f}':>6}"
        )
    print(
        "(* the default; --scale picks x2/x4, --quality the tier, --degrade video the models trained "
        "on video. MACs per input pixel; PSNR in dB under the shared protocol; runs as: the "
        "engine and arithmetic --engine auto picks on this CPU; ms per output megapixel here, "
        "all cores. The first listing on a CPU measures each model once, about a second each)"
    )
    missing = missing_tiers(models)
    if missing:
        print(
            f"not bundled in this version: {', '.join(missing)} (--quality with --scale says so "
            "when asked for one)"
        )
    return ExitStatus.OK


def missing_tiers(models: list[BundledModel]) -> list[str]:
    """The "tier xN" pairs of the family that no bundled float model covers."""
    have = {
        (m.tier, m.scale) for m in models if m.precision == "fp32" and m.degradation == DEFAULT_DEGRADATION
    }
    return [f"{t} x{s}" for t in TIERS for s in (2, 3, 4) if (t, s) not in have]


def main_exit() -> None:
    """Console-script entry point."""
    interrupts.exiting_process()
    sys.exit(main())
