#!/usr/bin/env python3
"""Evaluate super-resolution models under the shared quality protocol; print a markdown table.

Rows: bicubic, the zoo reference model (x3, when ../shared/data/reference has it) and every
bundled model (or the --model files given); columns: Y-PSNR and SSIM per image folder, and
milliseconds per output megapixel of the model on this machine's CPU (onnxruntime, one
image at a time, the median of the images). Any folder of images works:

    python scripts/models/eval.py                           # Set5 and Set14 from ../shared/data/eval
    python scripts/models/eval.py --sets ~/my_photos --model models/espcn_x3.onnx
    python scripts/models/eval.py --lr-codec libx264 --crf 23   # LR frames H.264-compressed first
    python scripts/models/eval.py --videos                      # temporal: the shared camera clips

Video counts, not just stills: `--videos` takes every frame of real clips (by default the
phone, flower and stream-of-water clips of ../shared/videos: 25 + 150 + 90 frames; `--frames N`
takes the first N of each instead), degrades each by the
protocol (Pillow bicubic downscale) and upscales it, and reports two figures per model and
for bicubic: the mean frame Y-PSNR, and the Y-PSNR of frame-to-frame differences,
(out_t - out_{t-1}) against (orig_t - orig_{t-1}). The second is the temporal error: a model
that flickers (its error changes from frame to frame) scores lower on it than one whose
error, however large, stays put. Both shave `scale` pixels at each border, as the protocol
(`vsr.lab.protocol`, where both figures are computed). An image given to `--videos` is
panned by 1-2 pixels a frame into a six-frame clip: a temporal figure for images that are not
the evaluation clips (train.py's held-out images, for choosing between training runs).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
from PIL import Image

from vsr.lab import protocol
from vsr.paths import MODELS, SHARED_DATA, SHARED_VIDEOS

Runner = Callable[[Image.Image], npt.NDArray[np.uint8]]  # LR image -> SR Y plane (protocol.luma_runner)


def compress(lr: Image.Image, codec: str, crf: int) -> Image.Image:
    """Round-trip an LR image through a video encoder (as a one-frame video) or JPEG."""
    if codec == "jpeg":
        buf = io.BytesIO()
        lr.save(buf, format="JPEG", quality=crf)
        buf.seek(0)
        return Image.open(buf).convert("RGB")
    import av

    w, h = lr.width - lr.width % 2, lr.height - lr.height % 2
    lr = lr.crop((0, 0, w, h))
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        s = cast(av.VideoStream, out.add_stream(codec, rate=25))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.options = {"crf": str(crf), "preset": "medium"}
        rgb = av.VideoFrame.from_ndarray(np.asarray(lr), format="rgb24")
        out.mux(s.encode(rgb.reformat(format="yuv420p")))
        out.mux(s.encode(None))
    buf.seek(0)
    with av.open(buf, "r") as inp:
        frame = next(inp.decode(video=0))
        return Image.fromarray(frame.to_ndarray(format="rgb24"))


def evaluate(
    run: Runner, scale: int, folder: Path, lr_codec: str | None, crf: int
) -> tuple[float, float, float]:
    """(mean Y-PSNR, mean SSIM, median milliseconds per output megapixel) of `run` on the
    images of `folder`, their LR images first compressed with `lr_codec` where given."""
    psnrs, ssims, ms_per_mp = [], [], []
    for path in protocol.list_images(folder):
        hr, lr = protocol.hr_lr_pair(path, scale)
        if lr_codec:
            lr = compress(lr, lr_codec, crf)
            hr = hr.crop((0, 0, lr.width * scale, lr.height * scale))
        t0 = time.perf_counter()
        sr = run(lr)
        dt = time.perf_counter() - t0
        hy = protocol.y_channel(hr)
        psnrs.append(protocol.psnr_y(sr, hy, scale))
        ssims.append(protocol.ssim_y(sr, hy, scale))
        ms_per_mp.append(dt * 1000 / (sr.size / 1e6))
    return float(np.mean(psnrs)), float(np.mean(ssims)), statistics.median(ms_per_mp)


DEFAULT_VIDEOS = (
    "phone_fire2_1280x720_vfr_rot180_h264_aac.mp4",
    "mdn_flower_960x540_vp8_vorbis.webm",
    "mdn_stream_of_water_480x360_h264_aac.mp4",
)


def video_frames(path: Path, count: int) -> list[Image.Image]:
    """The first `count` frames of a clip (0: all of them) as RGB images (as stored: rotation
    ignored); a still image is panned into a clip (`protocol.panned_frames`)."""
    import av

    if path.suffix.lower() in protocol.IMAGE_SUFFIXES:
        return protocol.panned_frames(Image.open(path).convert("RGB"))[: count or None]
    frames = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(Image.fromarray(f.to_ndarray(format="rgb24")))
            if len(frames) == count:
                break
    return frames


def temporal_table(rows: list[tuple[str, int, Runner]], clips: list[Path], count: int) -> None:
    """Print the temporal table: per row, each clip's frame PSNR and difference PSNR, and
    the mean of each over the clips."""
    loaded = {c: video_frames(c, count) for c in clips}
    names = [c.stem.split("_")[1] if "_" in c.stem else c.stem for c in clips]
    sizes = " + ".join(str(len(f)) for f in loaded.values())
    which = "every frame" if not count else f"at most {count}"
    print(
        f"{sizes} frames ({which} of each clip); frame PSNR / frame-difference PSNR "
        "(dB, Y, shared protocol)\n"
    )
    print("| model | scale | " + " | ".join(names) + " | mean frame | mean difference |")
    print("|" + "---|" * (4 + len(clips)))
    for name, scale, run in rows:
        results = [protocol.temporal_psnr(run, scale, loaded[c]) for c in clips]
        cells = [f"{p:.2f} / {d:.2f}" for p, d in results]
        mf = float(np.mean([p for p, _ in results]))
        md = float(np.mean([d for _, d in results]))
        print(f"| {name} | x{scale} | " + " | ".join(cells) + f" | {mf:.2f} | {md:.2f} |", flush=True)


def onnx_runner(path: Path, device: str = "cpu", precision: str = "fp32") -> tuple[int, Runner]:
    """(scale, runner) of an ONNX model through vsr's upscaler."""
    from vsr.model.load import OnnxUpscaler
    from vsr.options import Device, Precision

    up = OnnxUpscaler(path, Device(device), precision=Precision(precision))
    return up.scale, protocol.luma_runner(up)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--sets",
        nargs="*",
        type=Path,
        default=[SHARED_DATA / "eval" / "Set5", SHARED_DATA / "eval" / "Set14"],
    )
    ap.add_argument("--model", nargs="*", type=Path, help="ONNX files (default: bundled models)")
    ap.add_argument("--scales", nargs="*", type=int, default=[2, 3, 4])
    ap.add_argument("--lr-codec", help="compress LR images first: libx264, libx265 or jpeg")
    ap.add_argument("--crf", type=int, default=23, help="CRF (or JPEG quality) for --lr-codec")
    ap.add_argument("--device", default="cpu", help="where the models run (default cpu)")
    ap.add_argument(
        "--precision",
        nargs="*",
        default=["fp32"],
        choices=["fp32", "fp16"],
        help="rows for each of these (default fp32; fp16 rows are marked)",
    )
    ap.add_argument("--no-bicubic", action="store_true", help="leave out the bicubic rows")
    ap.add_argument(
        "--videos",
        nargs="*",
        type=Path,
        help="temporal table on these clips (none given: the shared camera clips)",
    )
    ap.add_argument(
        "--frames",
        type=int,
        default=0,
        help="frames per clip for --videos: the first N (default 0: every frame)",
    )
    args = ap.parse_args(argv)
    sets = [s for s in args.sets if s.is_dir()]
    clips: list[Path] = []
    if args.videos is not None:
        clips = args.videos or [SHARED_VIDEOS / n for n in DEFAULT_VIDEOS]
        clips = [c for c in clips if c.is_file()]
        if not clips:
            print("no video clips found (pass --videos FILE ...)", file=sys.stderr)
            return 2
    elif not sets:
        print("no image folders found (pass --sets DIR ...)", file=sys.stderr)
        return 2
    rows: list[tuple[str, int, Runner]] = []
    for scale in [] if args.no_bicubic else args.scales:
        rows.append((f"bicubic x{scale}", scale, partial(protocol.bicubic_y, scale=scale)))
    zoo = SHARED_DATA / "reference" / "super_resolution.onnx"
    if args.model is None and zoo.exists() and 3 in args.scales:
        rows.append(("zoo super_resolution.onnx", 3, onnx_runner(zoo)[1]))
    models = args.model if args.model is not None else sorted(MODELS.glob("*.onnx"))
    for m in models:
        for precision in args.precision:
            scale, run = onnx_runner(m, args.device, precision)
            if scale in args.scales:
                rows.append((m.stem + (" (fp16)" if precision == "fp16" else ""), scale, run))
    rows.sort(key=lambda r: r[1])
    if clips:
        temporal_table(rows, clips, args.frames)
        return 0
    head = "| model | scale | " + " | ".join(f"{s.name} PSNR | {s.name} SSIM" for s in sets) + " | ms/MP |"
    if args.lr_codec:
        print(
            f"LR images compressed with {args.lr_codec} at "
            f"{'quality' if args.lr_codec == 'jpeg' else 'CRF'} {args.crf}\n"
        )
    print(head)
    print("|" + "---|" * (3 + 2 * len(sets)))
    for name, scale, run in rows:
        cells, times = [], []
        for folder in sets:
            p, s, t = evaluate(run, scale, folder, args.lr_codec, args.crf)
            cells += [f"{p:.2f}", f"{s:.4f}"]
            times.append(t)
        ms = "-" if name.startswith("bicubic") else f"{statistics.median(times):.0f}"
        print(f"| {name} | x{scale} | " + " | ".join(cells) + f" | {ms} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
