"""Behaviour of the onnxruntime model stage: loading, scale probing, tiling, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from helpers import (
    MODEL_X3,
    SHARED_DATA,
    ZOO_MODEL,
    FakeUpscaler,
    needs,
    onnx_model,
    read_image,
    run_process,
    video_stats,
)

import vsr
from vsr.errors import ModelError, ProviderUnavailable
from vsr.lab.media import synth_video
from vsr.model.engines import providers_for
from vsr.model.load import OnnxUpscaler
from vsr.model.tiling import tile_grid
from vsr.options import Device, Precision
from vsr.paths import SAMPLE


def _noise(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    return np.stack([cv2.GaussianBlur(i, (3, 3), 1) for i in img])


def test_bundled_model_loads_on_cpu_and_reports_scale_3() -> None:
    """The default model is x3 with dynamic height and width."""
    up = OnnxUpscaler(MODEL_X3, Device.CPU)
    assert up.scale == 3 and up.fixed is None and up.provider == "CPUExecutionProvider"
    assert up(_noise(2, 11, 13)).shape == (2, 33, 39)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_each_bundled_scale_is_found_and_probed(scale: int) -> None:
    """--scale N picks espcn_xN and the probe agrees with its name."""
    assert vsr.Upscaler(scale=scale, device="cpu").scale == scale


def test_forced_tiling_equals_whole_frames_exactly() -> None:
    """Tiles with overlap give the same pixels as one whole-frame run (odd sizes, batch 3)."""
    y = _noise(3, 97, 131)
    whole = OnnxUpscaler(MODEL_X3, Device.CPU)(y)
    tiled = OnnxUpscaler(MODEL_X3, Device.CPU, tile=40)(y)
    assert tiled.shape == whole.shape
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def _shifting_model(path: Path, depth: int) -> Path:
    """An x2 model of `depth` 3x3 convolutions that each move the picture one pixel up and
    left (a one-hot corner kernel), then DepthToSpace: its output at p is its input at
    p + depth, so it reaches exactly `depth` pixels, and a tile with less context than that
    reads padding zeros where the whole frame has picture."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    shift = np.zeros((1, 1, 3, 3), np.float32)
    shift[0, 0, 2, 2] = 1.0
    inits = [
        numpy_helper.from_array(shift, "shift"),
        numpy_helper.from_array(np.ones((4, 1, 1, 1), np.float32), "spread"),
    ]
    nodes, x = [], "input"
    for i in range(depth):
        nodes.append(helper.make_node("Conv", [x, "shift"], [f"c{i}"], pads=[1, 1, 1, 1]))
        x = f"c{i}"
    nodes += [
        helper.make_node("Conv", [x, "spread"], ["s"]),
        helper.make_node("DepthToSpace", ["s"], ["output"], blocksize=2, mode="CRD"),
    ]
    g = helper.make_graph(
        nodes,
        "shifts",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H2", "W2"])],
        inits,
    )
    onnx.save(onnx_model(g), str(path))
    return path


