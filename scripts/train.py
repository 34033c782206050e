#!/usr/bin/env python3
"""Train an ESPCN super-resolution model and export it as vsr's ONNX model.

Architecture (the ONNX model zoo's Super Resolution card, Shi et al. 2016): conv 5x5x64,
3x3x64, 3x3x32, 3x3x(r*r), ReLU between them, pixel shuffle (ONNX `DepthToSpace`, CRD).
Input and output are the luma channel, float32 in 0..1, [N,1,H,W] -> [N,1,rH,rW].

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

The exported graph is written directly with `onnx.helper` rather than via torch.onnx: the
model is five nodes, and this keeps the file identical whichever torch version trained it.

Usage:
    python scripts/train.py --scale 3 --out models/espcn_x3.onnx
    python scripts/train.py --scale 3 --degrade video --out models/espcn_x3_video.onnx
A run writes a checkpoint every `--checkpoint-every` steps next to `--out`
(`<out>.ckpt`) and resumes from it when started again with the same settings.
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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sr_protocol

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "train"
DEFAULT_EVAL = ROOT.parent / "shared" / "data" / "eval"


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


def layer_names(extra: int) -> list[str]:
    """The convolutions in order: conv1, conv2, the extra 3x3x64 ones (conv2b, conv2c, ...),
    conv3, conv4. The names are the ONNX initializers' prefixes, so a model with extra
    layers can start from one without (`--init`)."""
    return ["conv1", "conv2", *(f"conv2{chr(ord('b') + i)}" for i in range(extra)), "conv3", "conv4"]


def build_model(scale: int, extra: int = 0):  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    class ESPCN(nn.Module):
        def __init__(self, r: int) -> None:
            super().__init__()
            self.names = layer_names(extra)
            shapes = {"conv1": (1, 64, 5), "conv3": (64, 32, 3), "conv4": (32, r * r, 3)}
            for name in self.names:
                cin, cout, k = shapes.get(name, (64, 64, 3))
                setattr(self, name, nn.Conv2d(cin, cout, k, padding=k // 2))
            self.shuffle = nn.PixelShuffle(r)
            for name in self.names[:-1]:
                conv = getattr(self, name)
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                nn.init.zeros_(conv.bias)
            # A small last layer starts the network near a flat output; the bias of 0.5
            # starts it at mid-grey, where the loss surface is tame.
            nn.init.normal_(self.conv4.weight, std=1e-3)
            nn.init.constant_(self.conv4.bias, 0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for name in self.names[:-1]:
                x = torch.relu(getattr(self, name)(x))
            return self.shuffle(self.conv4(x))

    return ESPCN(scale)


def init_from(model, path: Path) -> list[str]:  # type: ignore[no-untyped-def]
    """Copy the weights of an exported vsr ESPCN model into `model` wherever the names and
    shapes match; extra 3x3x64 layers it lacks start as the identity (a centred one-hot
    kernel, zero bias), which passes the ReLU output before it through unchanged, so the
    deeper network starts out computing exactly what the given model computes."""
    import onnx
    import torch
    from onnx import numpy_helper

    weights = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    copied = []
    with torch.no_grad():
        for name, param in model.named_parameters():
            w = weights.get(name)
            if w is not None and tuple(w.shape) == tuple(param.shape):
                param.copy_(torch.from_numpy(np.array(w, np.float32)))
                copied.append(name)
            elif w is None and name.endswith(".weight") and tuple(param.shape) == (64, 64, 3, 3):
                param.zero_()
                for c in range(64):
                    param[c, c, 1, 1] = 1.0
            elif name.endswith(".bias") and w is None:
                param.zero_()
            else:
                raise SystemExit(f"--init {path}: no weights for {name} {tuple(param.shape)}")
    return copied


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


def patch_bank(cfg: TrainConfig) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """All (LR, HR) Y patches, cut with half-patch stride from every image at every size."""
    rng = random.Random(cfg.seed)
    s, p = cfg.scale, cfg.patch
    lrs: list[npt.NDArray[np.uint8]] = []
    hrs: list[npt.NDArray[np.uint8]] = []
    files = sr_protocol.list_images(Path(cfg.data))
    if not files:
        raise SystemExit(f"no training images under {cfg.data}")
    copies = 2 if cfg.degrade == "video" else 1
    for path in files:
        base = Image.open(path).convert("RGB")
        for f in cfg.resize_factors:
            img = base if f == 1.0 else base.resize(
                (max(p * s, round(base.width * f)), max(p * s, round(base.height * f))),
                Image.BICUBIC, reducing_gap=None)
            w, h = img.width - img.width % s, img.height - img.height % s
            hr = img.crop((0, 0, w, h))
            for c in range(copies):
                src = hr
                if cfg.degrade == "video" and (c > 0 or rng.random() < 0.7):
                    radius = rng.uniform(0.0, 1.0)
                    if radius > 0.2:
                        src = hr.filter(ImageFilter.GaussianBlur(radius))
                lr = src.resize((w // s, h // s), Image.BICUBIC)
                if cfg.degrade == "video" and (c > 0 or rng.random() < 0.7):
                    lr = degrade_lr(lr, rng)
                ly, hy = sr_protocol.y_channel(lr), sr_protocol.y_channel(hr)
                stride = p // 2
                for i in range(0, ly.shape[0] - p + 1, stride):
                    for j in range(0, ly.shape[1] - p + 1, stride):
                        lrs.append(ly[i : i + p, j : j + p])
                        hrs.append(hy[i * s : (i + p) * s, j * s : (j + p) * s])
    return np.stack(lrs), np.stack(hrs)


def evaluate(model, scale: int, folder: Path, device: str) -> float:  # type: ignore[no-untyped-def]
    """Mean protocol PSNR of `model` on the images of `folder`."""
    import torch

    scores = []
    with torch.no_grad():
        for path in sr_protocol.list_images(folder):
            hr, lr = sr_protocol.hr_lr_pair(path, scale)
            x = torch.from_numpy(sr_protocol.y_channel(lr)).float().div(255)[None, None]
            y = model(x.to(device))[0, 0].cpu().numpy()
            scores.append(sr_protocol.psnr_y(sr_protocol.to_uint8(y), sr_protocol.y_channel(hr), scale))
    return float(np.mean(scores))


def export_onnx(model, scale: int, out: Path, metadata: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Write the five-node ESPCN graph with dynamic batch/height/width."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    sd = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    inits = [numpy_helper.from_array(sd[k], name=k) for k in sd]
    nodes = []
    x = "input"
    names = model.names
    for name in names:
        pad = sd[f"{name}.weight"].shape[2] // 2
        conv_out = f"{name}_out"
        nodes.append(helper.make_node("Conv", [x, f"{name}.weight", f"{name}.bias"], [conv_out],
                                      pads=[pad] * 4, kernel_shape=[2 * pad + 1] * 2, name=name))
        x = conv_out
        if name != names[-1]:
            relu = "relu" + name.removeprefix("conv")
            nodes.append(helper.make_node("Relu", [x], [f"{relu}_out"], name=relu))
            x = f"{relu}_out"
    nodes.append(helper.make_node("DepthToSpace", [x], ["output"], blocksize=scale, mode="CRD",
                                  name="pixel_shuffle"))
    graph = helper.make_graph(
        nodes, "espcn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, "height", "width"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                       ["batch", 1, f"height*{scale}", f"width*{scale}"])],
        inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="vsr scripts/train.py")
    m.ir_version = 8
    helper.set_model_props(m, metadata)
    onnx.checker.check_model(m)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".onnx.tmp")
    onnx.save(m, str(tmp))
    tmp.replace(out)


def check_export(model, out: Path) -> float:  # type: ignore[no-untyped-def]
    """Largest |ONNX - PyTorch| on a random odd-sized batch; raises if not ~equal."""
    import onnxruntime as ort
    import torch

    x = np.random.default_rng(0).random((2, 1, 37, 53), dtype=np.float32)
    with torch.no_grad():
        ref = model.cpu()(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0]
    err = float(np.abs(got - ref).max())
    if got.shape != ref.shape or err > 1e-4:
        raise SystemExit(f"ONNX export differs from PyTorch: shape {got.shape} vs {ref.shape}, max err {err}")
    return err


def main(argv: list[str] | None = None) -> int:
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
    ap.add_argument("--extra-layers", type=int, default=0,
                    help="3x3x64 convolutions added after the second layer (default 0: ESPCN)")
    ap.add_argument("--init", type=Path, help="start from this exported model's weights "
                    "(added layers start as the identity)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="fit the run into this many minutes: after a short calibration, "
                         "--steps is lowered (and recorded) if the device is too slow for it")
    ap.add_argument("--checkpoint", type=Path, help="checkpoint file (default <out>.ckpt)")
    ap.add_argument("--checkpoint-every", type=int, default=500)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    out: Path = args.out or ROOT / "models" / f"espcn_x{args.scale}.onnx"
    ckpt_path = args.checkpoint or out.with_name(out.name + ".ckpt")
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(args.scale, str(Path(args.data)), args.degrade, args.steps, args.batch,
                      args.patch, args.lr, args.mse_fraction, args.seed, (1.0, 0.8, 0.6, 0.5),
                      args.extra_layers, str(args.init or ""))
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    t0 = time.monotonic()
    lr_bank, hr_bank = patch_bank(cfg)
    print(f"patch bank: {len(lr_bank)} pairs of {cfg.patch}px LR patches from {cfg.data} "
          f"({time.monotonic() - t0:.1f}s)", flush=True)
    lr_t = torch.from_numpy(lr_bank).to(device)
    hr_t = torch.from_numpy(hr_bank).to(device)

    model = build_model(cfg.scale, cfg.extra_layers)
    if args.init:
        copied = init_from(model, args.init)
        print(f"initialised {len(copied)} tensors from {args.init}", flush=True)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    start = 0
    if ckpt_path.exists() and not args.no_resume:
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        saved = dict(ck["config"])
        saved = {"extra_layers": 0, "init": "", **saved}  # checkpoints from before these options
        if {**saved, "steps": 0} != {**asdict(cfg), "steps": 0}:
            raise SystemExit(f"checkpoint {ckpt_path} was made with other settings; "
                             "hint: pass --no-resume or delete it")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        gen.set_state(ck["gen"])
        start = ck["step"]
        cfg = replace(cfg, steps=saved["steps"])  # a --max-minutes run may have lowered it
        print(f"resumed from {ckpt_path} at step {start}", flush=True)

    def lr_at(step: int) -> float:
        warm = 200
        if step < warm:
            return cfg.lr * (step + 1) / warm
        t = (step - warm) / max(1, cfg.steps - warm)
        return cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))

    requested_steps = cfg.steps
    mse_from = int(cfg.steps * (1 - cfg.mse_fraction))
    n = len(lr_bank)
    t_start = time.monotonic()
    step = start
    t_calib = t_start
    while step < cfg.steps:
        if args.max_minutes and start == 0 and step == 200:
            t_calib = time.monotonic()  # after start-up (CUDA init, autotuning) is paid
        if args.max_minutes and start == 0 and step == 600:
            rate = 400 / (time.monotonic() - t_calib)
            budget = args.max_minutes * 60 - (time.monotonic() - t0) - 20
            fit = 600 + int(rate * max(budget, 0) * 0.95)
            if fit < cfg.steps:
                cfg = replace(cfg, steps=fit)
                mse_from = int(cfg.steps * (1 - cfg.mse_fraction))
                print(f"{rate:.0f} steps/s: lowering --steps from {requested_steps} to {fit} "
                      f"to fit --max-minutes {args.max_minutes}", flush=True)
        idx = torch.randint(0, n, (cfg.batch,), generator=gen)
        k = int(torch.randint(0, 8, (1,), generator=gen))
        x = lr_t[idx.to(device)].float().div_(255).unsqueeze(1)
        y = hr_t[idx.to(device)].float().div_(255).unsqueeze(1)
        # One dihedral transform per batch (rot90 x flip): the same for input and target.
        x, y = torch.rot90(x, k % 4, (2, 3)), torch.rot90(y, k % 4, (2, 3))
        if k >= 4:
            x, y = x.flip(3), y.flip(3)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        pred = model(x)
        loss = torch.nn.functional.mse_loss(pred, y) if step >= mse_from else (pred - y).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % args.log_every == 0:
            done = step + 1 - start
            rate = done / (time.monotonic() - t_start)
            eta = (cfg.steps - step - 1) / rate
            print(f"step {step + 1}/{cfg.steps} loss {loss.item():.5f} lr {lr_at(step):.2e} "
                  f"{rate:.1f} steps/s eta {eta / 60:.1f} min", flush=True)
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == cfg.steps:
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save({"config": asdict(cfg), "model": model.state_dict(), "opt": opt.state_dict(),
                        "gen": gen.get_state(), "step": step + 1}, tmp)
            tmp.replace(ckpt_path)
        step += 1

    model.eval()
    psnr: dict[str, float] = {}
    for name in ("Set5", "Set14"):
        folder = Path(args.eval) / name
        if folder.is_dir():
            psnr[name] = round(evaluate(model, cfg.scale, folder, device), 3)
    print(f"PSNR (shared protocol, Y): {psnr}", flush=True)

    params = sum(p.numel() for p in model.parameters())
    metadata = {
        "vsr.scale": str(cfg.scale),
        "vsr.architecture": "ESPCN conv5x5x64-relu-conv3x3x64-relu-"
        + "conv3x3x64-relu-" * cfg.extra_layers + "conv3x3x32-relu-conv3x3xr2-DepthToSpace(CRD)",
        "vsr.parameters": str(params),
        "vsr.degradation": cfg.degrade,
        "vsr.training_data": f"{len(sr_protocol.list_images(Path(cfg.data)))} images in "
        + ", ".join(sorted(d.name for d in Path(cfg.data).iterdir() if d.is_dir()) or [Path(cfg.data).name]),
        "vsr.psnr": json.dumps(psnr),
        "vsr.train_command": "python scripts/train.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "vsr.train_config": json.dumps(asdict(cfg)),
        "vsr.train_steps": str(cfg.steps) + ("" if cfg.steps == requested_steps
                                             else f" (lowered from {requested_steps} by --max-minutes)"),
        "vsr.train_device": device,
        "vsr.train_seconds": f"{time.monotonic() - t0:.0f}",
    }
    model.cpu()
    export_onnx(model, cfg.scale, out, metadata)
    err = check_export(model, out)
    print(f"wrote {out} ({params} parameters); ONNX vs PyTorch max abs diff {err:.2e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
