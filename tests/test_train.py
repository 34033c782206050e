"""Behaviour of the training script: a few steps on tiny images produce a usable model.

Skipped when PyTorch is not installed (it is the optional `train` extra, not a runtime need).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("PIL")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import train  # noqa: E402


def test_a_few_steps_write_a_loadable_model_with_metadata(tmp_path: Path) -> None:
    """Training 30 steps on two images exports an ONNX model vsr loads, equal to PyTorch."""
    data = tmp_path / "imgs"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        img = cv2.GaussianBlur(rng.integers(0, 256, (96, 120, 3), dtype=np.uint8), (5, 5), 2)
        cv2.imwrite(str(data / f"{i}.png"), img)
    out = tmp_path / "m.onnx"
    rc = train.main(["--scale", "2", "--data", str(data), "--eval", str(tmp_path / "none"),
                     "--steps", "30", "--batch", "8", "--patch", "16", "--log-every", "10",
                     "--out", str(out), "--threads", "1"])
    assert rc == 0 and out.exists()
    import vsr

    up = vsr.Upscaler(model=str(out), device="cpu")
    assert up.scale == 2
    assert up.model.metadata["vsr.scale"] == "2"
    assert "train.py" in up.model.metadata["vsr.train_command"]
    assert up.upscale(np.zeros((9, 11, 3), np.uint8)).shape == (18, 22, 3)
    # Resuming a finished run does no more steps and gives the same file content.
    rc = train.main(["--scale", "2", "--data", str(data), "--eval", str(tmp_path / "none"),
                     "--steps", "30", "--batch", "8", "--patch", "16", "--out", str(out),
                     "--threads", "1"])
    assert rc == 0


def test_a_deeper_model_initialised_from_a_shipped_one_starts_out_computing_the_same(tmp_path: Path) -> None:
    """--init with --extra-layers: the added 3x3x64 layers start as the identity, so before
    any step the deeper network gives the shipped model's output; its export loads in vsr."""
    import torch

    from vsr.model import OnnxUpscaler
    from vsr.options import Device

    src = ROOT / "models" / "espcn_x3.onnx"
    model = train.build_model(3, extra=2)
    copied = train.init_from(model, src)
    assert len(copied) == 8 and model.names == ["conv1", "conv2", "conv2b", "conv2c", "conv3", "conv4"]
    y = cv2.GaussianBlur(np.random.default_rng(1).integers(0, 256, (2, 30, 40), dtype=np.uint8), (3, 3), 1)
    with torch.no_grad():
        deep = model(torch.from_numpy(y).float().div(255)[:, None]).numpy()[:, 0]
    ref = OnnxUpscaler(src, Device.CPU)(y)
    assert np.abs(np.rint(np.clip(deep, 0, 1) * 255) - ref).max() <= 1
    out = tmp_path / "deep.onnx"
    train.export_onnx(model, 3, out, {"vsr.scale": "3"})
    assert train.check_export(model, out) < 1e-4
    up = OnnxUpscaler(out, Device.CPU)
    assert up.scale == 3 and np.abs(up(y).astype(int) - ref).max() <= 1
