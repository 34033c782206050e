"""Behaviour of the bundled-model registry: tiers, the default per scale and tier, model cost."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import onnx_model

import vsr
from vsr.errors import ModelError
from vsr.model.cost import conv_macs_per_pixel
from vsr.model.registry import bundled_models, default_for, resolve
from vsr.paths import MODELS, ROOT


def _default_path(scale: int, quality: str | None = None, degrade: str | None = None) -> Path:
    """The file of the bundled model `default_for` picks, which must be there."""
    model = default_for(scale, quality, degrade)
    assert model is not None, (scale, quality, degrade)
    return model.path


def test_every_bundled_model_has_a_tier_and_a_cost() -> None:
    """Each bundled model names its tier (the espcn models are "balanced") and a MAC count
    read from its graph: 59,488 per input pixel for espcn_x3 (the model card's ESPCN)."""
    models = {m.name: m for m in bundled_models()}
    assert models["espcn_x3"].tier == "balanced"
    assert models["espcn_x3"].macs_per_pixel == 59488 == conv_macs_per_pixel(models["espcn_x3"].path)
    assert all(m.macs_per_pixel > 0 and m.tier in ("fast", "balanced", "quality") for m in models.values())


@pytest.mark.slow
def test_quality_picks_the_tier_and_says_what_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--quality balanced is balanced_xN where it is bundled (x2, x3), espcn_xN elsewhere; a tier
    that is not bundled is a clear error naming the tiers there are; a model file tagged
    vsr.tier=fast is found by --quality fast; --model and --quality together are refused."""
    models = MODELS
    assert resolve(None, 3, "balanced") == resolve(None, 3) == models / "balanced_x3.onnx"
    assert default_for(3) == default_for(3, "balanced") and _default_path(3) == models / "balanced_x3.onnx"
    assert resolve(None, 2, "balanced") == models / "balanced_x2.onnx" == _default_path(2)
    assert resolve(None, 4, "balanced") == models / "espcn_x4.onnx" == _default_path(4)
    assert resolve(None, 3, "fast") == models / "fast_x3.onnx"
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(models / "espcn_x3.onnx", folder / "espcn_x3.onnx")
    monkeypatch.setenv("VSR_MODELS", str(folder))
    monkeypatch.setattr("vsr.model.registry.model_dirs", lambda: [folder])  # the bundled ones aside
    assert resolve(None, 3) == folder / "espcn_x3.onnx" == _default_path(3)
    with pytest.raises(ModelError, match="no bundled quality model for scale 2"):
        resolve(None, 2, "quality")
    m = onnx.load(str(MODELS / "espcn_x2.onnx"))
    meta = {p.key: p.value for p in m.metadata_props}
    meta["vsr.tier"] = "fast"
    onnx.helper.set_model_props(m, meta)
    onnx.save(m, str(folder / "tiny_x2.onnx"))
    assert resolve(None, 2, "fast") == folder / "tiny_x2.onnx"
    fast = default_for(2, "fast")
    assert fast is not None and fast.name == "tiny_x2"
    assert vsr.Upscaler(scale=2, quality="fast", device="cpu").model.path == folder / "tiny_x2.onnx"
    with pytest.raises(ModelError, match="both pick a model"):
        resolve("espcn_x3", None, "fast")
    with pytest.raises(ModelError, match="unknown quality"):
        resolve(None, 3, "best")


@pytest.mark.slow
def test_degrade_video_picks_the_tiers_video_model_or_says_where_there_is_one() -> None:
    """--degrade video picks the bundled model trained on video of that tier and scale
    (balanced: balanced_xN_video before espcn_xN_video); where there is none, one error names
    the (tier, scale) pairs that have one; --degrade clean is the default; --model with
    --degrade is refused."""
    models = MODELS
    assert (
        resolve(None, 3, None, "video")
        == models / "balanced_x3_video.onnx"
        == _default_path(3, None, "video")
    )
    assert resolve(None, 3, "fast", "video") == models / "fast_x3_video.onnx"
    assert resolve(None, 3, "quality", "video") == models / "quality_x3_video.onnx"
    assert resolve(None, 3, "quality", "clean") == resolve(None, 3, "quality") == models / "quality_x3.onnx"
    with pytest.raises(ModelError, match="no bundled balanced model for scale 2 trained for video") as exc:
        resolve(None, 2, None, "video")
    assert exc.value.hint is not None and "quality x3" in exc.value.hint and "fast x3" in exc.value.hint
    with pytest.raises(ModelError, match="--model and --degrade both pick a model"):
        resolve("espcn_x3", None, None, "video")
    with pytest.raises(ModelError, match="unknown degradation"):
        resolve(None, 3, None, "jpeg")
    up = vsr.Upscaler(quality="fast", degrade="video", device="cpu")
    assert up.model.path == models / "fast_x3_video.onnx"


def test_mac_counter_counts_per_input_pixel(tmp_path: Path) -> None:
    """espcn_x3 costs 1*64*25 + 64*64*9 + 64*32*9 + 32*9*9 per LR pixel; a conv after
    DepthToSpace runs at r*r times the input's area and counts that much more."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    assert (
        conv_macs_per_pixel(MODELS / "espcn_x3.onnx")
        == 59488
        == 1 * 64 * 25 + 64 * 64 * 9 + 64 * 32 * 9 + 32 * 9 * 9
    )
    w1 = numpy_helper.from_array(np.zeros((4, 1, 3, 3), np.float32), "w1")
    w2 = numpy_helper.from_array(np.zeros((1, 1, 3, 3), np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["a"], pads=[1] * 4),
        helper.make_node("DepthToSpace", ["a"], ["b"], blocksize=2, mode="CRD"),
        helper.make_node("Conv", ["b", "w2"], ["output"], pads=[1] * 4),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
        [w1, w2],
    )
    path = tmp_path / "hr.onnx"
    onnx.save(onnx_model(g), str(path))
    assert conv_macs_per_pixel(path) == 4 * 9 + 9 * 4


def test_a_wheel_installs_every_bundled_model() -> None:
    """pyproject.toml's data-files (what a wheel puts in <prefix>/share/vsr/models, the
    registry's last folder) lists exactly the models in models/ and the bfloat16 guard's
    figures beside them: a model left out would be missing from every non-editable install,
    and the default silently another one."""
    tomllib = pytest.importorskip("tomllib")
    with open(ROOT / "pyproject.toml", "rb") as f:
        listed = tomllib.load(f)["tool"]["setuptools"]["data-files"]["share/vsr/models"]
    assert sorted(listed) == sorted(
        f"models/{p.name}" for p in [*MODELS.glob("*.onnx"), MODELS / "bf16_guard.json"]
    )
