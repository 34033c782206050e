"""Behaviour of the training script (scripts/models/train.py, run as a process) and of the
networks it trains (vsr.lab.networks): a few steps on tiny images produce a usable model.

Skipped when PyTorch is not installed (it is the optional `train` extra, not a runtime need).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import load_script, run_script, script_main

from vsr.lab import networks
from vsr.model.cost import conv_macs_per_pixel
from vsr.paths import MODELS

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("PIL")

PLAIN_OPS = {"Conv", "Relu", "Add", "DepthToSpace"}


def train(*args: object) -> str:
    """scripts/models/train.py's main(ARGS) in this process (torch is imported once for the
    whole file, not once per run), which must succeed; what it printed."""
    status, out, err = script_main("models/train.py", *args)
    assert status == 0, err[-2000:]
    return out


def _images(folder: Path, n: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        img = cv2.GaussianBlur(rng.integers(0, 256, (96, 120, 3), dtype=np.uint8), (5, 5), 2)
        cv2.imwrite(str(folder / f"{i}.png"), img)
    return folder


def _off_init(model: networks.Network, seed: int) -> networks.Network:
    """`model` with every parameter moved off its initialisation (seeded), so that a test
    sees each branch at work: the tail and the edge scales start near zero."""
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def test_a_few_steps_write_a_loadable_model_with_metadata(tmp_path: Path) -> None:
    """Training 30 steps on two images exports an ONNX model vsr loads, equal to PyTorch."""
    data = tmp_path / "imgs"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        img = cv2.GaussianBlur(rng.integers(0, 256, (96, 120, 3), dtype=np.uint8), (5, 5), 2)
        cv2.imwrite(str(data / f"{i}.png"), img)
    out = tmp_path / "m.onnx"
    proc = run_script(
        "models/train.py",
        "--scale",
        "2",
        "--data",
        data,
        "--eval",
        tmp_path / "none",
        "--steps",
        "30",
        "--batch",
        "8",
        "--patch",
        "16",
        "--log-every",
        "10",
        "--out",
        out,
        "--threads",
        "1",
    )  # once as a user runs it: a process of its own
    assert proc.returncode == 0 and out.exists(), proc.stderr[-2000:]
    import vsr

    up = vsr.Upscaler(model=str(out), device="cpu")
    assert up.scale == 2
    assert up.model.metadata["vsr.scale"] == "2"
    assert "train.py" in up.model.metadata["vsr.train_command"]
    assert up.upscale(np.zeros((9, 11, 3), np.uint8)).shape == (18, 22, 3)
    assert up.model.metadata["vsr.tier"] == "balanced"
    assert float(up.model.metadata["vsr.macs_per_pixel"]) == conv_macs_per_pixel(out) == 58048
    # Resuming a finished run does no more steps and gives the same file content.
    train(
        "--scale",
        "2",
        "--data",
        data,
        "--eval",
        tmp_path / "none",
        "--steps",
        "30",
        "--batch",
        "8",
        "--patch",
        "16",
        "--out",
        out,
        "--threads",
        "1",
    )


def test_a_deeper_model_initialised_from_a_shipped_one_starts_out_computing_the_same(tmp_path: Path) -> None:
    """--init with --extra-layers: the added 3x3x64 layers start as the identity, so before
    any step the deeper network gives the shipped model's output; its export loads in vsr."""
    import torch

    from vsr.model.load import OnnxUpscaler
    from vsr.options import Device

    src = MODELS / "espcn_x3.onnx"
    model = networks.build_model(3, extra=2)
    copied = networks.init_from(model, src)
    assert len(copied) == 8 and model.names == ["conv1", "conv2", "conv2b", "conv2c", "conv3", "conv4"]
    y = cv2.GaussianBlur(np.random.default_rng(1).integers(0, 256, (2, 30, 40), dtype=np.uint8), (3, 3), 1)
    with torch.no_grad():
        deep = model(torch.from_numpy(y).float().div(255)[:, None]).numpy()[:, 0]
    ref = OnnxUpscaler(src, Device.CPU)(y)
    assert np.abs(np.rint(np.clip(deep, 0, 1) * 255) - ref).max() <= 1
    out = tmp_path / "deep.onnx"
    networks.export_onnx(model, 3, out, {"vsr.scale": "3"})
    assert networks.check_export(model, out) < 1e-4
    up = OnnxUpscaler(out, Device.CPU)
    assert up.scale == 3 and np.abs(up(y).astype(int) - ref).max() <= 1


