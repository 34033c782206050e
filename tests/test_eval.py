"""Behaviour of the evaluation script and the shared quality protocol it implements."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import needs, run_script

from vsr.lab import protocol
from vsr.lab.media import synth_video
from vsr.paths import MODELS, SHARED_DATA, SHARED_VIDEOS

pytest.importorskip("PIL")


def test_psnr_and_ssim_of_identical_images_are_perfect() -> None:
    """The metrics are inf dB and 1.0 for an exact reconstruction, and shave the border."""
    y = np.random.default_rng(0).integers(0, 256, (40, 50), dtype=np.uint8)
    assert protocol.psnr_y(y, y, 3) == float("inf")
    assert protocol.ssim_y(y, y, 3) == pytest.approx(1.0)
    z = y.copy()
    z[:3] = 0  # damage only inside the shaved border
    assert protocol.psnr_y(z, y, 3) == float("inf")


@needs(SHARED_DATA / "eval" / "Set5" / "baby.png")
def test_bicubic_figure_for_a_fixed_image_is_the_protocols(tmp_path: Path) -> None:
    """eval.py on a folder holding Set5's baby.png prints its known bicubic x3 figure."""
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "baby.png").write_bytes((SHARED_DATA / "eval" / "Set5" / "baby.png").read_bytes())
    proc = run_script("models/eval.py", "--sets", folder, "--scales", "3", "--model")
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| bicubic x3")]
    assert rows == ["| bicubic x3 | x3 | 32.58 | 0.8919 | - |"]


