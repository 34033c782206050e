#!/usr/bin/env python3
"""Offline benchmark: `vsr upscale` beside its floors and anchors, one run, on the same frames.

    python scripts/bench/bench.py                                  # 640x360, 60 frames, x3, veryfast
    python scripts/bench/bench.py --size 1280x720 --device cuda --batch auto --json bench.json
    python scripts/bench/bench.py --device cuda --frames 600 --precision fp32 --anchors a
    python scripts/bench/bench.py --input clip.mp4 --frames 0      # a given clip, all of its frames
    python scripts/bench/bench.py --tiers all --anchors none       # a row per model tier

Every row runs alone, one after another, on the same decoded clip (generated deterministically
from the sample scene, `vsr.lab.scene.render()`, or `--input`), with the same encoder settings
(libx264, `--preset`, CRF 18, yuv420p); `--repeat N` keeps each row's fastest of N runs.

Floors are work that cannot be avoided on this hardware, each measured alone: an upscaler
that decodes, runs this model and encodes cannot be faster than the slowest of them, nor
(with no parallelism) than their sum.
  - decode only: PyAV demux + decode (slice threads, as vsr), frames discarded.
  - model only: vsr's own onnxruntime session (`OnnxUpscaler`, created untimed as vsr does
    before its stages start) on the clip's Y planes, stacked in `--batch` frames beforehand;
    only the calls are timed (the first, slower call included, as vsr pays it too).
  - encode only: the encoder on the pictures vsr encodes (the model floor's output with
    bicubic chroma, yuv420p), prepared beforehand, muxed to .mp4.
vsr end to end: `python -m vsr upscale` in a subprocess, startup and model load included;
its "done" record gives per-stage seconds (stage threads overlap, so they do not add up).
Anchors are what users would otherwise run:
  (a) FFmpeg bicubic: decode -> scale filter (bicubic) -> encode, no model at all;
  (b) OpenCV DNN: the same ONNX through `cv2.dnn`, one frame at a time (OpenCV's YCrCb);
  (c) the ONNX model card / PyTorch tutorial recipe: Pillow YCbCr, a plain onnxruntime
      session (on vsr's provider: CUDA when vsr runs there) one frame per call, Pillow
      bicubic chroma.
  Model loading for (b) and (c) is untimed, so they are favoured against vsr's wall time.

Tiers (`--tiers fast,balanced,quality` or `all`): for each tier's bundled float model at the
model's scale, its model-only floor and `vsr upscale` end to end on the same clip, batch and
encoder, so the table shows what each tier costs a user on this machine side by side.

Columns: seconds (wall clock, best of --repeat); fps = frames / seconds; ms/frame = 1000 /
fps; CPU % = process CPU time (user + system, all threads) / wall * 100, so up to cores x
100 (how many cores the row keeps busy); peak RSS = the vsr subprocess's ru_maxrss (an
in-process row's peak cannot be told apart from the rows before it); vs vsr = vsr fps / the
anchor's fps (above 1: vsr is faster). Below the table: end-to-end / (decode + model +
encode) says what the pipeline adds over its floors (below 1: the stages overlap), end
to end / model only how far vsr is from the model's own speed, and vsr fps / encode-only fps
how close vsr comes to its encoder (the limit wherever the model is faster than the encoder,
as on a GPU), with start-up and without.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from vsr.errors import VsrError
from vsr.lab.floors import (
    CRF,
    Clip,
    Encoder,
    decode_frames,
    even,
    floor_decode,
    floor_encode,
    floor_model,
    load_clip,
    make_clip,
    output_frames,
    run_pipeline,
)
from vsr.lab.scene import FPS
from vsr.media.color import split_frame
from vsr.model import registry
from vsr.model.batch_size import auto_batch
from vsr.model.load import OnnxUpscaler
from vsr.options import Device, Engine, Precision
from vsr.paths import ROOT

#: Runs `python -m vsr` and then reports its own resource usage as a last JSON line on stderr.
WRAPPER = (
    "import json, resource, runpy, sys\n"
    "sys.argv = ['vsr', *sys.argv[1:]]\n"
    "code = 0\n"
    "try:\n"
    "    runpy.run_module('vsr', run_name='__main__', alter_sys=True)\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "r = resource.getrusage(resource.RUSAGE_SELF)\n"
    "sys.stderr.write(json.dumps({'event': 'rusage', 'maxrss_kb': r.ru_maxrss,\n"
    "                             'cpu_s': r.ru_utime + r.ru_stime}) + '\\n')\n"
    "sys.exit(code)\n"
)


@dataclass
class Row:
    key: str
    name: str
    frames: int = 0
    seconds: float | None = None
    cpu_pct: float | None = None
    peak_rss_mb: float | None = None
    vs_vsr: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float | None:
        return self.frames / self.seconds if self.seconds else None


def timed(fn: Callable[[], int], repeat: int) -> tuple[float, float, int]:
    """Best of `repeat` runs of fn (which returns its frame count): (seconds, CPU %, frames)."""
    best: tuple[float, float, int] | None = None
    for _ in range(repeat):
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        n = fn()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        if best is None or wall < best[0]:
            best = (wall, 100.0 * cpu / wall, n)
    assert best is not None
    return best


def transcode(clip: Clip, limit: int, s: int, preset: str, out: Path, convert: Callable[[Any], Any]) -> int:
    """Decode, `convert` each frame to an output-size av.VideoFrame, encode: the anchors' loop."""
    enc = Encoder(out, clip, even(clip.width * s), even(clip.height * s), preset)
    n = 0
    for frame in decode_frames(clip.path, limit):
        enc.encode(convert(frame), frame.pts)
        n += 1
    enc.close()
    return n