def test_ecb_trains_a_few_steps_and_exports_a_plain_graph_vsr_loads(tmp_path: Path) -> None:
    """--arch ecb: a few steps, then one plain Conv per block (the branches merged), the
    global residual Add and DepthToSpace; metadata records tier and cost; the held-out image
    is not trained on; a resume with another width is refused."""
    import onnx

    data = _images(tmp_path / "imgs", 3)
    out = tmp_path / "ecb.onnx"
    args = [
        "--arch",
        "ecb",
        "--channels",
        "4",
        "--blocks",
        "2",
        "--tier",
        "fast",
        "--scale",
        "3",
        "--data",
        str(data),
        "--eval",
        str(tmp_path / "none"),
        "--steps",
        "20",
        "--batch",
        "8",
        "--patch",
        "12",
        "--holdout",
        "1",
        "--checkpoint-every",
        "10",
        "--log-every",
        "10",
        "--out",
        str(out),
        "--threads",
        "1",
    ]
    train(*args)
    m = onnx.load(str(out))
    ops = [n.op_type for n in m.graph.node]
    assert set(ops) <= PLAIN_OPS and ops.count("Conv") == 4 and ops.count("Add") == 1
    assert all(len(i.dims) != 4 or i.dims[2:] == [3, 3] for i in m.graph.initializer)
    import vsr

    up = vsr.Upscaler(model=str(out), device="cpu")
    meta = up.model.metadata
    assert up.scale == 3 and meta["vsr.tier"] == "fast"
    assert (
        float(meta["vsr.macs_per_pixel"])
        == conv_macs_per_pixel(out)
        == networks.ecb_macs_per_pixel(3, 4, 2)
        == 9 * (4 + 2 * 16 + 4 * 9)
    )
    assert "ECB" in meta["vsr.architecture"] and meta["vsr.training_data"].startswith("2 images")
    assert "1.png" in meta["vsr.train_holdout_psnr"]
    assert up.upscale(np.zeros((9, 11, 3), np.uint8)).shape == (27, 33, 3)
    before = onnx.load(str(out)).graph
    train(*args)  # resumed at its end: no more steps, the same network
    assert onnx.load(str(out)).graph == before
    status, _, err = script_main("models/train.py", *args[:3], "8", *args[4:])  # --channels 8 against 4
    assert status == 1 and "other settings" in err, err[-2000:]


