"""The model stage's engine: an onnxruntime session that upscales stacks of Y planes.

Runs in the upscaler thread (constructed in the main thread: session creation holds the GIL
and can fail, and failures must surface before any thread starts). `run()` and
`run_with_iobinding()` release the GIL, so decoding and encoding overlap with them.

Two engines (see `OnnxUpscaler`): "plain" on the CPU, "bound" on CUDA, where the model is
rewritten by `vsr.graph` to take and return uint8 (float16 inside by default) and its result
is written straight into the array handed on.

Any ONNX model taking [N,1,H,W] float32 in 0..1 and returning [N,1,rH,rW] works. The scale
r is probed with one small run. Models with a fixed H/W (the zoo's 224x224) are run tile by
tile; the tiles of every frame in a batch go through the dynamic N axis in one call.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from . import quant
from .errors import ModelError, ModelRunError, ProviderUnavailable
from .options import Device, ModelOptions, Precision
from .runtime import import_onnxruntime

log = logging.getLogger(__name__)

#: LR pixels of context each tile keeps on every side it shares with another tile. ESPCN's
#: receptive field reaches 5 pixels (5x5 + three 3x3 convolutions); 8 leaves margin for
#: slightly deeper models while costing little.
TILE_OVERLAP = 8


#: Input pixels per onnxruntime call (see OnnxUpscaler.max_run_pixels). On the CPU, 640x360
#: frames still run whole (no overlap cost) while 1280x720 ones run as four strips: peak RSS
#: of a 720p -> 4K run went from 1709 to 1019 MiB at the same speed (2 cores, veryfast); a
#: budget of 120k pixels saved 130 MiB more but cost 17% in speed. A GPU has the memory.
CPU_RUN_PIXELS = 250_000
GPU_RUN_PIXELS = 16_000_000

#: CUDA execution provider options unless the caller gives its own. Channels-last
#: convolutions: 1564 against 1237 fps at 640x360 and 390 against 314 at 1280x720 on an H100
#: (float16, bound engine, scripts/model_fps.py), the same pixels within rounding.
CUDA_OPTIONS = {"prefer_nhwc": "1"}


class Upscaler(Protocol):
    """Anything that turns (N, H, W) uint8 luma into (N, sH, sW) uint8 luma."""

    scale: int

    def __call__(self, y: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]: ...


def providers_for(device: Device, available: list[str]) -> list[str]:
    """The provider list to ask onnxruntime for."""
    if device is Device.CPU:
        return ["CPUExecutionProvider"]
    if device is Device.CUDA:
        if "CUDAExecutionProvider" not in available:
            raise ProviderUnavailable(
                f"CUDA requested but onnxruntime offers only {available}",
                hint="pip install 'vsr[gpu]' (onnxruntime-gpu matching your CUDA/cuDNN) "
                     "in place of 'vsr[cpu]', or pass --device cpu")
        return ["CUDAExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


@dataclass(frozen=True)
class Tile:
    """One tile: where its input window starts and which part of its output is kept."""

    y0: int  # input window origin, in LR pixels
    x0: int
    keep_y0: int  # kept region, in LR pixels of the frame
    keep_y1: int
    keep_x0: int
    keep_x1: int


def tile_grid(h: int, w: int, tile_h: int, tile_w: int, overlap: int = TILE_OVERLAP) -> list[Tile]:
    """Cover an (h, w) frame (at least tile-sized) with tile windows.

    Windows overlap by `2 * overlap` and are clamped inside the frame, so every kept pixel
    has `overlap` pixels of real context, or lies on the frame's own border where the model
    sees exactly what it sees on a whole frame. Kept regions partition the frame.
    """
    ys = _starts(h, tile_h, overlap)
    xs = _starts(w, tile_w, overlap)
    tiles = []
    for i, y0 in enumerate(ys):
        ky0 = 0 if i == 0 else (ys[i - 1] + tile_h + y0) // 2
        ky1 = h if i == len(ys) - 1 else (y0 + tile_h + ys[i + 1]) // 2
        for j, x0 in enumerate(xs):
            kx0 = 0 if j == 0 else (xs[j - 1] + tile_w + x0) // 2
            kx1 = w if j == len(xs) - 1 else (x0 + tile_w + xs[j + 1]) // 2
            tiles.append(Tile(y0, x0, ky0, ky1, kx0, kx1))
    return tiles


def _starts(n: int, t: int, overlap: int) -> list[int]:
    if n <= t:
        return [0]
    step = t - 2 * overlap
    if step <= 0:
        raise ValueError(f"tile size {t} too small for overlap {overlap}")
    count = 1 + math.ceil((n - t) / step)
    # Spread the windows evenly between 0 and n - t.
    return [round(k * (n - t) / (count - 1)) for k in range(count)]


class OnnxUpscaler:
    """An onnxruntime session wrapped as an `Upscaler`.

    Two engines run the same network. "plain" feeds float32 0..1 planes to `session.run()`
    and converts the output to uint8 on the host. "bound" runs the model rewritten with uint8
    input and output (`vsr.graph`, optionally float16 inside) through I/O binding: the batch
    goes to the device as uint8, the conversions run there, and the uint8 result lands
    directly in the array that is handed on, so nothing float ever crosses PCIe or the GIL.
    Both give identical pixels at float32 (tests/test_model.py). "auto" picks "bound" on CUDA
    (and for float16), "plain" on the CPU, where the graph conversions measured no faster.

    Args:
        path: the .onnx file.
        device: execution provider choice.
        tile: tile edge for dynamic models (0: whole frames, in strips when large).
        threads: intra-op threads (0: onnxruntime's default).
        max_run_pixels: input pixels per onnxruntime call at most (0: by provider); bigger
            frames or batches are run in overlapping strips or chunks, with identical results.
        precision: float32 or float16 arithmetic (AUTO: float16 on CUDA).
        engine: "auto", "plain" or "bound".
        provider_options: the CUDA execution provider's options (None: `CUDA_OPTIONS`).

    Raises:
        ModelError: unreadable file or wrong input/output shape.
        ProviderUnavailable: onnxruntime missing, CUDA asked for but not available, or
            float16 / the bound engine asked for without the `onnx` package.
    """

    input_name: str
    output_name: str
    fixed: tuple[int, int] | None
    batch_fixed: bool

    def __init__(self, path: str | Path, device: Device = Device.AUTO, tile: int = 0,
                 threads: int = 0, max_run_pixels: int = 0, precision: Precision = Precision.AUTO,
                 engine: str = "auto", provider_options: dict[str, str] | None = None) -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"cannot open model '{self.path}': no such file")
        if self.path.suffix.lower() != ".onnx":
            raise ModelError(f"cannot use model '{self.path}': vsr loads only .onnx files")
        if engine not in ("auto", "plain", "bound"):
            raise ValueError(f"engine must be auto, plain or bound, not {engine!r}")
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        so.log_severity_level = 3  # onnxruntime's own warnings go to stderr unformatted
        # Idle intra-op threads spin by default, burning the cores the decoder and encoder
        # need (measured on 2 cores, 640x360 x3: 10.48 s spinning, 10.09 s not).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = providers_for(device, list(ort.get_available_providers()))
        cuda = providers[0] == "CUDAExecutionProvider"
        graph = _graph_module(engine == "bound" or precision is Precision.FP16,
                              engine == "auto" and cuda)
        bound = graph is not None and engine != "plain"
        # The model is checked and probed on the CPU when the bound engine will run it: a
        # second CUDA session would only cost start-up time and device memory.
        probed_on_cpu = bound and cuda
        session = self._load(ort, str(self.path), so, ["CPUExecutionProvider"] if bound
                             else _with_options(providers, provider_options))
        self._check_io(session)
        float_names = (self.input_name, self.output_name)  # the original graph's, for float input
        self.scale = self._probe_scale(session)
        self.metadata = dict(session.get_modelmeta().custom_metadata_map)
        fp16 = precision is Precision.FP16 or (precision is Precision.AUTO and cuda)
        rewritten = self._rewrite(graph, fp16, engine == "bound" or precision is Precision.FP16,
                                  precision) if bound and graph is not None else None
        bound = rewritten is not None
        if graph is not None and rewritten is not None:
            data, fp16 = rewritten
            session = self._load(ort, data, so, _with_options(providers, provider_options))
            self.input_name, self.output_name = graph.INPUT, graph.OUTPUT
            self._binding = session.io_binding()
        else:
            if precision is Precision.FP16:
                raise ModelError("--precision fp16 needs the bound engine")
            fp16 = False
            if probed_on_cpu:
                session = self._load(ort, str(self.path), so, _with_options(providers, provider_options))
        self.session = session
        self._plain: Any = None
        self.engine = "bound" if bound else "plain"
        self._float_input, self._float_output = float_names
        # An int8 model stays int8 on every engine (vsr.graph leaves quantized graphs alone).
        self.precision = "fp16" if fp16 else quant.precision_of(self.path, self.metadata)
        self.provider = self.session.get_providers()[0]
        if device is Device.CUDA and self.provider != "CUDAExecutionProvider":
            raise ProviderUnavailable(
                f"CUDA requested but onnxruntime is running on {self.session.get_providers()}",
                hint="install onnxruntime-gpu matching your CUDA/cuDNN, or pass --device cpu")
        log.info("model %s on %s (%s engine, %s)", self.path.name, self.provider, self.engine,
                 self.precision)
        self.tile = tile
        if self.fixed is None and tile and tile <= 2 * TILE_OVERLAP:
            raise ModelError(f"tile size {tile} is too small: use more than {2 * TILE_OVERLAP}")
        self.max_run_pixels = max_run_pixels or (
            GPU_RUN_PIXELS if self.provider == "CUDAExecutionProvider" else CPU_RUN_PIXELS)

    def _rewrite(self, graph: ModuleType, fp16: bool, strict: bool,
                 precision: Precision) -> tuple[bytes, bool] | None:
        """The model for the bound engine (see `vsr.graph.uint8_io`); None, with a warning, if
        onnx cannot rewrite it and the caller did not insist on the bound engine."""
        try:
            result: tuple[bytes, bool] = graph.uint8_io(self.path.read_bytes(), fp16)
        except Exception as exc:  # onnx's checker/converter errors: a graph it cannot rewrite
            if strict:
                raise ModelError(f"cannot run model '{self.path}' in {precision.value} on the "
                                 f"bound engine: {_first_line(exc)}", hint="pass --precision fp32") from exc
            log.warning("model %s: the GPU engine cannot rewrite it (%s); running it as is",
                        self.path.name, _first_line(exc))
            return None
        return result

    def _load(self, ort: ModuleType, model: str | bytes, so: Any, providers: list[Any]) -> Any:
        try:
            return ort.InferenceSession(model, so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            if any(isinstance(p, tuple) for p in providers):
                # An onnxruntime-gpu that does not know an option: run without the options.
                log.info("retrying without CUDA provider options: %s", _first_line(exc))
                return self._load(ort, model, so, [p[0] if isinstance(p, tuple) else p
                                                   for p in providers])
            raise ModelError(f"cannot load model '{self.path}': {_first_line(exc)}",
                             hint="the file must be an ONNX model (see 'vsr models')") from exc

    def _check_io(self, session: Any) -> None:
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise ModelError(f"model '{self.path}' is not a super-resolution model: "
                             f"expected 1 input and 1 output, got {len(inputs)} and {len(outputs)}")
        inp = inputs[0]
        self.input_name = inp.name
        self.output_name = outputs[0].name
        shape = list(inp.shape)
        if (len(shape) != 4 or shape[1] not in (1, None, "1") or inp.type != "tensor(float)"):
            raise ModelError(f"model '{self.path}' is not a super-resolution model: "
                             f"input {inp.name!r} is {inp.type} {shape}, expected float32 [N,1,H,W]",
                             hint="vsr runs luma-only models like the ONNX zoo's super_resolution.onnx")
        fixed_h = shape[2] if isinstance(shape[2], int) else None
        fixed_w = shape[3] if isinstance(shape[3], int) else None
        self.fixed = (fixed_h, fixed_w) if fixed_h and fixed_w else None
        self.batch_fixed = isinstance(shape[0], int)

    def _probe_scale(self, session: Any) -> int:
        ph, pw = self.fixed or (24, 20)
        x = np.zeros((1, 1, ph, pw), np.float32)
        try:
            out = session.run(None, {self.input_name: x})[0]
        except Exception as exc:
            raise ModelError(f"model '{self.path}' failed a probe run on a {pw}x{ph} input: "
                             f"{_first_line(exc)}") from exc
        if out.ndim != 4 or out.shape[1] != 1 or out.shape[2] % ph or out.shape[3] % pw:
            raise ModelError(f"model '{self.path}' is not a super-resolution model: "
                             f"a [1,1,{ph},{pw}] input gave {list(out.shape)}, expected [1,1,rH,rW]")
        r, rw = out.shape[2] // ph, out.shape[3] // pw
        if r != rw or r < 1:
            raise ModelError(f"model '{self.path}' scales height by {r} and width by {rw}; "
                             "only equal scales are supported")
        return int(r)

    def _infer(self, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """One onnxruntime call: uint8 [n,1,h,w] -> uint8 [n,1,sh,sw]; uint16 (0..65535:
        high bit depth luma, never rounded to 8 bits) -> uint16 likewise."""
        if self.batch_fixed and x.shape[0] != 1:
            return np.concatenate([self._infer(x[i : i + 1]) for i in range(x.shape[0])])
        deep = x.dtype == np.uint16
        session = self._float_session() if deep else self.session
        try:
            if self.engine == "bound" and not deep:
                n, _, h, w = x.shape
                out = np.empty((n, 1, h * self.scale, w * self.scale), np.uint8)
                self._binding.bind_cpu_input(self.input_name, np.ascontiguousarray(x))
                self._binding.bind_output(self.output_name, "cpu", 0, np.uint8, out.shape,
                                          out.ctypes.data)
                self.session.run_with_iobinding(self._binding)
                return out
            xf = x.astype(np.float32)
            xf *= 1.0 / (65535.0 if deep else 255.0)
            result: npt.NDArray[np.float32] = session.run([self._float_output],
                                                          {self._float_input: xf})[0]
        except Exception as exc:  # onnxruntime's own error types; a bug-free model never raises
            raise ModelRunError(f"model '{self.path.name}' failed on a [{', '.join(map(str, x.shape))}] "
                                f"batch: {_first_line(exc)}") from exc
        return _to_uint16(result) if deep else _to_uint8(result)

    def _float_session(self) -> Any:
        """The session that takes float32 0..1 input: the main one, except for the bound
        engine, whose graph takes uint8; high bit depth frames there get a plain session of
        the original model, made on first use."""
        if self.engine != "bound":
            return self.session
        if self._plain is None:
            ort = import_onnxruntime()
            self._plain = self._load(ort, str(self.path), ort.SessionOptions(),
                                     _with_options(self.session.get_providers(), None))
            log.info("high bit depth frames: model %s runs its float32 graph", self.path.name)
        return self._plain

    def __call__(self, y: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Upscale (N, H, W) uint8 luma to (N, sH, sW) uint8 (uint16 to uint16)."""
        n, h, w = y.shape
        tile_hw = self.fixed or ((self.tile, self.tile) if self.tile else None)
        if tile_hw is None and h * w > self.max_run_pixels:
            # Whole-width strips: one run's activations (64 float32 channels per pixel, a
            # few layers deep) are what makes the memory peak, so bound the pixels per run.
            tile_hw = (min(h, max(4 * TILE_OVERLAP, self.max_run_pixels // w)), w)
        if tile_hw is None:
            per_run = max(1, self.max_run_pixels // (h * w))
            outs = [self._infer(y[i : i + per_run, None])[:, 0] for i in range(0, n, per_run)]
            return outs[0] if len(outs) == 1 else np.concatenate(outs)
        return self._tiled(y, tile_hw)

    def _tiled(self, y: npt.NDArray[Any], tile_hw: tuple[int, int]) -> npt.NDArray[Any]:
        th, tw = tile_hw
        n, h, w = y.shape
        s = self.scale
        # Frames smaller than a fixed tile are padded by edge reflection (the model cannot
        # see the true border then, which only matters for the outermost pixels).
        ph, pw = max(0, th - h), max(0, tw - w)
        src = y if not (ph or pw) else np.pad(y, ((0, 0), (0, ph), (0, pw)), mode="reflect" if
                                              min(h, w) > 1 else "edge")
        H, W = src.shape[1:]
        if self.fixed is None:
            th, tw = min(th, H), min(tw, W)
        jobs = [(i, t) for i in range(n) for t in tile_grid(H, W, th, tw)]
        per_run = max(1, self.max_run_pixels // (th * tw))  # all tiles of all frames, in chunks
        # uint8 per pixel is the same whether converted before or after stitching.
        hr = np.empty((n, H * s, W * s), y.dtype)
        for c in range(0, len(jobs), per_run):
            chunk = jobs[c : c + per_run]
            x = np.empty((len(chunk), 1, th, tw), y.dtype)
            for k, (i, t) in enumerate(chunk):
                x[k, 0] = src[i, t.y0 : t.y0 + th, t.x0 : t.x0 + tw]
            out = self._infer(x)
            for k, (i, t) in enumerate(chunk):
                hr[i, t.keep_y0 * s : t.keep_y1 * s, t.keep_x0 * s : t.keep_x1 * s] = out[
                    k, 0,
                    (t.keep_y0 - t.y0) * s : (t.keep_y1 - t.y0) * s,
                    (t.keep_x0 - t.x0) * s : (t.keep_x1 - t.x0) * s]
        return hr if (ph, pw) == (0, 0) else np.ascontiguousarray(hr[:, : h * s, : w * s])


def _graph_module(required: bool, wanted: bool) -> ModuleType | None:
    """vsr.graph when the `onnx` package is there; without it, an error if the caller asked
    for what only it can do, else None (and a warning when CUDA loses its fast engine)."""
    if not (required or wanted):
        return None
    try:
        from . import graph
    except ImportError as exc:
        if required:
            raise ProviderUnavailable(
                "float16 and the bound engine need the 'onnx' package",
                hint="pip install 'vsr[gpu]' (or pip install onnx)") from exc
        log.warning("the 'onnx' package is missing: the model runs on CUDA in float32 with "
                    "host-side conversions, several times slower (pip install 'vsr[gpu]')")
        return None
    return graph


def _with_options(providers: list[str], options: dict[str, str] | None) -> list[Any]:
    """The provider list with CUDA's options attached."""
    options = CUDA_OPTIONS if options is None else options
    return [(p, dict(options)) if options and p == "CUDAExecutionProvider" else p
            for p in providers]


def auto_batch(upscaler: Upscaler, height: int, width: int, limit: int = 16,
               memory_budget: int = 2 << 30) -> int:
    """The batch size to use when the user did not choose one.

    On the CPU a batch only multiplies memory (ESPCN's 64-channel activations are ~1 GiB per
    4 frames at 640x360) without speeding the convolutions up, so it is 1. On a GPU, batches
    of 1..`limit` frames are timed on a crop and the smallest one within 5% of the best
    throughput is taken, capped so the activations fit `memory_budget`.
    """
    provider = str(getattr(upscaler, "provider", ""))
    if provider != "CUDAExecutionProvider":
        return 1
    per_frame_bytes = 4 * 64 * 2 * height * width  # two 64-channel float32 activations
    cap = max(1, min(limit, memory_budget // max(1, per_frame_bytes)))
    h, w = min(height, 256), min(width, 256)
    y = np.random.default_rng(0).integers(0, 256, (cap, h, w), dtype=np.uint8)
    timings: dict[int, float] = {}
    b = 1
    while b <= cap:
        upscaler(y[:b])  # warm-up: cuDNN picks its algorithms per shape
        t0 = time.perf_counter()
        for _ in range(3):
            upscaler(y[:b])
        timings[b] = (time.perf_counter() - t0) / (3 * b)
        b *= 2
    best = min(timings.values())
    chosen = min(k for k, v in timings.items() if v <= best * 1.05)
    log.info("batch auto: %s ms/frame for batches %s -> %d",
             [round(v * 1000, 2) for v in timings.values()], list(timings), chosen)
    return chosen


def _to_uint8(x: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """0..1 floats -> uint8, in place (the array is the model's own output, used once)."""
    out: npt.NDArray[np.uint8] = _to_codes(x, 255.0, np.uint8)
    return out


def _to_uint16(x: npt.NDArray[np.float32]) -> npt.NDArray[np.uint16]:
    """0..1 floats -> uint16 0..65535 (high bit depth luma), in place like `_to_uint8`."""
    out: npt.NDArray[np.uint16] = _to_codes(x, 65535.0, np.uint16)
    return out


def _to_codes(x: npt.NDArray[np.float32], top: float, dtype: Any) -> npt.NDArray[Any]:
    if not x.flags.writeable or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x, dtype=np.float32)
    x *= top
    np.clip(x, 0.0, top, out=x)
    return np.rint(x, out=x).astype(dtype)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def load(options: ModelOptions) -> OnnxUpscaler:
    """Resolve a model name/path/scale and load it, checking the scale against the model."""
    from .registry import resolve

    scale = options.scale
    path = resolve(options.model, scale, options.quality)
    if options.device is Device.CPU or "CUDAExecutionProvider" not in import_onnxruntime().get_available_providers():
        path = _exact_on_this_cpu(path)
    up = OnnxUpscaler(path, options.device, options.tile,
                      options.threads, precision=options.precision)
    if scale is not None and up.scale != scale:
        raise ModelError(f"model '{up.path}' upscales x{up.scale}, but --scale {scale} was asked for",
                         hint="drop --scale, or pick a model of that scale")
    return up


def _exact_on_this_cpu(path: Path) -> Path:
    """`path`, or its float model when it is an int8 model this CPU would compute wrongly.

    Only int8 weights beyond 7 bits on an x86 CPU without VNNI are a problem (see
    `vsr.quant`); vsr's own int8 models are made immune, so this guards models from
    elsewhere and from older versions. A model that names its float version
    (`vsr.float_model` metadata) falls back to it; any other runs, with one warning.
    """
    if not quant.cpu_saturates_u8s8() or not quant.saturating_weights(path):
        return path
    from .registry import read_metadata, resolve

    float_name = read_metadata(path).get("vsr.float_model", "")
    if float_name:
        try:
            float_path = resolve(float_name, None)
        except ModelError:
            float_path = None
        if float_path is not None:
            log.warning("model %s: its int8 weights can saturate on this CPU (x86 without VNNI); "
                        "running its float model %s instead", path.name, float_path.name)
            return float_path
    log.warning("model %s: its int8 weights exceed 7 bits and can saturate on this CPU (x86 "
                "without VNNI), giving wrong pixels; quantize with reduce_range, or use a float model",
                path.name)
    return path


def describe(up: OnnxUpscaler) -> str:
    """A short human description of a loaded model."""
    shape = f"{up.fixed[0]}x{up.fixed[1]} tiles" if up.fixed else "any size"
    return (f"{up.path.name}: x{up.scale}, input [N,1,H,W] ({shape}), on {up.provider}, "
            f"{up.engine} engine, {up.precision}")