def bicubic(clip: Clip, s: int) -> Callable[[Any], Any]:
    """FFmpeg's scale filter (swscale bicubic), as `ffmpeg -vf scale=...:flags=bicubic`."""
    graph = av.filter.Graph()
    src = graph.add_buffer(
        width=clip.width, height=clip.height, format=clip.frames[0].format, time_base=clip.time_base
    )
    scale = graph.add("scale", f"w={even(clip.width * s)}:h={even(clip.height * s)}:flags=bicubic")
    sink = graph.add("buffersink")
    src.link_to(scale)
    scale.link_to(sink)
    graph.configure()

    def convert(frame: Any) -> Any:
        graph.push(frame)
        return graph.pull()

    return convert


def opencv_dnn(net: Any, s: int) -> Callable[[Any], Any]:
    """cv2.dnn on OpenCV's YCrCb luma, chroma by cv2.INTER_CUBIC, one frame per call."""

    def convert(frame: Any) -> Any:
        ycrcb = cv2.cvtColor(frame.to_ndarray(format="bgr24"), cv2.COLOR_BGR2YCrCb)
        h, w = ycrcb.shape[:2]
        net.setInput(ycrcb[:, :, 0].astype(np.float32).reshape(1, 1, h, w) / 255.0)
        y = np.clip(net.forward()[0, 0] * 255.0, 0, 255).round().astype(np.uint8)
        hr = cv2.resize(ycrcb, (w * s, h * s), interpolation=cv2.INTER_CUBIC)
        hr[:, :, 0] = y
        return av.VideoFrame.from_ndarray(cv2.cvtColor(hr, cv2.COLOR_YCrCb2BGR), format="bgr24")

    return convert


def opencv_net(model: Path) -> tuple[Any, str]:
    """cv2.dnn's network for `model`, or None and why it cannot run it."""
    try:
        net = cv2.dnn.readNetFromONNX(str(model))
        net.setInput(np.zeros((1, 1, 24, 20), np.float32))
        net.forward()
    except Exception as exc:  # noqa: BLE001 - cv2.error and friends: report, do not crash
        return None, f"n/a: cv2.dnn cannot run the model: {str(exc).strip().splitlines()[-1][:200]}"
    return net, ""