def test_a_timed_bf16_run_resumes_on_the_clock_and_another_scale_starts_from_its_body(tmp_path: Path) -> None:
    """--precision bf16 with --max-minutes: a run stopped part-way (a checkpoint, as a killed
    run leaves) resumes with the rest of its schedule fitted into its new minutes or its
    remaining steps, whichever runs out first, and ends with a model whose metadata says how
    it was trained. --init with an ECB checkpoint starts
    an x4 network from that x3 run's head and body (every tensor but the tail's)."""
    import torch

    data = _images(tmp_path / "imgs", 3)
    out, ckpt = tmp_path / "q3.onnx", tmp_path / "q3.ckpt"
    common = [
        "--arch",
        "ecb",
        "--channels",
        "4",
        "--blocks",
        "2",
        "--tier",
        "quality",
        "--data",
        str(data),
        "--eval",
        str(tmp_path / "none"),
        "--batch",
        "4",
        "--patch",
        "12",
        "--precision",
        "bf16",
        "--threads",
        "1",
        "--checkpoint-every",
        "5",
        "--log-every",
        "5",
        "--device",
        "cpu",
    ]
    train(*common, "--scale", "3", "--steps", "10", "--out", str(out), "--checkpoint", str(ckpt))
    ck = torch.load(ckpt, weights_only=False)
    assert ck["step"] == 10 and ck["progress"] == 1.0
    # As if it had been stopped half-way through its schedule (capped at 30 steps, so that
    # the clock, a minute here, is not what ends this test):
    ck["config"]["steps"], ck["progress"] = 30, 0.5
    torch.save(ck, ckpt)
    out.unlink()
    log = train(
        *common,
        "--scale",
        "3",
        "--steps",
        "30",
        "--max-minutes",
        "1.1",
        "--out",
        str(out),
        "--checkpoint",
        str(ckpt),
    )
    assert "resumed from" in log and "trained 20 steps (to step 30)" in log
    # The steps ran out before the clock: the schedule followed them to its end (annealed),
    # not cut off part-way down the cosine at the clock's 0.5+.
    assert torch.load(ckpt, weights_only=False)["progress"] == 1.0
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["vsr.train_precision"] == "bf16" and meta["vsr.train_steps"] == "30"
    import json

    history = json.loads(meta["vsr.train_history"])  # both runs, as the checkpoint carried them
    assert [(h["steps"], h["precision"], h["device"]) for h in history] == [
        (10, "bf16", "cpu"),
        (20, "bf16", "cpu"),
    ]

    x4 = networks.build_ecb(4, 4, 2)
    copied = networks.init_from_checkpoint(x4, ckpt)
    state = torch.load(ckpt, weights_only=False)["model"]
    assert torch.equal(x4.body1.k3.weight, state["body1.k3.weight"])
    assert copied and not any(n.startswith("tail.") for n in copied)  # r*r outputs: left fresh
    assert {n.split(".")[0] for n in copied} == {"head", "body1", "body2"}
    log = train(
        *common, "--scale", "4", "--steps", "5", "--init", str(ckpt), "--out", str(tmp_path / "q4.onnx")
    )
    assert f"initialised {len(copied)} tensors" in log


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_ecb_export_equals_the_multi_branch_model(tmp_path: Path, scale: int) -> None:
    """Re-parameterisation: the exported plain graph computes what the sum of branches
    (3x3, 1x1-3x3, 1x1-Sobel/Laplacian, identity; evaluated one by one) computes, borders
    included; so does the merged-kernel forward used in training."""
    import torch

    model = _off_init(networks.build_ecb(scale, channels=6, blocks=2), seed=scale)
    x = torch.rand(3, 1, 13, 17)
    with torch.no_grad():
        ref = model(x, branches=True)
        assert 0.1 < ref.std() < 10 and (model(x) - ref).abs().max() < 1e-5
    out = tmp_path / "m.onnx"
    networks.export_onnx(model, scale, out, {"vsr.scale": str(scale)})
    assert networks.check_export(model, out) < 1e-4  # compares against forward(branches=True)
    assert conv_macs_per_pixel(out) == networks.ecb_macs_per_pixel(scale, 6, 2)