def test_eval_table_lists_bicubic_and_the_given_model(tmp_path: Path) -> None:
    """A user's own folder of images gets a row for bicubic and for each model passed."""
    import cv2

    folder = tmp_path / "mine"
    folder.mkdir()
    rng = np.random.default_rng(1)
    cv2.imwrite(
        str(folder / "a.png"), cv2.GaussianBlur(rng.integers(0, 256, (60, 72, 3), dtype=np.uint8), (5, 5), 2)
    )
    proc = run_script(
        "models/eval.py", "--sets", folder, "--scales", "3", "--model", MODELS / "espcn_x3.onnx"
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "| bicubic x3 | x3 |" in out and "| espcn_x3 | x3 |" in out


@functools.cache
def protocol_psnr(model: str, scale: int, set_name: str) -> float:
    """Mean Y-PSNR of a bundled model on one evaluation set, run the way vsr runs it (uint8
    luma through OnnxUpscaler on the CPU). Cached: three tests ask for x3 on Set5."""
    from vsr.model.load import OnnxUpscaler
    from vsr.options import Device

    up = OnnxUpscaler(MODELS / f"{model}.onnx", Device.CPU)
    return protocol.mean_psnr(protocol.luma_runner(up), scale, SHARED_DATA / "eval" / set_name)


@functools.cache
def bicubic_psnr(scale: int, set_name: str) -> float:
    """Bicubic's mean Y-PSNR on one evaluation set, once per scale (not once per model)."""
    return protocol.mean_psnr(
        lambda lr: protocol.bicubic_y(lr, scale), scale, SHARED_DATA / "eval" / set_name
    )


@needs(SHARED_DATA / "eval" / "Set5")
def test_bundled_x3_model_meets_the_quality_bar_on_set5() -> None:
    """The default model beats the zoo model's 29.30 dB by a wide margin (>= 31.0 dB) on Set5."""
    assert protocol_psnr("espcn_x3", 3, "Set5") >= 31.0


@pytest.mark.slow
@needs(SHARED_DATA / "eval" / "Set14")
@pytest.mark.parametrize("set_name", ["Set5", "Set14"])
def test_x2_and_x4_beat_bicubic_by_at_least_the_margin_x3_does(set_name: str) -> None:
    """Each scale's gain over its own bicubic is at least the default x3 model's gain."""
    x3, bicubic_x3 = protocol_psnr("espcn_x3", 3, set_name), bicubic_psnr(3, set_name)
    for model, scale in (("espcn_x2", 2), ("espcn_x4", 4)):
        ours, bicubic = protocol_psnr(model, scale, set_name), bicubic_psnr(scale, set_name)
        assert ours - bicubic >= x3 - bicubic_x3, (model, set_name, ours, bicubic, x3, bicubic_x3)


@needs(SHARED_DATA / "eval" / "Set14")
@pytest.mark.parametrize("set_name", ["Set5", "Set14"])
def test_int8_variant_is_within_0_1_db_of_the_float_model(set_name: str) -> None:
    """The shipped int8 CPU model, run by this CPU's own kernels at onnxruntime's default
    graph optimisation (as vsr runs it), loses at most 0.1 dB against the float model. On a
    CPU whose kernels saturate, this fails (the first int8 model: 0.60 dB on AVX2)."""
    fp32 = protocol_psnr("espcn_x3", 3, set_name)
    int8 = protocol_psnr("espcn_x3_int8", 3, set_name)
    assert fp32 - int8 <= 0.1, (fp32, int8)


INT8_MODELS = sorted(p.stem for p in MODELS.glob("*_int8.onnx"))


@needs(SHARED_DATA / "eval" / "Set5")
@pytest.mark.parametrize("name", INT8_MODELS)
def test_int8_models_score_here_what_they_scored_where_they_were_made(name: str) -> None:
    """Each bundled int8 model's Set5 PSNR on this CPU is the one its metadata records from the
    machine it was quantized on (a VNNI Xeon), within 0.005 dB: the same pixels whichever kind
    of x86 CPU CI lands on. A saturating int16 kernel moves it by tenths of a dB (the first int8
    model: 0.53 on Set5 under AVX2); on a real AVX2-only AMD EPYC all six matched to the last
    digit. This checks the real kernels where the qemu test (tests/test_quant.py) emulates them."""
    from vsr.model.registry import read_metadata

    meta = read_metadata(MODELS / f"{name}.onnx")
    recorded = json.loads(meta["vsr.psnr"])["Set5"]
    here = protocol_psnr(name, int(meta["vsr.scale"]), "Set5")
    assert abs(here - recorded) <= 0.005, (name, here, recorded, meta.get("vsr.int8_speedup"))


def test_int8_variant_agrees_with_the_float_model_on_a_frame() -> None:
    """On any frame the int8 model's output stays close to the float model's."""
    import cv2

    from vsr.model.load import OnnxUpscaler
    from vsr.options import Device

    y = cv2.GaussianBlur(
        np.random.default_rng(2).integers(0, 256, (1, 48, 64), dtype=np.uint8)[0], (5, 5), 2
    )[None]
    a = OnnxUpscaler(MODELS / "espcn_x3.onnx", Device.CPU)(y).astype(int)
    b = OnnxUpscaler(MODELS / "espcn_x3_int8.onnx", Device.CPU)(y).astype(int)
    assert np.abs(a - b).mean() < 1.5


def test_temporal_table_reports_frame_and_difference_psnr(tmp_path: Path) -> None:
    """`eval.py --videos CLIP IMAGE` prints, for bicubic and each model, a frame PSNR and a
    frame-difference PSNR per clip (an image is panned into one), over every frame of each
    by default; a static clip's differences are perfect for bicubic."""
    clip = synth_video(tmp_path / "clip_a.mp4", n=4, size=(96, 72), audio=None)
    image = tmp_path / "still_b.png"
    cv2.imwrite(
        str(image),
        cv2.GaussianBlur(np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8), (5, 5), 2),
    )
    proc = run_script(
        "models/eval.py", "--videos", clip, image, "--scales", "3", "--model", MODELS / "espcn_x3.onnx"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("4 + 6 frames (every frame of each clip)"), proc.stdout
    rows = {
        line.split(" | ")[0]: line
        for line in proc.stdout.splitlines()
        if line.startswith(("| bicubic", "| espcn"))
    }
    assert set(rows) == {"| bicubic x3", "| espcn_x3"}
    for line in rows.values():
        for cell in line.split(" | ")[2:4]:  # the clip, then the panned image
            frame, diff = (float(x) for x in cell.split(" / "))
            assert 10 < frame < 60 and 10 < diff < 60  # the pan moves: differences are not perfect

    y = np.zeros((30, 30), np.uint8)
    from PIL import Image

    frames = protocol.panned_frames(Image.new("RGB", (40, 30)))
    assert len(frames) == len(protocol.PAN) and {f.size for f in frames} == {(40 - 7, 30 - 4)}

    still = [Image.fromarray(np.stack([y + 128] * 3, -1))] * 3
    assert protocol.temporal_psnr(lambda lr: protocol.bicubic_y(lr, 3), 3, still)[1] == float("inf")


FAST_BARS = [  # (scale, dB the fast tier may be below espcn_xN: issue #14's bars)
    pytest.param(2, 0.1, id="x2"),
    pytest.param(3, 0.05, id="x3"),
    pytest.param(4, 0.1, id="x4"),
]


@pytest.mark.slow
@needs(SHARED_DATA / "eval" / "Set14")
@pytest.mark.parametrize("scale,allowed", FAST_BARS)
@pytest.mark.parametrize("set_name", ["Set5", "Set14"])
def test_fast_tier_costs_a_quarter_and_keeps_the_default_quality(
    set_name: str, scale: int, allowed: float
) -> None:
    """A bundled fast model costs at most a quarter of espcn_xN's MACs per pixel (the issue's
    budget at x3, 14,872, is a quarter of espcn_x3's; x2 and x4 hold the same quarter of their
    own balanced model's, 14,512 and 52,240: espcn_x4 carries four extra layers) and is at most
    0.05 dB (x3) or 0.1 dB (x2, x4) below espcn_xN under the shared protocol (the model
    family's bars); skipped while none is bundled at that scale."""
    from vsr.model.cost import conv_macs_per_pixel
    from vsr.model.registry import default_for

    fast = default_for(scale, "fast")
    if fast is None:
        pytest.skip(f"no x{scale} fast model bundled yet")
    espcn = MODELS / f"espcn_x{scale}.onnx"
    assert conv_macs_per_pixel(fast.path) <= conv_macs_per_pixel(espcn) / 4
    ours = protocol_psnr(fast.name, scale, set_name)
    assert ours >= protocol_psnr(f"espcn_x{scale}", scale, set_name) - allowed


@pytest.mark.slow
@needs(SHARED_VIDEOS)
def test_fast_x3_keeps_espcn_x3s_temporal_gain_on_camera_clips() -> None:
    """The fast tier keeps espcn_x3's frame-difference PSNR (its gain over bicubic, the
    flicker measure of `eval.py --videos`) within 0.1 dB (#14's bar). Measured on every frame
    of the three clips (README: fast_x3 35.79, espcn_x3 35.79); this guard takes the first 10
    frames of each, which keeps it to a few seconds (there: +0.00 as well)."""
    from helpers import load_script

    ev = load_script("models/eval.py")
    clips = [SHARED_VIDEOS / name for name in ev.DEFAULT_VIDEOS]
    frames = {c: ev.video_frames(c, 10) for c in clips}

    def difference_psnr(model: str) -> float:
        scale, run = ev.onnx_runner(MODELS / f"{model}.onnx")
        return float(np.mean([protocol.temporal_psnr(run, scale, frames[c])[1] for c in clips]))

    assert difference_psnr("fast_x3") >= difference_psnr("espcn_x3") - 0.1


QUALITY_BARS = [  # (scale, dB the quality tier must gain over espcn_xN on Set5, on Set14: #14's bars)
    pytest.param(2, 0.4, 0.4, id="x2"),
    pytest.param(3, 0.6, 0.4, id="x3"),
    # quality_x4 (M18C64, ~3 h of training on this CPU in all) is +0.46 / +0.31 dB over
    # espcn_x4 (Set5 / Set14): short of the bar on Set14 (#14); the test flips when it is met.
    pytest.param(
        4,
        0.4,
        0.4,
        id="x4",
        marks=pytest.mark.xfail(
            strict=True, reason="quality_x4 is +0.46 / +0.31 dB over espcn_x4, the bar is +0.4"
        ),
    ),
]


@pytest.mark.slow
@needs(SHARED_DATA / "eval" / "Set14")
@pytest.mark.parametrize("scale,gain_set5,gain_set14", QUALITY_BARS)
def test_quality_tier_costs_at_most_16x_and_gains_the_bar(
    scale: int, gain_set5: float, gain_set14: float
) -> None:
    """A bundled quality model costs at most 16x espcn_x3's MACs per pixel (951,808) and gains
    at least +0.6 / +0.4 dB (x3, Set5 / Set14) or +0.4 dB (x2, x4) over espcn_xN under the
    shared protocol; skipped while none is bundled at that scale."""
    from vsr.model.cost import conv_macs_per_pixel
    from vsr.model.registry import default_for

    quality = default_for(scale, "quality")
    if quality is None:
        pytest.skip(f"no x{scale} quality model bundled yet")
    assert conv_macs_per_pixel(quality.path) <= 16 * 59488
    for set_name, gain in (("Set5", gain_set5), ("Set14", gain_set14)):
        ours = protocol_psnr(quality.name, scale, set_name)
        base = protocol_psnr(f"espcn_x{scale}", scale, set_name)
        assert ours >= base + gain, (set_name, ours, base)


@pytest.mark.slow
@needs(SHARED_DATA / "eval" / "Set14")
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_a_balanced_model_replaces_espcn_only_at_its_cost_and_0_2_db_better(scale: int) -> None:
    """Where the balanced tier (the default) picks another model than the model card's
    espcn_xN, that model costs no more MACs per pixel than espcn_xN and beats it by >= 0.2 dB
    on Set5 and on Set14 (#14's rule for replacing the default); skipped where espcn_xN is
    still the pick."""
    from vsr.model.cost import conv_macs_per_pixel
    from vsr.model.registry import default_for

    balanced = default_for(scale, "balanced")
    if balanced is None or balanced.name == f"espcn_x{scale}":
        pytest.skip(f"espcn_x{scale} is the balanced model at x{scale}")
    assert conv_macs_per_pixel(balanced.path) <= conv_macs_per_pixel(MODELS / f"espcn_x{scale}.onnx")
    for set_name in ("Set5", "Set14"):
        ours = protocol_psnr(balanced.name, scale, set_name)
        base = protocol_psnr(f"espcn_x{scale}", scale, set_name)
        assert ours >= base + 0.2, (set_name, ours, base)


def test_every_tier_is_bundled_at_every_scale() -> None:
    """The model family is complete: `vsr models --json` lists a model for each of the nine
    (tier, scale) pairs, float, clean-trained (the default of each pair): `vsr models` has no
    "not bundled" pair to name (`cli.missing_tiers`)."""
    from vsr.app.cli import missing_tiers
    from vsr.model.registry import bundled_models

    assert missing_tiers(bundled_models()) == []


VIDEO_VARIANTS = sorted(p.stem for p in MODELS.glob("*_video.onnx"))


@pytest.mark.slow
@needs(SHARED_DATA / "eval" / "Set5")
@pytest.mark.parametrize("variant", VIDEO_VARIANTS)
def test_a_video_variant_beats_its_clean_model_on_compressed_frames(variant: str) -> None:
    """Each bundled `--degrade video` model is there because it helps (#14): with the LR
    frames H.264-compressed at CRF 23 (`eval.py --lr-codec libx264`), it beats the clean model
    of its tier and scale by >= 0.3 dB on Set5 (measured: espcn_x3 +0.60, quality_x3 +0.77)."""
    from helpers import load_script

    ev = load_script("models/eval.py")

    def psnr(model: str) -> float:
        scale, run = ev.onnx_runner(MODELS / f"{model}.onnx")
        return float(ev.evaluate(run, scale, SHARED_DATA / "eval" / "Set5", "libx264", 23)[0])

    clean = variant.removesuffix("_video")
    assert psnr(variant) >= psnr(clean) + 0.3
