#!/usr/bin/env python3
"""Train an ESPCN (or ECBSR-style) super-resolution model and export it as vsr's ONNX model.

Architecture (the ONNX model zoo's Super Resolution card, Shi et al. 2016): conv 5x5x64,
3x3x64, 3x3x32, 3x3x(r*r), ReLU between them, pixel shuffle (ONNX `DepthToSpace`, CRD).
Input and output are the luma channel, float32 in 0..1, [N,1,H,W] -> [N,1,rH,rW].
`--arch ecb --channels C --blocks M` trains the model family's fast and quality tiers instead:
edge-oriented multi-branch blocks merged at export into a plain stack of 3x3 convs with a
global residual (`vsr.lab.networks.build_ecb` says why); `scripts/models/train_family.sh` has
every tier's command.
`--tier` is recorded in the metadata (`vsr.tier`) with the cost (`vsr.macs_per_pixel`: conv
multiply-accumulates per input pixel, as `scripts/models/macs.py` counts them on the exported graph).
`--holdout N` keeps N training images out of training as a validation set whose PSNR is
logged at every checkpoint: choices are made on it, never on Set5/Set14 (evaluation only).

Why the recipe looks like this:
- Degradation is the shared protocol's (Pillow bicubic downscale), so the PSNR we train for
  is the PSNR we report. Images are also used at reduced sizes (x0.5..x1, Pillow bicubic
  with antialias) to give the tiny training set more scales of texture.
- `--degrade video` adds what decoded video frames carry: mild blur before the downscale,
  sensor noise, and JPEG compression of the LR frame (a stand-in for H.264 that Pillow can
  do everywhere, the device machine included).
- Patches are cut once into a bank held in memory; each step samples from it and applies
  a random dihedral transform, which keeps the training loop free of Python image work.
- L1 for most of the run (robust, converges faster), MSE at the end (what PSNR measures),
  Adam with a cosine schedule. Fixed seeds: a run is reproducible on one device type.

The networks and their export live in `vsr.lab.networks`: the exported graph is written
directly with `onnx.helper` rather than via torch.onnx (the model is a handful of nodes, and
this keeps the file identical whichever torch version trained it).

Usage:
    python scripts/models/train.py --scale 3 --out models/espcn_x3.onnx
    python scripts/models/train.py --scale 3 --degrade video --out models/espcn_x3_video.onnx
    python scripts/models/train.py --scale 3 --arch ecb --channels 16 --blocks 5 --tier fast --holdout 4 ...
A run writes a checkpoint every `--checkpoint-every` steps next to `--out`
(`<out>.ckpt`) and resumes from it when started again with the same settings.

`main` runs these steps in order (the `# ---` sections at the end of this file): the command line
(`parse_args`, `config_from`), the data (`load_data`: the patch bank), the model
(`build_network`, `start_run`, `resume`), the loop (`train_loop`) and the export (`export`).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from vsr.lab import protocol
from vsr.lab.networks import (
    Network,
    build_ecb,
    build_model,
    check_export,
    ecb_macs_per_pixel,
    export_onnx,
    init_ecb_from_onnx,
    init_from,
    init_from_checkpoint,
)
from vsr.paths import MODELS, SHARED_DATA

DEFAULT_DATA = SHARED_DATA / "train"
DEFAULT_EVAL = SHARED_DATA / "eval"

Tensor = Any  # torch.Tensor: PyTorch is optional, and mypy reads it as Any (vsr.lab.networks)


@dataclass(frozen=True)
class TrainConfig:
    scale: int
    data: str
    degrade: str
    steps: int
    batch: int
    patch: int
    lr: float
    mse_fraction: float
    seed: int
    resize_factors: tuple[float, ...]
    extra_layers: int = 0
    init: str = ""
    arch: str = "espcn"
    channels: int = 0
    blocks: int = 0
    holdout: int = 0
    tier: str = ""
    phases: int = 1
    colour_mixes: int = 0
    ema: float = 0.0
    refine: int = 0
    refine_factor: int = 0
    loss: str = "l1-mse"
    bf16_consistency: float = 0.0


# Defaults of the settings added after the first checkpoints were written, so that those still
# resume (and a resume with any other value is refused like any other change).
CONFIG_DEFAULTS = {
    "extra_layers": 0,
    "init": "",
    "arch": "espcn",
    "channels": 0,
    "blocks": 0,
    "holdout": 0,
    "tier": "",
    "phases": 1,
    "colour_mixes": 0,
    "ema": 0.0,
    "refine": 0,
    "refine_factor": 0,
    "loss": "l1-mse",
    "bf16_consistency": 0.0,
}


class WeightAverage:
    """An exponential moving average of a network's parameters (Polyak averaging), which is
    what gets validated and exported when `--ema` is on.

    Why: with 133 pictures the last steps' weights wander around a minimum with the batch
    noise, and each batch's noise is fitted a little; the average of the recent weights sits
    nearer the minimum's centre, which generalises better at no cost per step worth naming
    (one lerp per parameter) and none at inference (it is the same network). The decay ramps
    up from 0 ((1 + n) / (10 + n), as TensorFlow's ExponentialMovingAverage does), so a short
    run or a fresh start is not dominated by its initial weights."""

    def __init__(self, model: Network, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = [p.detach().clone() for p in model.parameters()]

    def update(self, model: Network) -> None:
        import torch

        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in model.parameters()], 1 - d)

    def swap(self, model: Network) -> None:
        """Exchange the model's weights and the average (call twice to undo)."""
        import torch

        with torch.no_grad():
            for p, s in zip(model.parameters(), self.shadow, strict=True):
                tmp = p.detach().clone()
                p.copy_(s)
                s.copy_(tmp)

    def state_dict(self) -> dict[str, Any]:
        return {"shadow": self.shadow, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import torch

        with torch.no_grad():
            for s, t in zip(self.shadow, state["shadow"], strict=True):
                s.copy_(t)
        self.updates = int(state["updates"])


def degrade_lr(lr: Image.Image, rng: random.Random) -> Image.Image:
    """Video-like damage on an LR RGB image: noise, then JPEG at a realistic quality."""
    arr = np.asarray(lr).astype(np.float32)
    sigma = rng.uniform(0.0, 3.0)
    if sigma > 0.5:
        noise = np.random.default_rng(rng.randrange(2**32)).normal(0, sigma, arr.shape)
        arr = arr + noise.astype(np.float32)
    img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=rng.randint(35, 90))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def split_holdout(cfg: TrainConfig) -> tuple[list[Path], list[Path]]:
    """(training images, held-out images): `cfg.holdout` images, evenly spaced through the
    sorted list, are kept out of training and used to watch progress (validation), so that
    Set5/Set14 stay evaluation-only."""
    files = protocol.list_images(Path(cfg.data))
    if cfg.holdout <= 0 or not files:
        return files, []
    n = min(cfg.holdout, len(files) - 1)
    step = len(files) / n
    held = {files[int(step * k + step / 2)] for k in range(n)}
    return [f for f in files if f not in held], sorted(held)


PSNR_LOSS_FLOOR = 1e-4  # MSE of a 40 dB patch, in 0..1 units


def psnr_loss(pred: Tensor, target: Tensor) -> Tensor:
    """The batch's mean per-patch log MSE (in dB, so the loss reads as minus a PSNR).

    Why: the figures we are judged by average PSNR over images, and a PSNR's gradient weighs
    an image's squared error by 1/MSE: a smooth picture's small errors count as much as a
    textured one's large errors. Plain MSE over a batch lets the textured patches (large
    errors) set the direction of every step. Taking each patch's log MSE gives each patch
    the weight the metric gives it (as NAFNet's and HINet's PSNR loss do per image). The floor
    keeps flat patches, whose MSE is near the uint8 rounding noise, from taking over."""
    import torch

    mse = (pred - target).square().mean(dim=(1, 2, 3))
    return 10 * torch.log10(mse + PSNR_LOSS_FLOOR).mean()


def patch_bank(cfg: TrainConfig) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """All (LR, HR) Y patches, cut with half-patch stride from every image at every size."""
    rng = random.Random(cfg.seed)
    lrs: list[npt.NDArray[np.uint8]] = []
    hrs: list[npt.NDArray[np.uint8]] = []
    files, _ = split_holdout(cfg)
    if not files:
        raise SystemExit(f"no training images under {cfg.data}")
    for path in files:
        rgb = Image.open(path).convert("RGB")
        for base in [rgb, *(colour_mix(rgb, rng) for _ in range(cfg.colour_mixes))]:
            cut_image(cfg, base, rng, lrs, hrs)
    return np.stack(lrs), np.stack(hrs)


def colour_mix(rgb: Image.Image, rng: random.Random) -> Image.Image:
    """The picture as another grey image: a random convex mix of its R, G and B (as an RGB
    image whose three channels are that grey, so its protocol Y is the mix itself).

    Why: the network sees only luma, and luma is one fixed mix of the colours; other mixes
    of the same scene are just as natural as grey pictures (a red sign on green leaves is a
    bright edge in one and a faint one in another), so each gives the network edges and
    textures at contrasts the Y of the 133 images lacks: more data without new pictures.
    Mixing commutes with the bicubic downscale, so the (LR, HR) pair stays the protocol's."""
    a, b, c = (rng.expovariate(1.0) for _ in range(3))  # uniform on the simplex
    t = a + b + c
    r, g, bl = np.moveaxis(np.asarray(rgb, np.float32), 2, 0)  # one conversion, three views
    grey = Image.fromarray(np.clip(np.rint((a * r + b * g + c * bl) / t), 0, 255).astype(np.uint8))
    return Image.merge("RGB", (grey, grey, grey))


def cut_image(
    cfg: TrainConfig,
    base: Image.Image,
    rng: random.Random,
    lrs: list[npt.NDArray[np.uint8]],
    hrs: list[npt.NDArray[np.uint8]],
) -> None:
    """Every size and sampling phase of one picture, cut into (LR, HR) patch pairs."""
    s, p = cfg.scale, cfg.patch
    for f in cfg.resize_factors:
        img = (
            base
            if f == 1.0
            else base.resize(
                (max(p * s, round(base.width * f)), max(p * s, round(base.height * f))),
                Image.Resampling.BICUBIC,
                reducing_gap=None,
            )
        )
        # Sampling phases: the protocol crops at (0, 0), so every LR pixel sees one fixed
        # s x s block of HR pixels; other crop offsets give other, equally valid LR images
        # of the same picture (up to s*s of them), more data at no cost to the contract.
        offsets = [
            (0, 0),
            *rng.sample(
                [(dy, dx) for dy in range(s) for dx in range(s) if dy or dx], min(cfg.phases, s * s) - 1
            ),
        ]
        for dy, dx in offsets:
            w = img.width - dx - (img.width - dx) % s
            h = img.height - dy - (img.height - dy) % s
            hr = img.crop((dx, dy, dx + w, dy + h))
            bank_pairs(cfg, hr, rng, lrs, hrs)


def bank_pairs(
    cfg: TrainConfig,
    hr: Image.Image,
    rng: random.Random,
    lrs: list[npt.NDArray[np.uint8]],
    hrs: list[npt.NDArray[np.uint8]],
) -> None:
    """Degrade one HR image (twice for `--degrade video`: two draws of its damage) and cut its
    (LR, HR) patch pairs into the lists."""
    s, p = cfg.scale, cfg.patch
    w, h = hr.width, hr.height
    copies = 2 if cfg.degrade == "video" else 1
    for c in range(copies):
        src = hr
        if cfg.degrade == "video" and (c > 0 or rng.random() < 0.7):
            radius = rng.uniform(0.0, 1.0)
            if radius > 0.2:
                src = hr.filter(ImageFilter.GaussianBlur(radius))
        lr = src.resize((w // s, h // s), Image.Resampling.BICUBIC)
        if cfg.degrade == "video" and (c > 0 or rng.random() < 0.7):
            lr = degrade_lr(lr, rng)
        ly, hy = protocol.y_channel(lr), protocol.y_channel(hr)
        stride = p // 2
        for i in range(0, ly.shape[0] - p + 1, stride):
            for j in range(0, ly.shape[1] - p + 1, stride):
                lrs.append(ly[i : i + p, j : j + p])
                hrs.append(hy[i * s : (i + p) * s, j * s : (j + p) * s])


def evaluate(model: Network, scale: int, folder: Path | list[Path], device: str) -> float:
    """Mean protocol PSNR of `model` on the images of `folder` (or on a list of images)."""
    import torch

    scores = []
    files = folder if isinstance(folder, list) else protocol.list_images(folder)
    with torch.no_grad():
        for path in files:
            hr, lr = protocol.hr_lr_pair(path, scale)
            x = torch.from_numpy(protocol.y_channel(lr)).float().div(255)[None, None]
            y = model(x.to(device))[0, 0].cpu().numpy()
            scores.append(protocol.psnr_y(protocol.to_uint8(y), protocol.y_channel(hr), scale))
    return float(np.mean(scores))


# --- command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (`--help` lists it)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=int, default=3, choices=(2, 3, 4))
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="folder of training images")
    ap.add_argument("--eval", default=str(DEFAULT_EVAL), help="folder with Set5/Set14 (optional)")
    ap.add_argument("--out", type=Path, help="ONNX file to write (default models/espcn_x{scale}.onnx)")
    ap.add_argument("--degrade", choices=("clean", "video"), default="clean")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--patch", type=int, default=24, help="LR patch size")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--mse-fraction", type=float, default=0.25, help="last fraction of steps using MSE")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--extra-layers",
        type=int,
        default=0,
        help="3x3x64 convolutions added after the second layer (default 0: ESPCN)",
    )
    ap.add_argument(
        "--init",
        type=Path,
        help="espcn: start from this exported model's weights "
        "(added layers start as the identity); ecb: from this training checkpoint's "
        "tensors of matching name and shape (e.g. another scale's head and body), "
        "or from an exported ECB model's merged convs (a shipped model)",
    )
    ap.add_argument(
        "--arch",
        choices=("espcn", "ecb"),
        default="espcn",
        help="espcn (default): the model zoo's network; ecb: ECBSR-style blocks "
        "re-parameterised to plain 3x3 convs with a global residual",
    )
    ap.add_argument("--channels", type=int, default=16, help="ecb: feature channels (default 16)")
    ap.add_argument(
        "--blocks", type=int, default=4, help="ecb: 3x3 CxC blocks between head and tail (default 4)"
    )
    ap.add_argument(
        "--refine",
        type=int,
        default=0,
        metavar="K",
        help="ecb: add a refinement branch of K channels above the input's resolution "
        "(vsr.lab.networks.build_ecb says why; 0: none)",
    )
    ap.add_argument(
        "--refine-factor",
        type=int,
        default=0,
        metavar="F",
        help="ecb: the branch works at F x the input's resolution (default: the scale)",
    )
    ap.add_argument(
        "--tier",
        choices=("fast", "balanced", "quality"),
        help="the speed/quality tier this model is meant for (recorded in metadata)",
    )
    ap.add_argument(
        "--phases",
        type=int,
        default=1,
        help="HR crop offsets per image and size (1: the protocol's (0, 0) only; up "
        "to scale*scale): more distinct LR images from the same pictures",
    )
    ap.add_argument(
        "--colour-mixes",
        type=int,
        default=0,
        help="per picture, this many more grey images made from random mixes of its "
        "R, G and B (luma is one such mix): more varied edges from the same data",
    )
    ap.add_argument(
        "--sizes",
        default="1.0,0.8,0.6,0.5",
        help="comma-separated factors each picture is also used at (Pillow bicubic): "
        "more scales of texture from the same data",
    )
    ap.add_argument(
        "--ema",
        type=float,
        default=0.0,
        help="validate and export an exponential moving average of the weights with "
        "this decay per step (e.g. 0.999; 0: off, the last weights)",
    )
    ap.add_argument(
        "--loss",
        choices=("l1-mse", "psnr"),
        default="l1-mse",
        help="l1-mse: L1, then MSE for the last --mse-fraction of the run (default); "
        "psnr: the mean over patches of each patch's log MSE, the way the PSNR "
        "figures average over images",
    )
    ap.add_argument(
        "--holdout",
        type=int,
        default=0,
        help="keep this many training images out of training and report their "
        "PSNR at every checkpoint (validation; Set5/Set14 are evaluation only)",
    )
    ap.add_argument(
        "--bf16-consistency",
        type=float,
        default=0.0,
        metavar="WEIGHT",
        help="ecb: add WEIGHT x the mean squared excess, beyond one grey level, of the "
        "output with every conv input rounded to bfloat16 over the float32 output: a model "
        "that OpenVINO's bf16 runs within 2 grey levels of its float32, which `--engine "
        "auto` requires (issue 35); float32 training only (0: off)",
    )
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    ap.add_argument(
        "--max-minutes",
        type=float,
        default=0,
        help="fit the whole run into this many minutes: the schedule follows the "
        "clock and training stops when its share is spent (at --steps at most); "
        "the steps done are recorded",
    )
    ap.add_argument("--checkpoint", type=Path, help="checkpoint file (default <out>.ckpt)")
    ap.add_argument("--checkpoint-every", type=int, default=500)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="bf16: mixed precision (bfloat16 convs, float32 weights and loss) in "
        "channels-last layout; 4-5x faster on CPUs with AMX, and on GPUs",
    )
    return ap.parse_args(argv)