def test_sampling_phases_add_other_crops_of_the_same_pictures(tmp_path: Path) -> None:
    """--phases K: besides the protocol's (0, 0) crop, K-1 other HR crop offsets per image and
    size; each adds its own (LR, HR) pairs, degraded exactly as the protocol degrades, and
    phases 1 is the bank as it always was."""
    from PIL import Image

    train_py = load_script("models/train.py")
    data = _images(tmp_path / "train", 1)
    cfg = train_py.TrainConfig(3, str(data), "clean", 1, 8, 8, 1e-3, 0.25, 0, (1.0,))
    lr1, hr1 = train_py.patch_bank(cfg)
    lr4, hr4 = train_py.patch_bank(replace(cfg, phases=4))
    # (an offset crop is one LR row or column smaller: a few patches fewer per phase)
    assert 3 * len(lr1) <= len(lr4) <= 4 * len(lr1)
    assert np.array_equal(lr4[: len(lr1)], lr1) and np.array_equal(hr4[: len(hr1)], hr1)
    assert not np.array_equal(hr4[len(hr1)], hr1[0])  # the next phase: the same place, other pixels
    # Each pair of another phase is still an HR patch and its Pillow bicubic downscale: away
    # from the patch's edges (the filter's reach), downscaling the HR patch's own Y gives the
    # LR patch to within the rounding of doing it on Y instead of RGB.
    for lr, hr in zip(lr4[-5:], hr4[-5:], strict=True):
        down = np.asarray(Image.fromarray(hr).resize((8, 8), Image.Resampling.BICUBIC), np.int16)
        assert np.abs(down[2:-2, 2:-2] - lr[2:-2, 2:-2]).max() <= 2


def test_a_deeper_ecb_started_from_a_checkpoint_computes_what_the_checkpoint_did(tmp_path: Path) -> None:
    """init_from_checkpoint into a network with more body blocks: the blocks the checkpoint
    lacks start as the identity, so the deeper network starts where the shallower one ended
    (not with random blocks between a trained body and a trained tail)."""
    import torch

    small = _off_init(networks.build_ecb(3, 4, 2), seed=0)
    ckpt = tmp_path / "small.ckpt"
    torch.save({"model": small.state_dict()}, ckpt)
    deep = networks.build_ecb(3, 4, 5)
    copied = networks.init_from_checkpoint(deep, ckpt)
    assert {n.split(".")[0] for n in copied} == {"head", "body1", "body2", "tail"}
    x = torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        assert torch.allclose(deep(x), small(x), atol=1e-5)
        assert torch.allclose(deep(x, branches=True), small(x), atol=1e-5)


def test_an_ecb_started_from_an_exported_model_computes_what_the_file_does(tmp_path: Path) -> None:
    """--init FILE.onnx with --arch ecb: a shipped model (its merged convs; the checkpoint that
    made it may be long gone) starts a network of its shape, or a deeper one, computing what
    the file computes; the branches it lacks train from there. A file of another width is
    refused with a message, not a traceback."""
    import onnxruntime as ort
    import torch

    src = _off_init(networks.build_ecb(3, 4, 2), seed=1)
    onnx_path = tmp_path / "shipped.onnx"
    networks.export_onnx(src, 3, onnx_path, {"vsr.scale": "3"})
    x = np.random.default_rng(0).random((1, 1, 11, 13), dtype=np.float32)
    ref = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    for blocks in (2, 4):
        net = networks.build_ecb(3, 4, blocks)
        copied = networks.init_ecb_from_onnx(net, onnx_path)
        assert {n.split(".")[0] for n in copied} == {"head", "body1", "body2", "tail"}
        with torch.no_grad():
            assert np.abs(net(torch.from_numpy(x)).numpy() - ref).max() < 1e-4
            assert np.abs(net(torch.from_numpy(x), branches=True).numpy() - ref).max() < 1e-4
    with pytest.raises(SystemExit, match=r"shipped\.onnx"):
        networks.init_ecb_from_onnx(networks.build_ecb(3, 8, 2), onnx_path)
    data = _images(tmp_path / "imgs", 2)
    log = train(
        "--arch",
        "ecb",
        "--channels",
        "4",
        "--blocks",
        "3",
        "--scale",
        "3",
        "--data",
        data,
        "--eval",
        tmp_path / "none",
        "--batch",
        "4",
        "--patch",
        "12",
        "--steps",
        "3",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--init",
        onnx_path,
        "--out",
        tmp_path / "ft.onnx",
    )
    assert f"initialised {len(copied)} tensors from {onnx_path}" in log


