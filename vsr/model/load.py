"""Loading a model: an ONNX file as an `OnnxUpscaler`, the model stage's `LumaUpscaler`.

Runs in the main thread, before any stage starts: session creation holds the GIL and can
fail, and failures must surface first. `load()` resolves a name, a path or a --scale/--quality
through the registry; `OnnxUpscaler` checks the model, probes its scale, picks the engine
(`vsr.model.engines`: "plain" on the CPU, "bound" on CUDA) and its precision once, and cuts every
call into model runs by `vsr.model.tiling`.

Any ONNX model taking [N,1,H,W] float32 in 0..1 and returning [N,1,rH,rW] works. The scale
r is probed with one small run. Models with a fixed H/W (the zoo's 224x224) are run tile by
tile; the tiles of every frame in a batch go through the dynamic N axis in one call.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..errors import ModelError, ProviderUnavailable
from ..options import Device, Engine, ModelOptions, Precision
from . import quant
from .engine_choice import Choice
from .engines import (
    BoundEngine,
    PlainEngine,
    first_line,
    load_session,
    providers_for,
    with_options,
)
from .openvino_engine import OpenVinoEngine
from .runtime import import_onnxruntime
from .tiling import TILE_OVERLAP, receptive_radius, upscale_planes

log = logging.getLogger(__name__)

#: Input pixels per onnxruntime call (see OnnxUpscaler.max_run_pixels). On the CPU, 640x360
#: frames still run whole (no overlap cost) while 1280x720 ones run as four strips: peak RSS
#: of a 720p -> 4K run went from 1709 to 1019 MiB at the same speed (2 cores, veryfast); a
#: budget of 120k pixels saved 130 MiB more but cost 17% in speed. A GPU has the memory.
CPU_RUN_PIXELS = 250_000
GPU_RUN_PIXELS = 16_000_000


class LumaUpscaler(Protocol):
    """Anything that turns (N, H, W) uint8 luma into (N, sH, sW) uint8 luma: what the model
    stage runs (`OnnxUpscaler`, or a test's numpy fake). Not the image API
    (`vsr.ImageUpscaler`), which takes whole BGR images."""

    scale: int

    def __call__(self, y: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]: ...


class OnnxUpscaler:
    """An ONNX super-resolution model, loaded and ready to upscale luma.

    Three engines run the same network. On onnxruntime (`vsr.model.engines`): "plain" feeds
    float32 0..1 planes to `session.run()`; "bound" runs the model rewritten with uint8 input
    and output (`vsr.model.graph`, optionally float16 inside) through I/O binding;
    "onnxruntime" picks "bound" on CUDA (and for float16), "plain" on the CPU, where the graph
    conversions measured no faster. "openvino" (`vsr.model.openvino_engine`) runs it on the
    CPU through OpenVINO, in float32 or bfloat16. "auto" (`--engine auto`, the CLI's and
    `load()`'s default) is "onnxruntime" on CUDA and, on the CPU, the fastest of onnxruntime and
    OpenVINO and their precisions that runs the model exactly enough here, measured once and
    cached (`vsr.model.engine_choice`). The constructor's default is "onnxruntime": the
    reference the project's own measurements use, with no probe and no cache file.

    Args:
        path: the .onnx file.
        device: execution provider choice.
        tile: tile edge for dynamic models (0: whole frames, in strips when large).
        threads: the engine's threads (0: its default, every core).
        max_run_pixels: input pixels per onnxruntime call at most (0: by provider); bigger
            frames or batches are run in overlapping strips or chunks, with identical results.
        precision: the float arithmetic (AUTO: float16 on CUDA, the measured choice on the CPU
            with engine "auto" or "openvino", else float32).
        engine: "auto", "onnxruntime", "openvino", "plain" or "bound" (an `Engine` works too).
        provider_options: the CUDA execution provider's options (None: `CUDA_OPTIONS`).

    Raises:
        ModelError: unreadable file or wrong input/output shape.
        ProviderUnavailable: onnxruntime missing, CUDA asked for but not available,
            float16 / the bound engine asked for without the `onnx` package, or an engine and
            precision this CPU or install cannot run (`vsr.model.engine_choice.allowed`).
    """

    fixed: tuple[int, int] | None
    batch_fixed: bool
    scale: int
    metadata: dict[str, str]
    provider: str
    _engine: PlainEngine | BoundEngine | OpenVinoEngine
    #: How `--engine auto` (or openvino) decided on the CPU; None where nothing was chosen.
    choice: Choice | None = None

    def __init__(
        self,
        path: str | Path,
        device: Device = Device.AUTO,
        tile: int = 0,
        threads: int = 0,
        max_run_pixels: int = 0,
        precision: Precision = Precision.AUTO,
        engine: str | Engine = "onnxruntime",
        provider_options: dict[str, str] | None = None,
    ) -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"cannot open model '{self.path}': no such file")
        if self.path.suffix.lower() != ".onnx":
            raise ModelError(f"cannot use model '{self.path}': vsr loads only .onnx files")
        engine = engine.value if isinstance(engine, Engine) else engine
        if engine not in ("auto", "onnxruntime", "openvino", "plain", "bound"):
            raise ValueError(f"engine must be auto, onnxruntime, openvino, plain or bound, not {engine!r}")
        if engine == "openvino":
            if device is Device.CUDA:
                raise ProviderUnavailable(
                    "--engine openvino runs on the CPU, not CUDA",
                    hint="pass --device cpu (or auto), or --engine onnxruntime",
                )
            device = Device.CPU
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        so.log_severity_level = 3  # onnxruntime's own warnings go to stderr unformatted
        # Idle intra-op threads spin by default, burning the cores the decoder and encoder
        # need (measured on 2 cores, 640x360 x3: 10.48 s spinning, 10.09 s not).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = providers_for(device, list(ort.get_available_providers()))
        on_device = with_options(providers, provider_options)
        cuda = providers[0] == "CUDAExecutionProvider"
        if engine == "openvino" or (engine == "auto" and not cuda and precision is not Precision.FP16):
            self._choose_on_cpu(ort, so, Engine(engine), precision, threads)
        else:
            if precision is Precision.BF16:
                raise ProviderUnavailable(
                    "--precision bf16: onnxruntime has no bfloat16 convolutions"
                    if engine != "auto"
                    else "--precision bf16 runs on the CPU only (OpenVINO), not on CUDA",
                    hint="pass --engine openvino (or auto) on the CPU"
                    if engine != "auto"
                    else "pass --device cpu, or --precision fp16 on CUDA",
                )
            self._onnxruntime(
                ort,
                so,
                "auto" if engine in ("auto", "onnxruntime") else engine,
                device,
                precision,
                providers,
                on_device,
                cuda,
            )
        log.info("model %s on %s (%s engine, %s)", self.path.name, self.provider, self.engine, self.precision)
        self.tile = tile
        if self.fixed is None and tile and tile <= 2 * self.overlap:
            raise ModelError(
                f"tile size {tile} is too small for {self.path.name}: use more than {2 * self.overlap}"
            )
        self.max_run_pixels = max_run_pixels or (
            GPU_RUN_PIXELS if self.provider == "CUDAExecutionProvider" else CPU_RUN_PIXELS
        )

    def _checked_session(self, ort: ModuleType, so: Any, providers: list[Any]) -> Any:
        """A session of the model as it is, its input and output checked, its scale probed and
        its metadata read."""
        session = self._load(ort, str(self.path), so, providers)
        self._check_io(session)
        self.scale = self._probe_scale(session)
        self.metadata = dict(session.get_modelmeta().custom_metadata_map)
        return session

    def _choose_on_cpu(
        self, ort: ModuleType, so: Any, engine: Engine, precision: Precision, threads: int
    ) -> None:
        """`--engine auto|openvino` on the CPU: the engine and precision `engine_choice` picks."""
        from . import engine_choice, openvino_engine
        from .registry import model_dirs

        session = self._checked_session(ort, so, ["CPUExecutionProvider"])
        model_precision = quant.file_precision(self.path, self.metadata)
        ov_version = openvino_engine.version()
        digest = engine_choice.file_digest(self.path)
        reduced = "int8" if model_precision == "int8" else "bf16"
        guarded_out = engine_choice.guard_verdict(self.path, digest, model_dirs(), reduced)
        if guarded_out and engine is not Engine.ONNXRUNTIME and precision is Precision.AUTO:
            log.info(
                "model %s: %s left out: %s (%s)%s",
                self.path.name,
                "OpenVINO int8" if reduced == "int8" else "bfloat16",
                guarded_out,
                engine_choice.GUARD_FILE,
                "; --precision bf16 runs it anyway" if reduced == "bf16" else "",
            )
        every = engine_choice.available(model_precision, bool(ov_version), guarded_out=guarded_out)
        here = engine_choice.allowed(every, engine, precision, model_precision, bool(ov_version))

        def build(c: engine_choice.Candidate) -> PlainEngine | OpenVinoEngine:
            if c.engine == "onnxruntime":
                return PlainEngine(session, self.path.name, model_precision)
            return openvino_engine.OpenVinoEngine(str(self.path), c.precision, threads)

        versions = {"onnxruntime": str(ort.__version__), "openvino": ov_version}
        self.choice, built = engine_choice.choose(
            self.path, digest, every, here, threads, versions, build, self.fixed
        )
        made = built.get(self.choice.candidate) or build(self.choice.candidate)
        assert isinstance(made, (PlainEngine, OpenVinoEngine))
        self._engine = made
        self.provider = getattr(made, "provider", "CPUExecutionProvider")

    def _onnxruntime(
        self,
        ort: ModuleType,
        so: Any,
        engine: str,
        device: Device,
        precision: Precision,
        providers: list[str],
        on_device: list[Any],
        cuda: bool,
    ) -> None:
        """The model on onnxruntime: the plain or the bound engine (`engine` "auto": bound on
        CUDA, plain on the CPU)."""
        graph = _graph_module(engine == "bound" or precision is Precision.FP16, engine == "auto" and cuda)
        # The model is checked and probed on the CPU when the bound engine will run it: a
        # second CUDA session would only cost start-up time and device memory.
        try_bound = graph is not None and engine != "plain"
        session = self._checked_session(ort, so, ["CPUExecutionProvider"] if try_bound else on_device)
        rewritten = (
            self._rewrite(
                graph,
                precision is Precision.FP16 or (precision is Precision.AUTO and cuda),
                engine == "bound" or precision is Precision.FP16,
                precision,
            )
            if graph is not None and try_bound
            else None
        )
        # An int8 model stays int8 on every engine (vsr.model.graph leaves quantized graphs alone).
        if graph is not None and rewritten is not None:
            data, fp16 = rewritten
            self._engine = BoundEngine(
                self._load(ort, data, so, on_device),
                self.path.name,
                self.scale,
                "fp16" if fp16 else quant.file_precision(self.path, self.metadata),
                (graph.INPUT, graph.OUTPUT),
                float_engine=lambda: PlainEngine(
                    self._load(
                        ort,
                        str(self.path),
                        ort.SessionOptions(),
                        with_options(self.session.get_providers(), None),
                    ),
                    self.path.name,
                    quant.file_precision(self.path, self.metadata),
                ),
            )
        else:
            if precision is Precision.FP16:
                raise ModelError("--precision fp16 needs the bound engine")
            if try_bound and cuda:  # probed on the CPU, but runs plain: load it where it runs
                session = self._load(ort, str(self.path), so, on_device)
            self._engine = PlainEngine(
                session, self.path.name, quant.file_precision(self.path, self.metadata)
            )
        self.provider = self.session.get_providers()[0]
        if device is Device.CUDA and self.provider != "CUDAExecutionProvider":
            raise ProviderUnavailable(
                f"CUDA requested but onnxruntime is running on {self.session.get_providers()}",
                hint="install onnxruntime-gpu matching your CUDA/cuDNN, or pass --device cpu",
            )

    @functools.cached_property
    def overlap(self) -> int:
        """LR pixels of context kept around each tile or strip: the model's receptive field
        (8 when the graph cannot tell), so tiled output is the whole-frame output.

        Read on first use, not at load: reading the graph imports `onnx`, which takes 1.2 s
        with ml_dtypes 0.7 (0.1 s with 0.6) on a 2-core AMD EPYC, and most runs never tile."""
        return max(TILE_OVERLAP, receptive_radius(self.path) or TILE_OVERLAP)

    @property
    def engine(self) -> str:
        """The engine that runs the model: "plain" or "bound" (onnxruntime's), or "openvino"."""
        return self._engine.name

    @property
    def runtime(self) -> Engine:
        """What runs the model, in `--engine`'s words: ONNXRUNTIME or OPENVINO."""
        return Engine.OPENVINO if self._engine.name == "openvino" else Engine.ONNXRUNTIME

    @property
    def precision(self) -> str:
        """The model's arithmetic as run: "fp32", "bf16", "fp16" or "int8"."""
        return self._engine.precision

    @property
    def session(self) -> Any:
        """The onnxruntime session that runs the model (of the rewritten graph when bound);
        None when OpenVINO runs it (`runtime`)."""
        return None if isinstance(self._engine, OpenVinoEngine) else self._engine.session

    def __call__(self, y: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Upscale (N, H, W) uint8 luma to (N, sH, sW) uint8 (uint16 to uint16)."""
        return upscale_planes(
            y,
            self._infer,
            self.scale,
            fixed=self.fixed,
            tile=self.tile,
            max_run_pixels=self.max_run_pixels,
            overlap=lambda: self.overlap,
        )

    def _infer(self, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """One model call, [n,1,h,w] -> [n,1,sh,sw]; one frame at a time for a model whose
        batch size is fixed."""
        if self.batch_fixed and x.shape[0] != 1:
            return np.concatenate([self._infer(x[i : i + 1]) for i in range(x.shape[0])])
        return self._engine.run(x)

    def _rewrite(
        self, graph: ModuleType, fp16: bool, strict: bool, precision: Precision
    ) -> tuple[bytes, bool] | None:
        """The model for the bound engine (see `vsr.model.graph.uint8_io`) and whether it computes
        in float16; None, with a warning, if onnx cannot rewrite it and the caller did not
        insist on the bound engine."""
        try:
            result: tuple[bytes, bool] = graph.uint8_io(self.path.read_bytes(), fp16)
        except Exception as exc:  # onnx's checker/converter errors: a graph it cannot rewrite
            if strict:
                raise ModelError(
                    f"cannot run model '{self.path}' in {precision.value} on the "
                    f"bound engine: {first_line(exc)}",
                    hint="pass --precision fp32",
                ) from exc
            log.warning(
                "model %s: the GPU engine cannot rewrite it (%s); running it as is",
                self.path.name,
                first_line(exc),
            )
            return None
        return result

    def _load(self, ort: ModuleType, model: str | bytes, so: Any, providers: list[Any]) -> Any:
        return load_session(ort, model, so, providers, str(self.path))

    def _check_io(self, session: Any) -> None:
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise ModelError(
                f"model '{self.path}' is not a super-resolution model: "
                f"expected 1 input and 1 output, got {len(inputs)} and {len(outputs)}"
            )
        inp = inputs[0]
        shape = list(inp.shape)
        if len(shape) != 4 or shape[1] not in (1, None, "1") or inp.type != "tensor(float)":
            raise ModelError(
                f"model '{self.path}' is not a super-resolution model: "
                f"input {inp.name!r} is {inp.type} {shape}, expected float32 [N,1,H,W]",
                hint="vsr runs luma-only models like the ONNX zoo's super_resolution.onnx",
            )
        fixed_h = shape[2] if isinstance(shape[2], int) else None
        fixed_w = shape[3] if isinstance(shape[3], int) else None
        self.fixed = (fixed_h, fixed_w) if fixed_h and fixed_w else None
        self.batch_fixed = isinstance(shape[0], int)

    def _probe_scale(self, session: Any) -> int:
        ph, pw = self.fixed or (24, 20)
        x = np.zeros((1, 1, ph, pw), np.float32)
        try:
            out = session.run(None, {session.get_inputs()[0].name: x})[0]
        except Exception as exc:
            raise ModelError(
                f"model '{self.path}' failed a probe run on a {pw}x{ph} input: {first_line(exc)}"
            ) from exc
        if out.ndim != 4 or out.shape[1] != 1 or out.shape[2] % ph or out.shape[3] % pw:
            raise ModelError(
                f"model '{self.path}' is not a super-resolution model: "
                f"a [1,1,{ph},{pw}] input gave {list(out.shape)}, expected [1,1,rH,rW]"
            )
        r, rw = out.shape[2] // ph, out.shape[3] // pw
        if r != rw or r < 1:
            raise ModelError(
                f"model '{self.path}' scales height by {r} and width by {rw}; only equal scales are supported"
            )
        return int(r)


def _graph_module(required: bool, wanted: bool) -> ModuleType | None:
    """vsr.model.graph when the `onnx` package is there; without it, an error if the caller asked
    for what only it can do, else None (and a warning when CUDA loses its fast engine)."""
    if not (required or wanted):
        return None
    try:
        from . import graph
    except ImportError as exc:
        if required:
            raise ProviderUnavailable(
                "float16 and the bound engine need the 'onnx' package",
                hint="pip install 'vsr[gpu]' (or pip install onnx)",
            ) from exc
        log.warning(
            "the 'onnx' package is missing: the model runs on CUDA in float32 with "
            "host-side conversions, several times slower (pip install 'vsr[gpu]')"
        )
        return None
    return graph


def load(options: ModelOptions) -> OnnxUpscaler:
    """Resolve a model name/path/scale and load it, checking the scale against the model."""
    from .registry import resolve

    scale = options.scale
    path = resolve(options.model, scale, options.quality, options.degrade)
    if (
        options.device is Device.CPU
        or "CUDAExecutionProvider" not in import_onnxruntime().get_available_providers()
    ):
        path = _exact_on_this_cpu(path)
    up = OnnxUpscaler(
        path,
        options.device,
        options.tile,
        options.threads,
        precision=options.precision,
        engine=options.engine,
    )
    if scale is not None and up.scale != scale:
        raise ModelError(
            f"model '{up.path}' upscales x{up.scale}, but --scale {scale} was asked for",
            hint="drop --scale, or pick a model of that scale",
        )
    return up


def _exact_on_this_cpu(path: Path) -> Path:
    """`path`, or its float model when it is an int8 model this CPU would compute wrongly.

    Only int8 weights beyond 7 bits on an x86 CPU without VNNI are a problem (see
    `vsr.model.quant`); vsr's own int8 models are made immune, so this guards models from
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
            log.warning(
                "model %s: its int8 weights can saturate on this CPU (x86 without VNNI); "
                "running its float model %s instead",
                path.name,
                float_path.name,
            )
            return float_path
    log.warning(
        "model %s: its int8 weights exceed 7 bits and can saturate on this CPU (x86 "
        "without VNNI), giving wrong pixels; quantize with reduce_range, or use a float model",
        path.name,
    )
    return path


def provider_of(up: LumaUpscaler) -> str:
    """Where `up` runs: onnxruntime's provider for a loaded model; for another upscaler (a
    test's fake, an API caller's own) its `provider` attribute if it has one, else "custom"."""
    if isinstance(up, OnnxUpscaler):
        return up.provider
    return str(getattr(up, "provider", "custom"))


def precision_of(up: LumaUpscaler) -> str:
    """The arithmetic `up` computes in: "fp32", "bf16", "fp16" or "int8"; "" when not a loaded
    model (a wrapper such as the job service's shared model says its model's)."""
    return up.precision if isinstance(up, OnnxUpscaler) else str(getattr(up, "precision", ""))


def engine_of(up: LumaUpscaler) -> str:
    """What runs `up`, in `--engine`'s words: "onnxruntime" or "openvino"; "" when not a
    loaded model (a wrapper such as the job service's shared model says its model's, as its
    `runtime`)."""
    runtime = up.runtime if isinstance(up, OnnxUpscaler) else getattr(up, "runtime", "")
    return runtime.value if isinstance(runtime, Engine) else str(runtime)


def name_of(up: LumaUpscaler) -> str:
    """The model file that runs, without .onnx ("" when not a loaded model): what `--quality`
    and `--degrade` chose, or the float model an AVX2-only CPU runs instead of an int8 one."""
    if isinstance(up, OnnxUpscaler):
        return up.path.stem
    return str(getattr(up, "name", ""))


def require_cuda(up: LumaUpscaler) -> None:
    """`--require-gpu`: a model that does not run on CUDA is an error, never a silent CPU run.

    Raises:
        ProviderUnavailable: `up` runs on another provider (with what onnxruntime offers here).
    """
    provider = provider_of(up)
    if "CUDA" in provider:
        return
    try:
        offered = ", ".join(import_onnxruntime().get_available_providers())
    except ProviderUnavailable:
        offered = "none"
    raise ProviderUnavailable(
        f"--require-gpu: the model would run on {provider}, not on a GPU "
        f"(onnxruntime here offers: {offered})",
        hint="install onnxruntime-gpu with a working CUDA, or drop --require-gpu",
    )


def describe(up: OnnxUpscaler) -> str:
    """A short human description of a loaded model."""
    shape = f"{up.fixed[0]}x{up.fixed[1]} tiles" if up.fixed else "any size"
    return (
        f"{up.path.name}: x{up.scale}, input [N,1,H,W] ({shape}), on {up.provider}, "
        f"{up.engine} engine, {up.precision}"
    )