def pick_device(args: argparse.Namespace) -> str:
    """Set torch's CPU threads and pick the device (`--device auto`: CUDA where there is one)."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device: str = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed batch and patch shapes: tune convs once
    return device


def output_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """(the ONNX model to write, its checkpoint), their folders made."""
    out: Path = args.out or MODELS / f"espcn_x{args.scale}.onnx"
    ckpt_path: Path = args.checkpoint or out.with_name(out.name + ".ckpt")
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out, ckpt_path


def config_from(args: argparse.Namespace) -> TrainConfig:
    """The run's settings from the command line, which exits with a message where they do
    not fit together."""
    ecb = args.arch == "ecb"
    if ecb and args.extra_layers:
        raise SystemExit("--extra-layers is for --arch espcn")
    if (args.refine or args.refine_factor) and not ecb:
        raise SystemExit("--refine is for --arch ecb")
    if args.refine_factor and not args.refine:
        raise SystemExit("--refine-factor needs --refine K")
    refine_factor = (args.refine_factor or args.scale) if args.refine else 0
    if args.refine < 0 or (refine_factor and (refine_factor < 2 or args.scale % refine_factor)):
        raise SystemExit(
            f"--refine {args.refine} --refine-factor {args.refine_factor}: K must be "
            f"positive and F at least 2 and divide the scale {args.scale}"
        )
    if args.init and not ecb and args.init.suffix != ".onnx":
        raise SystemExit(
            "--init takes an exported .onnx model for --arch espcn (and a training "
            ".ckpt or an exported .onnx model for --arch ecb)"
        )
    try:
        sizes = tuple(float(f) for f in args.sizes.split(","))
    except ValueError:
        raise SystemExit(f"--sizes {args.sizes!r}: expected comma-separated factors, e.g. 1.0,0.8") from None
    if not sizes or not all(0 < f <= 1 for f in sizes):
        raise SystemExit(f"--sizes {args.sizes!r}: each factor must be in (0, 1]")
    cfg = TrainConfig(
        args.scale,
        str(Path(args.data)),
        args.degrade,
        args.steps,
        args.batch,
        args.patch,
        args.lr,
        args.mse_fraction,
        args.seed,
        sizes,
        args.extra_layers,
        str(args.init or ""),
        args.arch,
        args.channels if ecb else 0,
        args.blocks if ecb else 0,
        args.holdout,
        args.tier or "",
        args.phases,
        args.colour_mixes,
        args.ema,
        args.refine,
        refine_factor,
        args.loss,
        args.bf16_consistency,
    )
    if not 0 <= cfg.ema < 1:
        raise SystemExit(f"--ema {cfg.ema}: the decay must be in [0, 1)")
    if cfg.bf16_consistency < 0 or (cfg.bf16_consistency and (not ecb or args.precision != "fp32")):
        raise SystemExit("--bf16-consistency takes a weight >= 0, with --arch ecb and --precision fp32")
    return cfg


# --- data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    """The patch bank on the training device, and the held-out images."""

    lr: Tensor  # uint8 [N, patch, patch]
    hr: Tensor  # uint8 [N, patch*scale, patch*scale]
    held: list[Path]


def load_data(cfg: TrainConfig, device: str) -> Data:
    """Cut the patch bank and move it to `device`; set the held-out images aside."""
    import torch

    t0 = time.monotonic()
    lr_bank, hr_bank = patch_bank(cfg)
    print(
        f"patch bank: {len(lr_bank)} pairs of {cfg.patch}px LR patches from {cfg.data} "
        f"({time.monotonic() - t0:.1f}s)",
        flush=True,
    )
    lr_t = torch.from_numpy(lr_bank).to(device)
    hr_t = torch.from_numpy(hr_bank).to(device)
    held = split_holdout(cfg)[1]
    if held:
        print(
            f"holding out {len(held)} images for validation: " + ", ".join(p.name for p in held), flush=True
        )
    return Data(lr_t, hr_t, held)


# --- model --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """The network in training and everything its checkpoint carries beside it."""

    cfg: TrainConfig
    model: Network
    opt: Any  # torch.optim.Adam
    ema: WeightAverage | None
    gen: Any  # torch.Generator: the batches' draws
    device: str
    precision: str  # fp32 or bf16
    start: int = 0  # the step this run of the script started at (0, or where it resumed)
    done_before: float = 0.0  # fraction of the schedule a resumed run had already done
    # How the steps so far were trained, one entry per run of this script (a model can be
    # carried across days, machines and precisions; its metadata says how):
    history: list[dict[str, object]] = field(default_factory=list)


def build_network(cfg: TrainConfig, init: Path | None, precision: str, device: str) -> Network:
    """The network `cfg` describes, started from `init`'s weights where given, on `device`."""
    import torch

    ecb = cfg.arch == "ecb"
    if ecb:
        model = build_ecb(cfg.scale, cfg.channels, cfg.blocks, cfg.refine, cfg.refine_factor)
    else:
        model = build_model(cfg.scale, cfg.extra_layers)
    if init:
        load = (init_ecb_from_onnx if init.suffix == ".onnx" else init_from_checkpoint) if ecb else init_from
        copied = load(model, init)
        print(f"initialised {len(copied)} tensors from {init}", flush=True)
    model = model.to(device)
    if precision == "bf16":
        model = model.to(memory_format=torch.channels_last)
    return model