def test_colour_mixes_add_grey_pictures_whose_pairs_follow_the_protocol(tmp_path: Path) -> None:
    """--colour-mixes N: each picture also enters the bank as N grey images, random convex
    mixes of its R, G and B, each cut exactly as the picture's own Y is (the bank without
    them is unchanged); --sizes sets the scales every picture is used at."""
    from PIL import Image

    train_py = load_script("models/train.py")
    data = _images(tmp_path / "train", 1)
    cfg = train_py.TrainConfig(3, str(data), "clean", 1, 8, 8, 1e-3, 0.25, 0, (1.0,))
    lr1, hr1 = train_py.patch_bank(cfg)
    lr2, hr2 = train_py.patch_bank(replace(cfg, colour_mixes=1))
    assert len(lr2) == 2 * len(lr1)
    assert np.array_equal(lr2[: len(lr1)], lr1) and np.array_equal(hr2[: len(hr1)], hr1)
    assert np.abs(hr2[len(hr1) :].astype(int) - hr1.astype(int)).mean() > 1  # other greys
    rgb = np.asarray(Image.open(next(data.iterdir())).convert("RGB"), np.float64)
    mix = np.asarray(train_py.colour_mix(Image.fromarray(rgb.astype(np.uint8)), random.Random(3)))
    assert (mix[:, :, 0] == mix[:, :, 1]).all() and (mix[:, :, 1] == mix[:, :, 2]).all()
    assert rgb.min(2).min() - 1 <= mix[:, :, 0].min() and mix[:, :, 0].max() <= rgb.max(2).max() + 1
    for lr, hr in zip(lr2[-5:], hr2[-5:], strict=True):  # the protocol's downscale, as above
        down = np.asarray(Image.fromarray(hr).resize((8, 8), Image.Resampling.BICUBIC), np.int16)
        assert np.abs(down[2:-2, 2:-2] - lr[2:-2, 2:-2]).max() <= 2
    two_sizes = train_py.patch_bank(replace(cfg, resize_factors=(1.0, 0.5)))[0]
    assert len(lr1) < len(two_sizes) < 2 * len(lr1)
    status, _, err = script_main("models/train.py", "--sizes", "1.0,2", "--data", data)
    assert status != 0 and "--sizes" in err


def test_ema_exports_and_resumes_the_average_of_the_weights(tmp_path: Path) -> None:
    """--ema D: the checkpoint carries the moving average of the weights next to the weights,
    a resumed run carries it on, and the exported model is the average (what validation saw),
    not the last step's weights. A decay outside [0, 1) is refused."""
    import onnxruntime as ort
    import torch

    data = _images(tmp_path / "imgs", 2)
    out, ckpt = tmp_path / "ema.onnx", tmp_path / "ema.ckpt"
    common = [
        "--arch",
        "ecb",
        "--channels",
        "4",
        "--blocks",
        "2",
        "--scale",
        "2",
        "--data",
        data,
        "--eval",
        tmp_path / "none",
        "--batch",
        "4",
        "--patch",
        "12",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--lr",
        "1e-2",
        "--ema",
        "0.9",
        "--checkpoint-every",
        "6",
        "--out",
        out,
        "--checkpoint",
        ckpt,
    ]
    train(*common, "--steps", "6")
    ck = torch.load(ckpt, weights_only=False)
    assert ck["ema"]["updates"] == 6
    ck["config"]["steps"], ck["progress"] = 12, 0.5  # as if stopped half-way
    torch.save(ck, ckpt)
    out.unlink()
    log = train(*common, "--steps", "12")
    assert "resumed from" in log
    ck = torch.load(ckpt, weights_only=False)
    assert ck["ema"]["updates"] == 12
    net = networks.build_ecb(2, 4, 2)
    net.load_state_dict(ck["model"])
    last = [p.detach().clone() for p in net.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(last, ck["ema"]["shadow"], strict=True))
    with torch.no_grad():
        for p, s in zip(net.parameters(), ck["ema"]["shadow"], strict=True):
            p.copy_(s)
    x = np.random.default_rng(0).random((1, 1, 11, 13), dtype=np.float32)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        assert np.abs(net(torch.from_numpy(x)).numpy() - got).max() < 1e-5
    status, _, err = script_main("models/train.py", "--ema", "1", "--data", data)
    assert status != 0 and "--ema" in err