def reference(sess: Any) -> Callable[[Any], Any]:
    """The ONNX model card / PyTorch tutorial recipe, verbatim: Pillow YCbCr, one frame per run."""
    from PIL import Image

    name = sess.get_inputs()[0].name
    from_image: Any = av.VideoFrame.from_image

    def convert(frame: Any) -> Any:
        img_y, img_cb, img_cr = frame.to_image().convert("YCbCr").split()
        x = np.asarray(img_y, dtype=np.float32)[None, None] / 255.0
        out = sess.run(None, {name: x})[0]
        out_y = Image.fromarray(np.uint8((out[0] * 255.0).clip(0, 255)[0]))
        cb = img_cb.resize(out_y.size, Image.Resampling.BICUBIC)
        cr = img_cr.resize(out_y.size, Image.Resampling.BICUBIC)
        return from_image(Image.merge("YCbCr", [out_y, cb, cr]).convert("RGB"))

    return convert


class FreeModel:
    """A stand-in for the model that costs almost nothing (OpenCV bicubic on the luma), so a
    vsr pipeline running it shows what the pipeline itself costs around its encoder."""

    provider = "none"

    def __init__(self, scale: int) -> None:
        self.scale = scale

    def __call__(self, y: np.ndarray) -> np.ndarray:
        n, h, w = y.shape
        s = self.scale
        out = np.empty((n, h * s, w * s), np.uint8)
        for i in range(n):
            cv2.resize(y[i], (w * s, h * s), dst=out[i], interpolation=cv2.INTER_CUBIC)
        return out


def models_for_tiers(spec: str, scale: int) -> list[tuple[str, Path | None]]:
    """(tier, its bundled float model at `scale`, or None) for `--tiers`."""
    from vsr.model.registry import tier_defaults

    try:
        return [(t, m.path if m else None) for t, m in tier_defaults(spec, scale)]
    except VsrError as exc:
        raise SystemExit(f"bench: --tiers: {exc} ({exc.hint})") from None


def run_vsr(clip: Clip, model: Path, args: argparse.Namespace, tmp: Path) -> Row:
    row = Row("vsr", "**vsr end to end**")
    cmd = [
        sys.executable,
        "-c",
        WRAPPER,
        "upscale",
        clip.path,
        str(tmp / "vsr.mp4"),
        "--preset",
        args.preset,
        "--crf",
        str(CRF),
        "--batch",
        str(args.batch),
        "--device",
        args.device,
        "--precision",
        args.precision,
        "--engine",
        args.engine,
        "--model",
        str(model),
        "--progress",
        "json",
        "-y",
    ]
    if args.frames:
        cmd += ["--frames", str(args.frames)]
    best: tuple[float, dict[str, Any], dict[str, Any]] | None = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - t0
        recs = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
        dones = [r for r in recs if r.get("event") == "done"]
        usages = [r for r in recs if r.get("event") == "rusage"]
        if proc.returncode != 0 or not dones or not usages:
            row.note = f"failed (exit {proc.returncode}): " + " / ".join(
                proc.stderr.strip().splitlines()[-2:]
            )
            return row
        if best is None or wall < best[0]:
            best = (wall, dones[-1], usages[-1])
    assert best is not None
    wall, done, usage = best
    row.seconds, row.frames = wall, int(done["frames"])
    row.cpu_pct = 100.0 * usage["cpu_s"] / wall
    row.peak_rss_mb = usage["maxrss_kb"] / 1024.0
    row.extra = {
        "stages": done["stages"],
        "pipeline_seconds": done["seconds"],
        "pipeline_fps": done["fps"],
        "provider": done["provider"],
    }
    return row


def machine(provider: str) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], check=False, capture_output=True, text=True, timeout=10).stdout
        cpu = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), cpu
        )
    except (OSError, subprocess.SubprocessError):
        pass
    import onnxruntime as ort

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": cores,
        "provider": provider,
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "av": av.__version__,
        "opencv": cv2.__version__,
        "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
    }


