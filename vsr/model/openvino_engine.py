"""The OpenVINO engine: the same ONNX file run by OpenVINO's CPU plugin, in float32, bfloat16,
float16, or (an int8 model) int8.

Why a second engine: onnxruntime's CPU provider has no bfloat16 convolutions; OpenVINO's
uses the CPU's bfloat16 units (avx512_bf16, AMX) and runs the bundled models 1.7-2.2x faster
there (README "Performance"). In float32 it is about as fast as onnxruntime; which one runs
is measured, not assumed (`vsr.model.engine_choice`).

Constructed in the main thread by `vsr.model.load.OnnxUpscaler` (compiling can fail, and must
fail before the stages start); `run()` is called from the model stage's thread, or from
several scale-out threads at once: each thread gets its own infer request (a request holds
one call's tensors). OpenVINO's `infer()` releases the GIL, so decoding and encoding go on.

Shapes: the model is compiled once with its dynamic height and width; OpenVINO's CPU plugin
keeps the code it makes for each input shape in its own bounded cache (5000 shapes by
default), so a video's frames, all of one size, are prepared once. A model compiled per static
shape measured no faster (640x360, 2-core AMD EPYC: balanced_x3 bf16 82 vs 78 ms, float32 143
vs 145; fast_x3 bf16 28 vs 23) and costs a compile per shape.

Conversions to and from uint8 stay on the host, as in the plain onnxruntime engine: inside a
bfloat16 graph the x255 and rounding would themselves run in bfloat16, whose 8-bit mantissa
is a grey level at the top of the range.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import logging
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ModelError, ProviderUnavailable
from .cpu import native_bf16
from .engines import first_line, run_error, to_codes, to_unit

log = logging.getLogger(__name__)

#: vsr's precision names -> OpenVINO's inference precision hint. Always given explicitly:
#: on a CPU with bfloat16 units OpenVINO's default is bfloat16, even for "float32" models.
#: An int8 model's integer layers stay int8 under any hint; its float layers (the first and
#: last convolutions) run in float32, because under bf16 they moved balanced_x3_int8's
#: output by up to 10 grey levels from onnxruntime's int8 result (float32: at most 1).
HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
#: What `OnnxUpscaler.provider` says for this engine: where it runs, in the words of the
#: summary line ("balanced_x3, OpenVINO CPU bf16").
PROVIDER = "OpenVINO CPU"


@functools.cache
def version() -> str:
    """OpenVINO's version, or "" when it is not installed (then said once, at info level: vsr
    runs every model on onnxruntime; where the CPU has bfloat16 units the line says what speed
    is missed). Found without importing it (0.4 s), so a start whose cached choice is
    onnxruntime never pays for the import."""
    try:
        found = importlib.util.find_spec("openvino") is not None
        text = importlib.metadata.version("openvino") if found else ""
    except (ImportError, ValueError):  # ValueError: a half-removed install
        text = ""
    if not text:
        # Info, not a warning: a warning would be a second line before every user error's
        # one line, and in the output of `vsr models` (the suite without OpenVINO caught both).
        missed = ", about half the speed this CPU's bfloat16 units give" if native_bf16() else ""
        log.info("openvino is not installed: models run on onnxruntime%s (pip install 'vsr[cpu]')", missed)
    return text


_IMPORT_LOCK = threading.Lock()


@functools.cache
def _core() -> Any:
    """One OpenVINO Core per process (it owns the CPU plugin and its thread pool).

    Raises:
        ProviderUnavailable: openvino cannot be imported.
    """
    with _IMPORT_LOCK:
        openvino = _import_without_telemetry()
    return openvino.Core()


def _import_without_telemetry() -> Any:
    """`import openvino`, with its usage telemetry left out.

    Why: importing openvino (2024 and later) imports its model converter, which sends a usage
    event to Google Analytics from a child process and writes a client id under ~/intel,
    unless the user has opted out with `opt_in_out --opt_out`. vsr uses none of the
    converter, and must not make network calls its user did not ask for (nor leave a child
    process that a Ctrl-C turns into a traceback). With `openvino_telemetry` unimportable for
    the length of the import, OpenVINO falls back to its own no-op stub; the entries are
    removed afterwards, so the package stays importable for anyone who wants it. (If
    openvino was imported before vsr asked for it, the import already happened as its
    importer chose.)

    Raises:
        ProviderUnavailable: openvino cannot be imported.
    """
    hidden = ("openvino_telemetry", "openvino_telemetry.backend")
    saved = {name: sys.modules[name] for name in hidden if name in sys.modules}
    if "openvino" not in sys.modules:
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        import openvino
    except ImportError as exc:
        raise ProviderUnavailable(
            f"cannot import openvino: {first_line(exc)}",
            hint="pip install 'vsr[cpu]' again, or pass --engine onnxruntime",
        ) from exc
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
        sys.modules.update(saved)
    return openvino


class OpenVinoEngine:
    """The model compiled by OpenVINO for the CPU.

    Args:
        path: the .onnx file.
        precision: "fp32", "bf16", "fp16" or "int8" (an int8 model; see `HINTS`).
        threads: inference threads (0: OpenVINO's default, every core).

    Raises:
        ModelError: OpenVINO cannot read or compile the model.
        ProviderUnavailable: openvino cannot be imported.
    """

    name = "openvino"
    provider = PROVIDER

    def __init__(self, path: str, precision: str, threads: int = 0) -> None:
        if precision not in HINTS:
            raise ValueError(f"precision must be one of {', '.join(HINTS)}, not {precision!r}")
        self.model_name = Path(path).name
        self.precision = precision
        self.threads = threads
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": HINTS[precision],
            # One stream, latency first: vsr calls the model once at a time per thread.
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": "1",
            # Unpinned threads: the decoder, the colour stage and the encoder share the cores,
            # and a thread pinned to a core the encoder is on waits for it.
            "ENABLE_CPU_PINNING": False,
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        core = _core()
        try:
            self.compiled = core.compile_model(core.read_model(path), "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError for any unreadable model
            raise ModelError(
                f"cannot load model '{path}' on OpenVINO: {first_line(exc)}", hint="pass --engine onnxruntime"
            ) from exc
        self._local = threading.local()

    def run(self, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """uint8 [n,1,h,w] -> uint8 [n,1,sh,sw]; uint16 (high bit depth) -> uint16 likewise."""
        result = self.run_float(to_unit(x))
        return to_codes(result, x.dtype)

    def run_float(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The model's own call: float32 [n,1,h,w] in 0..1 -> float32 [n,1,sh,sw] (a new array)."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        try:
            out = request.infer({0: np.ascontiguousarray(x)})
        except Exception as exc:  # OpenVINO's own error types; a bug-free model never raises
            raise run_error(self.model_name, x, exc) from exc
        result: npt.NDArray[np.float32] = out[0]
        return result