def test_the_psnr_loss_weighs_each_patch_as_the_metric_does_and_is_kept_in_the_checkpoint(
    tmp_path: Path,
) -> None:
    """--loss psnr: each patch's loss is minus its PSNR (floored at 40 dB), so halving a smooth
    patch's error counts as much as halving a textured one's, where MSE over the batch lets the
    textured patch's large error decide. A run with it trains, writes a model and refuses to
    resume its checkpoint under the other loss (the setting is part of the run)."""
    import torch

    trainer = load_script("models/train.py")
    y = torch.zeros(2, 1, 4, 4)
    pred = y.clone()
    pred[0] += 0.3  # textured: MSE 0.09
    pred[1] += 0.03  # smooth: MSE 0.0009
    floor = trainer.PSNR_LOSS_FLOOR
    want = 10 * np.log10(np.array([0.09, 0.0009]) + floor).mean()
    assert float(trainer.psnr_loss(pred, y)) == pytest.approx(want, rel=1e-5)
    pred.requires_grad_(True)
    trainer.psnr_loss(pred, y).backward()
    g = pred.grad.abs().sum(dim=(1, 2, 3))
    # d/de of log(e^2): 2/e per pixel, so the smooth patch's gradient is the larger (MSE: 2e)
    assert g[1] > 5 * g[0]

    data = _images(tmp_path / "imgs", 2)
    out, ckpt = tmp_path / "p.onnx", tmp_path / "p.ckpt"
    common = [
        "--arch",
        "ecb",
        "--channels",
        "4",
        "--blocks",
        "1",
        "--scale",
        "2",
        "--data",
        data,
        "--eval",
        tmp_path / "none",
        "--batch",
        "4",
        "--patch",
        "12",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--out",
        out,
        "--checkpoint",
        ckpt,
    ]
    log = train(*common, "--steps", "4", "--loss", "psnr", "--log-every", "2")
    assert out.is_file() and "loss -" in log  # minus a PSNR in dB
    out.unlink()
    status, _, err = script_main("models/train.py", *map(str, common), "--steps", "8")
    assert status != 0 and "other settings" in err