def start_run(cfg: TrainConfig, model: Network, precision: str, device: str) -> Run:
    """A fresh optimiser, weight average and batch generator for `model`, at step 0."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ema = WeightAverage(model, cfg.ema) if cfg.ema else None
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    return Run(cfg, model, opt, ema, gen, device, precision)


def resume(run: Run, ckpt_path: Path) -> Run:
    """`run` carried on from its checkpoint, which must have been made with the same settings
    (but for the steps: a --max-minutes run may have lowered them, and those are kept)."""
    import torch

    ck = torch.load(ckpt_path, map_location=run.device, weights_only=False)
    saved = dict(ck["config"])
    saved = {**CONFIG_DEFAULTS, **saved}  # checkpoints from before these options
    if {**saved, "steps": 0} != {**asdict(run.cfg), "steps": 0}:
        raise SystemExit(
            f"checkpoint {ckpt_path} was made with other settings; hint: pass --no-resume or delete it"
        )
    run.model.load_state_dict(ck["model"])
    run.opt.load_state_dict(ck["opt"])
    if run.ema is not None:
        run.ema.load_state_dict(ck["ema"])
    run.gen.set_state(ck["gen"].cpu())  # map_location moved it to the device with the weights
    start: int = ck["step"]
    cfg = replace(run.cfg, steps=saved["steps"])  # a --max-minutes run may have lowered it
    print(f"resumed from {ckpt_path} at step {start}", flush=True)
    return replace(
        run,
        cfg=cfg,
        start=start,
        done_before=float(ck.get("progress", start / max(1, cfg.steps))),
        history=list(ck.get("history", [{"steps": start, "recorded": "steps only"}])),
    )


# --- loop ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """Where a run is in its schedule, and the learning rate there.

    --max-minutes makes the schedule follow the clock instead of the step count: warm-up,
    cosine decay and the MSE phase are fractions of the time left for training, and the
    run stops when it is spent. A step-count estimate from a short calibration is not safe
    when several runs share one GPU and start at different times (the rate changes as the
    others start and finish); the clock is. A resumed timed run fits the rest of the
    schedule (from where the checkpoint left it) into its minutes, so a run can be carried
    across working days, each ending with a usable model. `--steps` still caps a timed run,
    and then the schedule follows whichever runs out first: a fast network that reaches
    its steps before the clock ends annealed, not cut off at a high rate."""

    steps: int  # the steps asked for (as the checkpoint of a resumed run had them)
    lr: float
    timed: bool
    t_train: float  # time.monotonic() when training started
    train_seconds: float  # the minutes given, less the patch bank and the final reserve
    done_before: float

    def progress(self, step: int) -> float:
        by_steps = step / max(1, self.steps)
        if self.timed:
            by_clock = (
                self.done_before
                + (1 - self.done_before) * (time.monotonic() - self.t_train) / self.train_seconds
            )
            return max(by_steps, by_clock)
        return by_steps

    def lr_at(self, step: int) -> float:
        warm = 200
        if step < warm:
            return self.lr * (step + 1) / warm
        t = self.progress(step)
        if not self.timed:
            t = (step - warm) / max(1, self.steps - warm)
        t = min(max(t, 0.0), 1.0)
        return self.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


def schedule_for(run: Run, max_minutes: float, t0: float) -> Schedule:
    """The schedule of `run` from now, fitted into `max_minutes` since `t0` where given."""
    timed = bool(max_minutes)
    t_train = time.monotonic()
    reserve = 30.0  # final Set5/Set14 evaluation, export and export check
    train_seconds = max_minutes * 60 - (t_train - t0) - reserve
    if timed and train_seconds <= 30:
        raise SystemExit(
            f"--max-minutes {max_minutes} leaves no time to train (the patch bank took {t_train - t0:.0f}s)"
        )
    return Schedule(run.cfg.steps, run.cfg.lr, timed, t_train, train_seconds, run.done_before)


def segment(run: Run, schedule: Schedule, step: int) -> dict[str, object]:
    """How this run of the script trained, up to `step` (an entry of the run's history)."""
    import torch

    return {
        "steps": step - run.start,
        "precision": run.precision,
        "device": run.device,
        "threads": torch.get_num_threads() if run.device == "cpu" else None,
        "seconds": round(time.monotonic() - schedule.t_train),
        "date": time.strftime("%Y-%m-%d"),
    }


def bf16_excess(model: Network, x: Tensor, pred: Tensor) -> Tensor:
    """Mean over pixels of the squared grey levels, beyond one, by which the output with every
    conv input rounded to bfloat16 (`forward(bf16=True)`) is off the float32 output `pred`.

    Why: OpenVINO's bf16 runs a model 2x faster on CPUs with avx512_bf16/AMX, but `--engine
    auto` allows it only for a model whose every pixel stays within 2 grey levels of its
    float32 on the hard images (issue 35). A model trained only for its output is 4-8 levels
    off there, mostly from rounding the first two layers' inputs; this term teaches the
    network to be insensitive to that rounding. Both outputs get gradients (the rounding
    passes them straight through)."""
    import torch

    excess = torch.relu((model(x, bf16=True) - pred).abs() * 255 - 1)
    return (excess * excess).mean()


def train_step(run: Run, data: Data, schedule: Schedule, step: int) -> Tensor:
    """One optimiser step on a random batch of the bank; the batch's loss."""
    import torch

    cfg, model, device = run.cfg, run.model, run.device
    mse = schedule.progress(step) >= 1 - cfg.mse_fraction
    idx = torch.randint(0, len(data.lr), (cfg.batch,), generator=run.gen)
    k = int(torch.randint(0, 8, (1,), generator=run.gen))
    x = data.lr[idx.to(device)].float().div_(255).unsqueeze(1)
    y = data.hr[idx.to(device)].float().div_(255).unsqueeze(1)
    # One dihedral transform per batch (rot90 x flip): the same for input and target.
    x, y = torch.rot90(x, k % 4, (2, 3)), torch.rot90(y, k % 4, (2, 3))
    if k >= 4:
        x, y = x.flip(3), y.flip(3)
    for g in run.opt.param_groups:
        g["lr"] = schedule.lr_at(step)
    if run.precision == "bf16":
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            pred = model(x)
        pred = pred.float()
    else:
        pred = model(x)
    if cfg.loss == "psnr":
        loss = psnr_loss(pred, y)
    else:
        loss = torch.nn.functional.mse_loss(pred, y) if mse else (pred - y).abs().mean()
    if cfg.bf16_consistency:
        loss = loss + cfg.bf16_consistency * bf16_excess(model, x, pred)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    if run.ema is not None:
        run.ema.update(model)
    return loss


def log_step(run: Run, schedule: Schedule, step: int, loss: Tensor, t_start: float) -> None:
    """Print the loss, learning rate, rate and time left after `step`."""
    done = step + 1 - run.start
    rate = done / (time.monotonic() - t_start)
    eta = (
        (1 - schedule.progress(step)) / (1 - run.done_before) * schedule.train_seconds
        if schedule.timed
        else (run.cfg.steps - step - 1) / rate
    )
    print(
        f"step {step + 1}/{run.cfg.steps} loss {loss.item():.5f} lr {schedule.lr_at(step):.2e} "
        f"{rate:.1f} steps/s eta {eta / 60:.1f} min",
        flush=True,
    )


def save_checkpoint(run: Run, schedule: Schedule, step: int, ckpt_path: Path) -> None:
    """Write the checkpoint of `run` at `step` (through a temporary file: a run killed while
    writing leaves the previous one)."""
    import torch

    tmp = ckpt_path.with_suffix(".tmp")
    torch.save(
        {
            "config": asdict(run.cfg),
            "model": run.model.state_dict(),
            "opt": run.opt.state_dict(),
            "gen": run.gen.get_state(),
            "step": step,
            "progress": schedule.progress(step),
            "history": [*run.history, segment(run, schedule, step)],
            **({"ema": run.ema.state_dict()} if run.ema is not None else {}),
        },
        tmp,
    )
    tmp.replace(ckpt_path)


def validate(run: Run, held: list[Path], step: int) -> None:
    """Print the PSNR on the held-out images of the weights that would be exported now."""
    run.model.eval()
    if run.ema is not None:
        run.ema.swap(run.model)
    val = evaluate(run.model, run.cfg.scale, held, run.device)
    if run.ema is not None:
        run.ema.swap(run.model)
    run.model.train()
    print(f"step {step}: holdout PSNR {val:.3f} dB ({len(held)} training images kept out)", flush=True)


def train_loop(
    run: Run, data: Data, schedule: Schedule, ckpt_path: Path, log_every: int, checkpoint_every: int
) -> int:
    """Train from the run's start to its steps (or, timed, until the clock runs out),
    checkpointing and validating on the way; the step it stopped at."""
    t_start = time.monotonic()
    step = run.start
    while step < run.cfg.steps:
        if schedule.timed and schedule.progress(step) >= 1.0:
            break
        loss = train_step(run, data, schedule, step)
        if (step + 1) % log_every == 0:
            log_step(run, schedule, step, loss, t_start)
        if (step + 1) % checkpoint_every == 0 or step + 1 == run.cfg.steps:
            save_checkpoint(run, schedule, step + 1, ckpt_path)
            if data.held:
                validate(run, data.held, step + 1)
        step += 1
    return step


# --- export -------------------------------------------------------------------------------


def architecture(model: Network, cfg: TrainConfig) -> tuple[int, int, str]:
    """(parameters, multiply-accumulates per input pixel, a description) of the exported graph."""
    if cfg.arch == "ecb":
        # what the exported graph holds: the merged convs (the branch parameters are training-only)
        params = sum(w.size + b.size for _, w, b in model.export_layers())
        macs = ecb_macs_per_pixel(cfg.scale, cfg.channels, cfg.blocks, cfg.refine, cfg.refine_factor)
        f, k = cfg.refine_factor, cfg.refine
        branch = (
            f"; plus a refinement branch from the last Relu: conv3x3x{f * f * k}-DepthToSpace({f})-"
            f"relu-conv3x3x{k}-relu-conv3x3x{(cfg.scale // f) ** 2}"
            + (f"-DepthToSpace({cfg.scale // f})" if cfg.scale > f else "")
            + ", added to the output"
            if k
            else ""
        )
        arch = (
            f"ECBSR-style M{cfg.blocks}C{cfg.channels}: conv3x3x{cfg.channels}-relu-"
            f"(conv3x3x{cfg.channels}-relu)x{cfg.blocks}-conv3x3xr2-Add(input)-DepthToSpace(CRD)"
            f"{branch}; trained as edge-oriented multi-branch blocks, re-parameterised to plain convs"
        )
        return params, macs, arch
    params = sum(p.numel() for p in model.parameters())
    layers = [
        (1, 64, 5),
        (64, 64, 3),
        *[(64, 64, 3)] * cfg.extra_layers,
        (64, 32, 3),
        (32, cfg.scale * cfg.scale, 3),
    ]
    macs = sum(cin * cout * kk * kk for cin, cout, kk in layers)
    arch = (
        "ESPCN conv5x5x64-relu-conv3x3x64-relu-"
        + "conv3x3x64-relu-" * cfg.extra_layers
        + "conv3x3x32-relu-conv3x3xr2-DepthToSpace(CRD)"
    )
    return params, macs, arch


def final_psnr(run: Run, eval_dir: Path) -> dict[str, float]:
    """PSNR on Set5 and Set14 (those of them under `eval_dir`), printed."""
    psnr: dict[str, float] = {}
    for name in ("Set5", "Set14"):
        folder = eval_dir / name
        if folder.is_dir():
            psnr[name] = round(evaluate(run.model, run.cfg.scale, folder, run.device), 3)
    print(f"PSNR (shared protocol, Y): {psnr}", flush=True)
    return psnr


def model_metadata(
    run: Run,
    schedule: Schedule,
    step: int,
    psnr: dict[str, float],
    args: argparse.Namespace,
    argv: list[str] | None,
    t0: float,
) -> dict[str, str]:
    """What the ONNX model records of itself: its architecture, cost, data and how it was trained."""
    cfg = run.cfg
    params, macs, arch = architecture(run.model, cfg)
    return {
        "vsr.scale": str(cfg.scale),
        "vsr.architecture": arch,
        "vsr.tier": cfg.tier or ("balanced" if cfg.arch != "ecb" else "unspecified"),
        "vsr.macs_per_pixel": str(macs),
        "vsr.parameters": str(params),
        "vsr.degradation": cfg.degrade,
        "vsr.training_data": f"{len(split_holdout(cfg)[0])} images in "
        + ", ".join(sorted(d.name for d in Path(cfg.data).iterdir() if d.is_dir()) or [Path(cfg.data).name]),
        "vsr.psnr": json.dumps(psnr),
        "vsr.train_command": "python scripts/models/train.py "
        + shlex.join(argv if argv is not None else sys.argv[1:]),
        "vsr.train_config": json.dumps(asdict(cfg)),
        "vsr.train_steps": str(cfg.steps)
        + ("" if cfg.steps == schedule.steps else f" (the steps {args.max_minutes} minutes allowed)"),
        "vsr.train_device": run.device,
        "vsr.train_precision": run.precision,
        "vsr.train_history": json.dumps(
            [*run.history, segment(run, schedule, step)]
            if step > run.start or not run.history
            else run.history
        ),
        "vsr.train_seconds": f"{time.monotonic() - t0:.0f}",
    }


def export(
    run: Run,
    schedule: Schedule,
    step: int,
    held: list[Path],
    args: argparse.Namespace,
    argv: list[str] | None,
    t0: float,
    out: Path,
) -> None:
    """Evaluate the final weights (with --ema, the average) on Set5/Set14 and the held-out
    images, write them to `out` with their metadata, and check the file against PyTorch."""
    run.model.eval()
    if run.ema is not None:  # from here on the model is the average: evaluated, exported, checked
        run.ema.swap(run.model)
    psnr = final_psnr(run, Path(args.eval))
    metadata = model_metadata(run, schedule, step, psnr, args, argv, t0)
    if held:
        run.model.eval()
        metadata["vsr.train_holdout_psnr"] = json.dumps(
            {
                "images": [p.name for p in held],
                "psnr": round(evaluate(run.model, run.cfg.scale, held, run.device), 3),
            }
        )
    run.model.cpu()
    export_onnx(run.model, run.cfg.scale, out, metadata)
    err = check_export(run.model, out)
    print(
        f"wrote {out} ({metadata['vsr.parameters']} parameters); ONNX vs PyTorch max abs diff {err:.2e}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Train (or carry on training) the model the command line describes, and export it."""
    args = parse_args(argv)

    import torch

    device = pick_device(args)
    out, ckpt_path = output_paths(args)
    cfg = config_from(args)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    t0 = time.monotonic()
    data = load_data(cfg, device)
    run = start_run(cfg, build_network(cfg, args.init, args.precision, device), args.precision, device)
    if ckpt_path.exists() and not args.no_resume:
        run = resume(run, ckpt_path)
    schedule = schedule_for(run, args.max_minutes, t0)
    step = train_loop(run, data, schedule, ckpt_path, args.log_every, args.checkpoint_every)
    if schedule.timed:
        run = replace(run, cfg=replace(run.cfg, steps=step))
        seconds = time.monotonic() - schedule.t_train
        print(
            f"trained {step - run.start} steps (to step {step}) in {seconds:.0f}s "
            f"(--max-minutes {args.max_minutes})",
            flush=True,
        )
    export(run, schedule, step, data.held, args, argv, t0, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