def test_strips_and_tiles_keep_as_much_context_as_the_model_reaches(tmp_path: Path) -> None:
    """The overlap follows the model's receptive field, read from its graph (14 pixels for
    fourteen 3x3 convolutions, like the quality tier; 5 for ESPCN): strips of a large frame
    and explicit tiles give the whole-frame pixels exactly, where the fixed 8-pixel overlap
    of before did not (checked: it is what `overlap=8` gives here)."""
    from vsr.model.tiling import receptive_radius, upscale_planes

    deep = _shifting_model(tmp_path / "deep.onnx", 14)
    assert receptive_radius(deep) == 14 and receptive_radius(MODEL_X3) == 5
    y = _noise(2, 120, 90)
    whole = OnnxUpscaler(deep, Device.CPU)(y)
    assert np.array_equal(whole[:, : 2 * 106 : 2, : 2 * 76 : 2], y[:, 14:, 14:])  # it shifts, as meant
    strips = OnnxUpscaler(deep, Device.CPU, max_run_pixels=3000)
    assert strips.overlap == 14 and np.array_equal(strips(y), whole)
    assert np.array_equal(OnnxUpscaler(deep, Device.CPU, tile=40)(y), whole)
    short = upscale_planes(y, strips._infer, 2, fixed=None, tile=0, max_run_pixels=3000, overlap=8)
    assert not np.array_equal(short, whole)
    with pytest.raises(ModelError, match=r"too small for deep\.onnx: use more than 28"):
        OnnxUpscaler(deep, Device.CPU, tile=24)
    # Without kernel_shape attributes the reach comes from the weights, through the int8
    # model's DequantizeLinear; a weight whose shape cannot be known gives no answer (the
    # default overlap), never a reach of 0.
    import onnx

    def without_kernel_shapes(model: onnx.ModelProto, name: str) -> Path:
        for node in model.graph.node:
            kept = [a for a in node.attribute if a.name != "kernel_shape"]
            del node.attribute[:]
            node.attribute.extend(kept)
        onnx.save(model, str(tmp_path / name))
        return tmp_path / name

    int8 = onnx.load(str(MODEL_X3.parent / "espcn_x3_int8.onnx"))
    assert receptive_radius(without_kernel_shapes(int8, "int8_no_kernel_shape.onnx")) == 5
    unknown = onnx.load(str(deep))
    unknown.graph.node[0].input[1] = "computed"
    unknown.graph.node.insert(0, onnx.helper.make_node("Identity", ["shift"], ["computed"]))
    assert receptive_radius(without_kernel_shapes(unknown, "unknown.onnx")) is None


def test_tile_grid_kept_regions_partition_the_frame() -> None:
    """Every pixel is kept from exactly one tile, and each tile lies inside the frame."""
    for h, w, t in [(100, 37, 32), (224, 224, 224), (300, 500, 224), (50, 50, 20)]:
        cover = np.zeros((h, w), int)
        for tile in tile_grid(h, w, min(t, h), min(t, w)):
            assert 0 <= tile.y0 and tile.y0 + min(t, h) <= h
            cover[tile.keep_y0 : tile.keep_y1, tile.keep_x0 : tile.keep_x1] += 1
        assert (cover == 1).all()


@needs(ZOO_MODEL)
def test_zoo_model_with_fixed_224_input_runs_on_any_frame_size() -> None:
    """The zoo's fixed 224x224 model upscales a 320x180 frame (and a tiny one) by tiling."""
    up = OnnxUpscaler(ZOO_MODEL, Device.CPU)
    assert up.fixed == (224, 224) and up.scale == 3
    assert up(_noise(2, 180, 320)).shape == (2, 540, 960)
    assert up(_noise(1, 5, 7)).shape == (1, 15, 21)


@pytest.mark.slow
@needs(ZOO_MODEL)
def test_zoo_model_reproduces_the_tutorial_cat(tmp_path: Path) -> None:
    """`vsr upscale cat.jpg` with the zoo model matches the tutorial's result (>= 38 dB RGB)."""
    from vsr.app.cli import main

    out = tmp_path / "cat_x3.png"
    rc = main(
        [
            "upscale",
            str(SHARED_DATA / "reference" / "cat.jpg"),
            str(out),
            "--model",
            str(ZOO_MODEL),
            "--quiet",
        ]
    )
    assert rc == 0
    ours = read_image(out).astype(np.float64)
    ref = read_image(SHARED_DATA / "reference" / "cat_superres_with_ort.jpg").astype(np.float64)
    assert ours.shape == ref.shape == (672, 672, 3)
    psnr = 10 * np.log10(255**2 / np.mean((ours - ref) ** 2))
    assert psnr >= 38.0, psnr


def test_cuda_request_without_cuda_is_a_clear_error() -> None:
    """--device cuda on a CPU-only onnxruntime names CUDA and how to get it."""
    with pytest.raises(ProviderUnavailable, match="CUDA") as info:
        providers_for(Device.CUDA, ["CPUExecutionProvider"])
    assert "onnxruntime-gpu" in (info.value.hint or "")