@pytest.mark.parametrize(("scale", "factor"), [(4, 4), (4, 2), (3, 3), (2, 2)])
def test_a_refinement_branch_exports_as_plain_ops_that_tiles_stitch_exactly(
    tmp_path: Path, scale: int, factor: int
) -> None:
    """build_ecb(refine=K, refine_factor=F): the branch that leaves the LR features for F x
    their resolution exports as plain Conv/Relu/Add/DepthToSpace equal to the multi-branch
    model, costs what `ecb_macs_per_pixel` says (counted on the graph: its convs above LR
    count F*F times), and tiles of a frame stitch into exactly the whole-frame result: the
    receptive field is read per path, the branch's HR convs at 1/F of a pixel each."""
    from vsr.model.load import OnnxUpscaler
    from vsr.model.tiling import receptive_radius
    from vsr.options import Device

    model = _off_init(
        networks.build_ecb(scale, channels=6, blocks=2, refine=4, refine_factor=factor), seed=scale + factor
    )
    out = tmp_path / "refine.onnx"
    networks.export_onnx(model, scale, out, {"vsr.scale": str(scale)})
    assert networks.check_export(model, out) < 1e-4
    import onnx

    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert set(ops) <= PLAIN_OPS and ops.count("Conv") == 7
    assert ops.count("DepthToSpace") == (2 if factor == scale else 3)
    macs = networks.ecb_macs_per_pixel(scale, 6, 2, 4, factor)
    assert (
        conv_macs_per_pixel(out)
        == macs
        == 9 * (6 + 2 * 36 + 6 * scale**2)
        + 9 * 6 * factor**2 * 4
        + factor**2 * 9 * (16 + 4 * (scale // factor) ** 2)
    )
    # reach: head + 2 blocks + the branch's LR conv = 4 LR pixels, then two convs at F x
    assert receptive_radius(out) == 5
    y = np.random.default_rng(1).integers(0, 256, (1, 70, 90), dtype=np.uint8)
    whole = OnnxUpscaler(out, Device.CPU)(y)
    assert np.array_equal(OnnxUpscaler(out, Device.CPU, tile=24)(y), whole)
    assert np.array_equal(OnnxUpscaler(out, Device.CPU, max_run_pixels=1500)(y), whole)


def test_a_refinement_branch_added_to_a_trained_network_starts_from_its_output(tmp_path: Path) -> None:
    """--refine on top of a checkpoint without the branch: the branch's last conv starts near
    zero, so the network starts out computing (almost) what the checkpoint's did. An exported
    branched model starts a branched network exactly, and one without the branch refuses it.
    train.py takes --refine only with --arch ecb and a factor that divides the scale."""
    import torch

    plain = _off_init(networks.build_ecb(4, 4, 2), seed=2)
    ckpt = tmp_path / "plain.ckpt"
    torch.save({"model": plain.state_dict()}, ckpt)
    branched = networks.build_ecb(4, 4, 2, refine=4, refine_factor=2)
    copied = networks.init_from_checkpoint(branched, ckpt)
    assert not any(n.startswith("refine_") for n in copied)
    x = torch.rand(1, 1, 12, 12)
    with torch.no_grad():  # within a few grey levels (of 255), not exactly: the branch must get gradients
        assert (branched(x) - plain(x)).abs().max() < 0.02
    src = _off_init(networks.build_ecb(4, 4, 2, refine=4, refine_factor=2), seed=3)
    onnx_path = tmp_path / "branched.onnx"
    networks.export_onnx(src, 4, onnx_path, {"vsr.scale": "4"})
    again = networks.build_ecb(4, 4, 2, refine=4, refine_factor=2)
    assert {n.split(".")[0] for n in networks.init_ecb_from_onnx(again, onnx_path)} >= {
        "refine_up",
        "refine_mid",
        "refine_out",
    }
    with torch.no_grad():
        assert (again(x, branches=True) - src(x, branches=True)).abs().max() < 1e-4
    with pytest.raises(SystemExit, match="refinement branch"):
        networks.init_ecb_from_onnx(networks.build_ecb(4, 4, 2), onnx_path)
    data = _images(tmp_path / "imgs", 2)
    common = [
        "--data",
        data,
        "--eval",
        tmp_path / "none",
        "--batch",
        "4",
        "--patch",
        "12",
        "--steps",
        "3",
        "--threads",
        "1",
        "--device",
        "cpu",
    ]
    out = tmp_path / "r.onnx"
    train(
        "--arch",
        "ecb",
        "--channels",
        "4",
        "--blocks",
        "2",
        "--scale",
        "4",
        "--refine",
        "4",
        "--refine-factor",
        "2",
        "--init",
        ckpt,
        "--out",
        out,
        *common,
    )
    import vsr

    up = vsr.Upscaler(model=str(out), device="cpu")
    assert float(up.model.metadata["vsr.macs_per_pixel"]) == conv_macs_per_pixel(out)
    assert "refinement branch" in up.model.metadata["vsr.architecture"]
    assert up.upscale(np.zeros((9, 11, 3), np.uint8)).shape == (36, 44, 3)
    for bad, why in [
        (["--refine", "4"], "--arch ecb"),
        (["--arch", "ecb", "--refine", "4", "--refine-factor", "3", "--scale", "4"], "divide"),
        (["--arch", "ecb", "--refine-factor", "2"], "--refine K"),
    ]:
        status, _, err = script_main("models/train.py", *bad, "--data", data)
        assert status != 0 and why in err, err


def test_quantize_keeps_every_path_end_of_a_branched_model_float(tmp_path: Path) -> None:
    """quantize.py's float_nodes on a model with a refinement branch: the main path's tail and
    residual Add come before the branch's convolutions in the file, and still stay float with
    everything else from which no convolution follows (file order alone quantized them, which
    makes onnxruntime fuse the first convolution into full-range int8 weights). The int8 model
    made with it cannot saturate and stays close to the float one; a chain keeps what it did."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from vsr.model import quant
    from vsr.model.load import OnnxUpscaler
    from vsr.options import Device

    quantize = load_script("models/quantize.py")
    assert quantize.float_nodes(onnx.load(str(MODELS / "espcn_x3.onnx"))) == [
        "conv1",
        "conv4",
        "pixel_shuffle",
    ]
    model = _off_init(networks.build_ecb(4, 8, 2, refine=4, refine_factor=2), seed=5)
    src = tmp_path / "branched.onnx"
    networks.export_onnx(model, 4, src, {"vsr.scale": "4"})
    keep = quantize.float_nodes(onnx.load(str(src)))
    assert keep == [
        "head",
        "refine_out",
        "tail",
        "residual",
        "pixel_shuffle",
        "refine_shuffle_out",
        "refine_add",
    ]
    rng = np.random.default_rng(0)
    batches = iter([{"input": rng.random((1, 1, 24, 24), dtype=np.float32)} for _ in range(2)])

    class Reader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime has no types: Any
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(batches, None)

    out = tmp_path / "branched_int8.onnx"
    quantize_static(
        str(src),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        nodes_to_exclude=keep,
    )
    assert quant.saturating_weights(out) == [] and quant.file_precision(out) == "int8"
    y = cv2.GaussianBlur(rng.integers(0, 256, (1, 30, 40), dtype=np.uint8)[0], (5, 5), 2)[None]
    diff = np.abs(OnnxUpscaler(out, Device.CPU)(y).astype(int) - OnnxUpscaler(src, Device.CPU)(y).astype(int))
    assert diff.mean() < 2


def test_bf16_consistency_rounds_every_conv_input_and_trains_with_its_penalty(tmp_path: Path) -> None:
    """`forward(bf16=True)` rounds the input and every block's input to bfloat16 (what
    OpenVINO's bf16 stores between layers) and passes gradients straight through; the script's
    --bf16-consistency adds the penalty on the distance to the float32 output and records its
    weight, and is refused where it cannot apply (bf16 training, --arch espcn)."""
    import torch

    model = _off_init(networks.build_ecb(3, 4, 2), 0)
    x = torch.rand(2, 1, 10, 12, requires_grad=True)
    exact, rounded = model(x), model(x, bf16=True)
    assert exact.shape == rounded.shape and 0 < float((exact - rounded).detach().abs().max()) < 0.05
    rounded.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0  # straight through
    step = load_script("models/train.py")
    assert float(step.bf16_excess(model, x.detach(), exact.detach())) >= 0.0

    data = _images(tmp_path / "imgs", 2)
    out = tmp_path / "c.onnx"
    args = ["--arch", "ecb", "--channels", "4", "--blocks", "1", "--data", str(data)]
    args += ["--eval", str(tmp_path / "none"), "--steps", "6", "--batch", "4", "--patch", "12"]
    args += ["--out", str(out), "--threads", "1", "--log-every", "3"]
    train(*args, "--bf16-consistency", "2")
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert '"bf16_consistency": 2.0' in meta["vsr.train_config"]
    for bad in (["--precision", "bf16"], ["--arch", "espcn"]):
        status, _, err = script_main("models/train.py", *args, *bad, "--bf16-consistency", "1", "--no-resume")
        assert status != 0 and "--bf16-consistency" in err, err[-500:]
    status, _, err = script_main("models/train.py", *args, "--bf16-consistency", "-1", "--no-resume")
    assert status != 0 and "--bf16-consistency" in err, err[-500:]
