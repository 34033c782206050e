"""`vsr compare`: one frame as bicubic | vsr (| another model) side by side, for looking, not reading.

Grabs one frame (a video's at `--at` seconds, default the middle; an image's only one), runs it
through the model exactly as `vsr upscale` runs luma (chroma via the OpenCV YCrCb recipe of
`--color ycrcb`), and writes either a PNG (panels at full output size, then nearest-neighbour
crops of the most detailed region) or a self-contained HTML page (`vsr.app.compare_page`).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import SinkError, UsageError, reason
from ..media.color import merge_upscaled, split_ycrcb
from ..media.grab import grab_frame
from ..model.load import OnnxUpscaler, load
from ..model.registry import TIERS
from ..options import ModelOptions
from .compare_page import Image, Panel, Region, render_html, render_png

WRITERS = (".png", ".html", ".htm")


@dataclass(frozen=True)
class CompareOptions:
    """What `vsr compare` renders.

    Attributes:
        input: a video or image path (or any URL FFmpeg opens).
        output: .png or .html path; None: INPUT_compare.png beside a local input.
        at: seconds from the video's start (None: the middle); ignored for images.
        model: the model under comparison.
        against: a third panel: a bundled model name, an .onnx path or a tier (fast, ...).
        overwrite: replace an existing output.
    """

    input: str
    output: str | None = None
    at: float | None = None
    model: ModelOptions = field(default_factory=ModelOptions)
    against: str | None = None
    overwrite: bool = False


@dataclass(frozen=True)
class Result:
    """What was written, for the CLI's one-line summary."""

    output: Path
    panels: tuple[Panel, ...]
    region: Region
    seconds: float | None


def output_path(opts: CompareOptions) -> Path:
    """The output path, checked before any work: a known extension, and no clobbering."""
    if opts.output is not None:
        out = Path(opts.output)
    elif opts.input != "-" and "://" not in opts.input:
        src = Path(opts.input)
        out = src.with_name(f"{src.stem}_compare.png")
    else:
        out = Path("compare.png")
    if out.suffix.lower() not in WRITERS:
        raise UsageError(
            f"cannot write '{out}': vsr compare writes .png or .html, not '{out.suffix or 'no extension'}'"
        )
    if out.is_dir():
        raise SinkError(f"output '{out}' is a directory", hint="name a .png or .html file")
    if out.exists() and not opts.overwrite:
        raise SinkError(f"output '{out}' already exists", hint="pass --overwrite to replace it")
    return out


def load_against(name: str, main: OnnxUpscaler, base: ModelOptions) -> OnnxUpscaler:
    """`--against`: a tier name picks that tier at the main model's scale; else a model name/path."""
    if name in TIERS:
        opts = ModelOptions(
            scale=main.scale, quality=name, device=base.device, engine=base.engine, precision=base.precision
        )
    else:
        opts = ModelOptions(model=name, device=base.device, engine=base.engine, precision=base.precision)
    up = load(opts)
    if up.scale != main.scale:
        raise UsageError(
            f"--against {name} upscales x{up.scale}, but {main.path.stem} upscales x{main.scale}",
            hint="compare models of the same scale",
        )
    return up


def upscale_bgr(up: OnnxUpscaler, bgr: Image) -> Image:
    """The model on luma, chroma bicubic (the `--color ycrcb` recipe of `vsr upscale`)."""
    y, crcb = split_ycrcb(bgr)
    return merge_upscaled(up(y[None])[0], crcb)


def bicubic(bgr: Image, scale: int) -> Image:
    h, w = bgr.shape[:2]
    return np.asarray(cv2.resize(bgr, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC), np.uint8)


def detail_region(bgr: Image) -> Region:
    """The square (a quarter of the shorter side) with the most gradient energy.

    Why: super-resolution and interpolation differ at edges and texture; in flat areas both
    look the same, so a crop there shows nothing. The sum of squared Sobel gradients of the
    (vsr) luma over the window is a cheap, deterministic measure of edges and texture; ties
    go to the top-left-most window.
    """
    h, w = bgr.shape[:2]
    size = max(1, min(min(h, w), max(16, min(h, w) // 4)))
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    energy = (gx * gx + gy * gy).astype(np.float64)
    integral = cv2.integral(energy)  # (h+1, w+1): window sums in O(1) each
    sums = (
        integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size]
    )
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return Region(int(x), int(y), size)


def run(opts: CompareOptions) -> Result:
    """Grab, upscale, render and write; the output appears only once complete."""
    out = output_path(opts)
    grabbed = grab_frame(opts.input, opts.at)
    main = load(opts.model)
    other = load_against(opts.against, main, opts.model) if opts.against else None
    panels = [
        Panel("bicubic", bicubic(grabbed.bgr, main.scale)),
        Panel(f"vsr {main.path.stem}", upscale_bgr(main, grabbed.bgr)),
    ]
    if other is not None:
        panels.append(Panel(f"vsr {other.path.stem}", upscale_bgr(other, grabbed.bgr)))
    region = detail_region(panels[1].image)
    title = f"{opts.input}" + (f" at {grabbed.seconds:.2f}s" if grabbed.seconds is not None else "")
    if out.suffix.lower() == ".png":
        ok, buf = cv2.imencode(".png", render_png(panels, region))
        data = buf.tobytes() if ok else b""
    else:
        data = render_html(panels, region, title, main.scale).encode()
    _write(out, data)
    return Result(out, tuple(panels), region, grabbed.seconds)


def _write(out: Path, data: bytes) -> None:
    """Write to a hidden temporary file beside `out`, then rename it into place."""
    tmp = out.with_name(f".{out.name}.vsr-{secrets.token_hex(4)}.partial")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SinkError(f"cannot write '{out}': {reason(exc)}") from exc