def fmt(v: float | None, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def batch_size(value: str) -> int:
    """--batch: a number, or auto (0)."""
    return 0 if value == "auto" else int(value)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="640x360", help="generated clip size WxH (default 640x360)")
    ap.add_argument(
        "--frames",
        type=int,
        default=60,
        help="frames (default 60; 0: all of --input; all are held in memory)",
    )
    ap.add_argument(
        "--model", help="ONNX model or bundled name (default: the default model, `vsr models`' *)"
    )
    ap.add_argument("--device", choices=[d.value for d in Device], default="auto")
    ap.add_argument("--preset", default="veryfast", help="libx264 preset (default veryfast)")
    ap.add_argument(
        "--batch",
        type=batch_size,
        default=4,
        help="frames per model call (default 4), or auto "
        "(vsr's measured choice, used by both the model floor and vsr)",
    )
    ap.add_argument(
        "--precision",
        choices=[p.value for p in Precision],
        default="auto",
        help="model arithmetic for vsr and the model floor (default auto)",
    )
    ap.add_argument(
        "--engine",
        choices=[e.value for e in Engine],
        default="auto",
        help="model engine for vsr and the model floor (default auto: what vsr picks "
        "here, measured once and cached)",
    )
    ap.add_argument(
        "--anchors", default="a,b,c", help="which anchors to run (default a,b,c; 'none' for none)"
    )
    ap.add_argument("--input", help="benchmark this clip instead of a generated one")
    ap.add_argument("--repeat", type=int, default=1, help="keep each row's best of N runs")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument(
        "--tiers",
        default="",
        help="also a model-only and an end-to-end row for each of these tiers' "
        "bundled models at the model's scale (comma-separated: fast,balanced,"
        "quality; 'all': every tier bundled)",
    )
    args = ap.parse_args()
    anchors = set() if args.anchors == "none" else set(args.anchors.split(","))
    if not anchors <= {"a", "b", "c"}:
        ap.error("--anchors: a comma-separated subset of a,b,c, or none")
    if args.repeat < 1 or args.batch < 0 or args.frames < 0:
        ap.error("--repeat must be at least 1, --batch at least 1 (or auto), --frames at least 0")
    if not args.input and args.frames == 0:
        ap.error("--frames 0 (all frames) needs --input")
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        ap.error(f"--size {args.size!r}: expected WxH, e.g. 640x360")
    if not args.input and (w < 16 or h < 16 or w % 2 or h % 2):
        ap.error("--size: width and height must be even and at least 16 (H.264 yuv420p)")
    model = registry.resolve(args.model, None).resolve()

    with tempfile.TemporaryDirectory(prefix="vsr-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if args.input:
            path = str(Path(args.input).resolve())
        else:
            path = str(tmp / "clip.mp4")
            make_clip(Path(path), w, h, args.frames)
        clip = load_clip(path, args.frames)
        n = len(clip.frames)
        try:
            up = OnnxUpscaler(
                model, Device(args.device), precision=Precision(args.precision), engine=Engine(args.engine)
            )
        except VsrError as exc:
            raise SystemExit(f"bench: {exc}") from None
        s = up.scale
        args.batch = args.batch or auto_batch(up, clip.height, clip.width)
        # Anchor (c) is onnxruntime's own recipe: on vsr's provider, OpenVINO's runs on the CPU one.
        providers = up.session.get_providers() if up.session is not None else ["CPUExecutionProvider"]
        ow, oh = even(clip.width * s), even(clip.height * s)
        info = machine(up.provider)
        settings = {
            "input": args.input or f"generated ({FPS} fps, make_sample.render)",
            "size": f"{clip.width}x{clip.height}",
            "output": f"{ow}x{oh}",
            "output_pixels": ow * oh,
            "frames": n,
            "model": str(model),
            "scale": s,
            "device": args.device,
            "batch": args.batch,
            "engine": f"{up.engine} {up.precision}",
            "encoder": f"libx264 {args.preset} CRF {CRF} yuv420p",
            "repeat": args.repeat,
        }
        print(
            f"machine: {info['cpu']}, {info['cores']} cores, onnxruntime {info['onnxruntime']} "
            f"on {info['provider']}, PyAV {info['av']} (libavcodec {info['libavcodec']}), "
            f"OpenCV {info['opencv']}, Python {info['python']}"
        )
        print("settings: " + ", ".join(f"{k} {v}" for k, v in settings.items()) + "\n", flush=True)

        rows: list[Row] = []

        def add(key: str, name: str, fn: Callable[[], int]) -> Row:
            print(f"running: {name.strip('*')} ...", file=sys.stderr, flush=True)
            row = Row(key, name)
            try:
                row.seconds, row.cpu_pct, row.frames = timed(fn, args.repeat)
            except Exception as exc:  # noqa: BLE001 - one row's failure must not lose the others
                row.note = f"n/a: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            rows.append(row)
            return row

        add("decode", "Floor — decode only", lambda: floor_decode(clip, args.frames))
        ys = [split_frame(f, native=True)[0] for f in clip.frames]
        batches = [np.stack(ys[i : i + args.batch]) for i in range(0, n, args.batch)]
        luma: list[np.ndarray] = []
        add("model", "Floor — model only", partial(floor_model, up, batches, luma))
        tier_models = models_for_tiers(args.tiers, s) if args.tiers else []
        for tier, tier_model in tier_models:
            if tier_model is None:
                continue
            tier_up = OnnxUpscaler(
                tier_model,
                Device(args.device),
                precision=Precision(args.precision),
                engine=Engine(args.engine),
            )
            add(
                f"model_{tier}",
                f"Tier {tier} ({tier_model.stem}) — model only",
                partial(floor_model, tier_up, batches, []),
            )
            del tier_up
        del up, batches, ys
        big = output_frames(clip, luma, s)
        del luma
        add("encode", "Floor — encode only", partial(floor_encode, big, clip, s, args.preset, tmp))
        del big
        print("running: vsr end to end ...", file=sys.stderr, flush=True)
        rows.append(run_vsr(clip, model, args, tmp))
        for tier, tier_model in tier_models:
            if tier_model is None:
                rows.append(
                    Row(
                        f"vsr_{tier}",
                        f"Tier {tier} — vsr end to end",
                        note=f"no bundled {tier} model at x{s}",
                    )
                )
                continue
            print(f"running: tier {tier} end to end ...", file=sys.stderr, flush=True)
            row = run_vsr(clip, tier_model, args, tmp)
            row.key, row.name = f"vsr_{tier}", f"Tier {tier} ({tier_model.stem}) — vsr end to end"
            rows.append(row)
        add(
            "free",
            "vsr pipeline, model replaced by bicubic (in process)",
            partial(
                run_pipeline, clip, FreeModel(s), args.batch, args.preset, tmp / "free_model.mp4", args.frames
            ),
        )
        anchor = partial(transcode, clip, args.frames, s, args.preset)
        if "a" in anchors:
            add("bicubic", "Anchor (a) FFmpeg bicubic", lambda: anchor(tmp / "bicubic.mp4", bicubic(clip, s)))
        if "b" in anchors:
            net, why = opencv_net(model)
            if net is None:
                rows.append(Row("opencv", "Anchor (b) OpenCV DNN", note=why))
            else:
                add(
                    "opencv", "Anchor (b) OpenCV DNN", partial(anchor, tmp / "opencv.mp4", opencv_dnn(net, s))
                )
                del net
        if "c" in anchors:
            import onnxruntime as ort

            sess = ort.InferenceSession(str(model), providers=providers)
            on = providers[0].removesuffix("ExecutionProvider")
            add(
                "reference",
                f"Anchor (c) reference recipe (Pillow + ORT on {on})",
                partial(anchor, tmp / "reference.mp4", reference(sess)),
            )
            del sess

    report(rows, info, settings, args.json)
    return 0 if any(r.key == "vsr" and r.seconds for r in rows) else 1


def report(rows: list[Row], info: dict[str, Any], settings: dict[str, Any], path: Path | None) -> None:
    """Print the table and the ratios below it; write the JSON record to `path`."""
    by = {r.key: r for r in rows}
    vsr = by["vsr"]
    anchors = [r for r in rows if r.key in ("bicubic", "opencv", "reference")]
    for r in anchors:
        if vsr.fps and r.fps:
            r.vs_vsr = vsr.fps / r.fps
    print("| row | seconds | fps | ms/frame | CPU % | peak RSS | vs vsr |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r.seconds is None or not r.fps:
            print(f"| {r.name} | {r.note or 'n/a'} | | | | | |")
            continue
        rss = f"{r.peak_rss_mb:.0f} MB" if r.peak_rss_mb else "—"
        vs = f"{r.vs_vsr:.2f}x" if r.vs_vsr else "—"
        print(
            f"| {r.name} | {r.seconds:.3f} | {r.fps:.1f} | {1000 / r.fps:.1f} | "
            f"{fmt(r.cpu_pct, '.0f')} | {rss} | {vs} |"
        )
    ratios: dict[str, float | None] = {}
    floors = [by[k].seconds or 0.0 for k in ("decode", "model", "encode")]
    print()
    if vsr.seconds and all(floors):
        ratios["e2e_over_floor_sum"] = vsr.seconds / sum(floors)
        ratios["e2e_over_model"] = vsr.seconds / floors[1]
        print(
            f"- end to end / (decode + model + encode): {ratios['e2e_over_floor_sum']:.2f} "
            "(the pipeline's overhead over its floors; below 1: the stages overlap)"
        )
        print(f"- end to end / model only: {ratios['e2e_over_model']:.2f}")
        if vsr.extra:
            ratios["pipeline_over_model"] = vsr.extra["pipeline_seconds"] / floors[1]
            print(
                f"- vsr pipeline alone (no startup, no model load) / model only: "
                f"{ratios['pipeline_over_model']:.2f}"
            )
        enc = by["encode"]
        free = by.get("free")
        if free is not None and free.seconds:
            ratios["free_model_over_encode"] = free.seconds / enc.seconds if enc.seconds else None
            print(
                f"- vsr pipeline with a free model / encode only: "
                f"{fmt(ratios['free_model_over_encode'], '.2f')} (what the pipeline costs "
                "around its encoder: 1.00 is none)"
            )
        if vsr.fps and enc.fps:
            ratios["vsr_fps_over_encode_fps"] = vsr.fps / enc.fps
            line = f"- vsr fps / encode-only fps: {ratios['vsr_fps_over_encode_fps']:.2f} with start-up"
            if vsr.extra:
                ratios["pipeline_fps_over_encode_fps"] = vsr.extra["pipeline_fps"] / enc.fps
                line += f", {ratios['pipeline_fps_over_encode_fps']:.2f} once started"
            print(line + " (the encoder is the limit wherever the model is faster)")
    tiers = [r for r in rows if r.key.startswith("vsr_")]
    if tiers:
        out_mp = settings["output_pixels"] / 1e6
        print("- tiers (bundled models at this scale; same clip, encoder and batch):")
        for r in tiers:
            tier = r.key.removeprefix("vsr_")
            m = by.get(f"model_{tier}")
            if not r.fps:
                print(f"  - {r.name}: {r.note or 'n/a'}")
                continue
            ratios[f"tier_{tier}_fps"] = r.fps
            line = f"  - {tier}: end to end {r.fps:.1f} fps"
            if r.extra:
                ratios[f"tier_{tier}_pipeline_fps"] = r.extra["pipeline_fps"]
                line += f" ({r.extra['pipeline_fps']:.1f} once started)"
            if m is not None and m.fps:
                ratios[f"tier_{tier}_model_fps"] = m.fps
                line += f", model only {m.fps:.1f} fps ({1000 / m.fps / out_mp:.0f} ms per output MP)"
            if vsr.fps:
                ratios[f"tier_{tier}_over_vsr"] = r.fps / vsr.fps
                line += f"; {r.fps / vsr.fps:.2f}x the main row's end-to-end fps"
            print(line)
    for r in anchors:
        ratios[f"vsr_fps_over_{r.key}"] = r.vs_vsr
        print(f"- vsr fps / {r.name} fps: {fmt(r.vs_vsr, '.2f')}")
    if vsr.extra:
        x = vsr.extra
        st = ", ".join(f"{k} {v:.2f} s" for k, v in x["stages"].items())
        print(
            f"- vsr stages (busy seconds per thread; they overlap): {st}; pipeline alone "
            f"{x['pipeline_seconds']:.2f} s = {x['pipeline_fps']:.1f} fps, on {x['provider']}"
        )
    if path:
        rec = {
            "machine": info,
            "settings": settings,
            "ratios": ratios,
            "rows": [
                {**asdict(r), "fps": r.fps, "ms_per_frame": 1000 / r.fps if r.fps else None} for r in rows
            ],
        }
        path.write_text(json.dumps(rec, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
