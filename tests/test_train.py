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