def test_auto_prefers_cuda_and_falls_back_to_cpu() -> None:
    """AUTO asks for CUDA first only when onnxruntime offers it."""
    assert providers_for(Device.AUTO, ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert (
        providers_for(Device.AUTO, ["CUDAExecutionProvider", "CPUExecutionProvider"])[0]
        == "CUDAExecutionProvider"
    )


def test_wrong_shape_model_is_refused_with_the_expected_layout(tmp_path: Path) -> None:
    """A model that takes 3-channel input is refused, naming [N,1,H,W]."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
    )
    path = tmp_path / "rgb.onnx"
    onnx.save(onnx_model(g), str(path))
    with pytest.raises(ModelError, match=r"\[N,1,H,W\]"):
        OnnxUpscaler(path, Device.CPU)


def test_non_onnx_file_is_refused(tmp_path: Path) -> None:
    """A file that is not ONNX gives a ModelError, not an onnxruntime traceback."""
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="cannot load model"):
        OnnxUpscaler(path, Device.CPU)


@pytest.mark.gpu
@pytest.mark.skipif(
    "CUDAExecutionProvider" not in ort.get_available_providers(),
    reason="onnxruntime has no CUDA execution provider here",
)
def test_cuda_provider_runs_the_bundled_model_like_the_cpu() -> None:
    """On a GPU the CUDA provider is active, its default is the bound float16 engine (with
    the onnx package), and every engine agrees with the CPU's float32 within 1/255."""
    y = _noise(4, 64, 80)
    cpu = OnnxUpscaler(MODEL_X3, Device.CPU)(y).astype(np.int16)
    gpu = OnnxUpscaler(MODEL_X3, Device.CUDA)
    assert gpu.provider == "CUDAExecutionProvider"
    try:
        import onnx  # noqa: F401
    except ImportError:
        assert (gpu.engine, gpu.precision) == ("plain", "fp32")
    else:
        assert (gpu.engine, gpu.precision) == ("bound", "fp16")
    assert np.abs(gpu(y) - cpu).max() <= 1
    for engine, precision in (
        ("plain", Precision.FP32),
        ("bound", Precision.FP32),
        ("bound", Precision.FP16),
    ):
        if engine == "bound":
            pytest.importorskip("onnx")
        up = OnnxUpscaler(MODEL_X3, Device.CUDA, engine=engine, precision=precision)
        diff = np.abs(up(y) - cpu)
        # float16 on an H100: 5.9% of these noise pixels one level off (1.4% with float32,
        # whose cuDNN convolutions also round differently from the CPU's).
        share = 0.10 if precision is Precision.FP16 else 0.05
        assert diff.max() <= 1 and (diff > 0).mean() <= share, (engine, precision)
        assert np.abs(up(y[:1]) - cpu[:1]).max() <= 1  # a smaller batch after a larger one


def test_image_api_upscales_colour_and_grey_images() -> None:
    """Upscaler.upscale keeps the layout and multiplies the size; batches match singles."""
    up = vsr.Upscaler(device="cpu", batch=2)
    rng = np.random.default_rng(3)
    imgs = [rng.integers(0, 256, (20, 30, 3), dtype=np.uint8) for _ in range(3)]
    singles = [up.upscale(i) for i in imgs]
    assert singles[0].shape == (60, 90, 3)
    for a, b in zip(singles, up.upscale_batch(imgs), strict=True):
        assert np.array_equal(a, b)
    assert up.upscale(imgs[0][..., 0]).shape == (60, 90)


def test_batch_auto_is_1_on_the_cpu_and_a_measured_power_of_two_on_a_gpu() -> None:
    """--batch auto: no batching on the CPU (it only costs memory); on a GPU provider, the
    timed choice is a valid batch within the memory cap."""
    from vsr.model.batch_size import auto_batch

    assert auto_batch(OnnxUpscaler(MODEL_X3, Device.CPU), 360, 640) == 1

    class FakeGpu(FakeUpscaler):
        provider = "CUDAExecutionProvider"

    chosen = auto_batch(FakeGpu(2), 360, 640, limit=8)
    assert chosen in (1, 2, 4, 8)
    assert auto_batch(FakeGpu(2), 4000, 4000, limit=16, memory_budget=1) == 1


def test_large_frames_run_in_strips_and_batches_in_chunks_with_identical_results() -> None:
    """A per-run pixel budget (bounded memory) changes how frames are cut, never the pixels."""
    y = _noise(3, 97, 131)
    whole = OnnxUpscaler(MODEL_X3, Device.CPU, max_run_pixels=10**9)(y)
    for budget in (3000, 20000, 13000):  # strips; chunks of whole frames; tiles in chunks
        got = OnnxUpscaler(MODEL_X3, Device.CPU, max_run_pixels=budget, tile=40 if budget == 13000 else 0)(y)
        assert np.array_equal(got, whole), budget


@pytest.mark.slow
@pytest.mark.parametrize("tier", ["balanced", "fast", "quality"])
def test_bound_engine_matches_the_plain_engine(tier: str) -> None:
    """The GPU engine (uint8 graph + I/O binding, vsr.model.graph) runs on the CPU too: at float32
    it gives the plain engine's pixels exactly, whole, in strips, tiled and batched; float16
    stays within one grey level on almost every pixel. For every tier's x3 model: the
    family's ECB graphs with their global residual Add (espcn_x3, the model card's ESPCN, is
    MODEL_X3 in the tests below; skipped while a tier is not bundled)."""
    pytest.importorskip("onnx")
    from vsr.model.registry import default_for

    bundled = default_for(3, tier)
    if bundled is None:
        pytest.skip(f"no x3 {tier} model bundled")
    model = bundled.path
    frame = cv2.cvtColor(vsr_sample_frame(), cv2.COLOR_BGR2GRAY)[40:136, 60:220]  # 160x96
    y = np.stack([frame, frame[::-1], frame[:, ::-1]])
    reference = OnnxUpscaler(model, Device.CPU)(y)
    options: list[dict[str, Any]] = [{}, {"max_run_pixels": 20_000}, {"tile": 64}]
    for kwargs in options:
        bound = OnnxUpscaler(model, Device.CPU, engine="bound", precision=Precision.FP32, **kwargs)
        assert (bound.engine, bound.precision) == ("bound", "fp32")
        assert np.array_equal(bound(y), reference), kwargs
        assert np.array_equal(bound(y[:1]), reference[:1])  # a smaller batch after a larger one
    fp16 = OnnxUpscaler(model, Device.CPU, precision=Precision.FP16)
    assert (fp16.engine, fp16.precision) == ("bound", "fp16")
    out = fp16(y)
    assert out.dtype == np.uint8 and out.shape == reference.shape
    diff = np.abs(out.astype(np.int16) - reference)
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.05


def test_bound_engine_runs_quantized_models() -> None:
    """The int8 QDQ model, whose integer arithmetic float16 must leave alone, gives the plain
    engine's pixels."""
    pytest.importorskip("onnx")
    y = _noise(2, 100, 130)
    int8 = MODEL_X3.parent / "espcn_x3_int8.onnx"
    bound = OnnxUpscaler(int8, Device.CPU, precision=Precision.FP16)
    assert bound.precision == "int8"  # float16 was asked for and not applied
    assert np.array_equal(bound(y), OnnxUpscaler(int8, Device.CPU)(y))


@needs(ZOO_MODEL)
def test_bound_engine_runs_fixed_size_models() -> None:
    """The zoo's fixed 224x224 model, run in tiles, gives the plain engine's pixels."""
    pytest.importorskip("onnx")
    y = _noise(2, 100, 130)
    zoo = OnnxUpscaler(ZOO_MODEL, Device.CPU, engine="bound", precision=Precision.FP32)
    assert zoo.fixed == (224, 224)
    assert np.array_equal(zoo(y), OnnxUpscaler(ZOO_MODEL, Device.CPU)(y))


def vsr_sample_frame() -> np.ndarray:
    """A real frame: the middle of the bundled sample clip."""
    import av

    with av.open(str(SAMPLE)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == 50:
                return f.to_ndarray(format="bgr24")
    raise AssertionError("sample too short")


@pytest.mark.gpu
@pytest.mark.skipif(
    "CUDAExecutionProvider" not in ort.get_available_providers(),
    reason="onnxruntime has no CUDA execution provider here",
)
def test_cuda_pipeline_upscales_a_clip_end_to_end(tmp_path: Path) -> None:
    """`vsr upscale --device cuda` on a real clip: every frame, the right size, and the
    progress record names the provider and the precision."""
    import json

    src = synth_video(tmp_path / "in.mp4", n=24, size=(96, 64))
    dst = tmp_path / "out.mp4"
    proc = run_process("upscale", src, dst, "--device", "cuda", "--preset", "ultrafast", "--progress", "json")
    assert proc.returncode == 0, proc.stderr
    done = [json.loads(x) for x in proc.stderr.splitlines() if '"done"' in x][-1]
    assert done["provider"] == "CUDAExecutionProvider" and done["precision"] in ("fp16", "fp32")
    st = video_stats(dst)
    assert st["sizes"] == {(288, 192)} and len(st["times"]) == 24


def test_bound_engine_refuses_clearly_what_it_cannot_rewrite(tmp_path: Path) -> None:
    """A model vsr can run plain but the graph rewrite cannot take (two outputs): asking for
    the bound engine or float16 is a ModelError that says so; the plain engine still runs it."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, "h", "w"])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "z")]
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest"),
        helper.make_node("Identity", ["x"], ["z"]),
    ]
    model = onnx_model(helper.make_graph(nodes, "two", [x], outs, [scales]))
    path = tmp_path / "two_outputs.onnx"
    onnx.save(model, str(path))
    assert OnnxUpscaler(path, Device.CPU).scale == 2
    with pytest.raises(ModelError, match="bound engine"):
        OnnxUpscaler(path, Device.CPU, precision=Precision.FP16)


def test_high_bit_depth_luma_runs_at_full_precision_on_both_engines() -> None:
    """uint16 luma (0..65535, from 10/12-bit video) comes back uint16 at 3x, equal to the
    8-bit result scaled up within rounding, and the bound (GPU-style) engine gives the plain
    engine's values through its float session; batches, strips and tiles agree."""
    pytest.importorskip("onnx")
    y8 = _noise(2, 40, 52)
    y16 = y8.astype(np.uint16) * 257 + np.random.default_rng(1).integers(0, 200, y8.shape).astype(np.uint16)
    plain = OnnxUpscaler(MODEL_X3, Device.CPU)
    out16 = plain(y16)
    assert out16.dtype == np.uint16 and out16.shape == (2, 120, 156)
    assert np.abs(out16.astype(float) / 257 - plain(y8)).mean() < 1.0
    bound = OnnxUpscaler(MODEL_X3, Device.CPU, engine="bound", precision=Precision.FP32)
    assert np.array_equal(bound(y16), out16)
    tiled = OnnxUpscaler(MODEL_X3, Device.CPU, tile=24)
    assert np.array_equal(tiled(y16), out16)  # the overlap covers the receptive field: exact
    strips = OnnxUpscaler(MODEL_X3, Device.CPU, max_run_pixels=600)
    assert np.array_equal(strips(y16), out16)


def test_bound_engine_is_safe_to_call_from_several_threads_at_once() -> None:
    """Scale-out runs its segments as threads sharing one upscaler: concurrent calls with
    different batch sizes each get their own result (one shared I/O binding once mixed their
    shapes up on a GPU: "Tensor size mismatch")."""
    pytest.importorskip("onnx")
    from concurrent.futures import ThreadPoolExecutor

    bound = OnnxUpscaler(MODEL_X3, Device.CPU, engine="bound", precision=Precision.FP32)
    inputs = [_noise(n, 48, 64, seed=i) for i, n in enumerate([1, 2, 4, 3] * 8)]
    expected = [bound(x) for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(bound, inputs))
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
