"""The two engines that make one onnxruntime call, and how their sessions are created.

Constructed in the main thread by `model.OnnxUpscaler` (session creation holds the GIL and can
fail before any thread starts), then called from the model stage's thread; `run()` and
`run_with_iobinding()` release the GIL, so decoding and encoding overlap with them.

- `PlainEngine` runs the model as it is: float32 0..1 planes through `session.run()`,
  converted from and to uint8 (uint16 for high bit depth) on the host.
- `BoundEngine` runs the model rewritten by `vsr.model.graph` to take and return uint8 (float16
  inside when asked) through I/O binding: the batch goes to the device as uint8, the
  conversions run there, and the result lands directly in the array that is handed on, so
  nothing float ever crosses PCIe or the GIL. High bit depth frames go to a plain engine of
  the original model, made on first use.

Both give identical pixels at float32 (tests/test_model.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ModelError, ModelRunError, ProviderUnavailable
from ..options import Device

log = logging.getLogger(__name__)

#: CUDA execution provider options unless the caller gives its own. Channels-last
#: convolutions: 1564 against 1237 fps at 640x360 and 390 against 314 at 1280x720 on an H100
#: (float16, bound engine, scripts/bench/model_fps.py), the same pixels within rounding.
CUDA_OPTIONS = {"prefer_nhwc": "1"}


def providers_for(device: Device, available: list[str]) -> list[str]:
    """The provider list to ask onnxruntime for."""
    if device is Device.CPU:
        return ["CPUExecutionProvider"]
    if device is Device.CUDA:
        if "CUDAExecutionProvider" not in available:
            raise ProviderUnavailable(
                f"CUDA requested but onnxruntime offers only {available}",
                hint="pip install 'vsr[gpu]' (onnxruntime-gpu matching your CUDA/cuDNN) "
                "in place of 'vsr[cpu]', or pass --device cpu",
            )
        return ["CUDAExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def with_options(providers: list[str], options: dict[str, str] | None) -> list[Any]:
    """The provider list with CUDA's options attached (None: `CUDA_OPTIONS`)."""
    options = CUDA_OPTIONS if options is None else options
    return [(p, dict(options)) if options and p == "CUDAExecutionProvider" else p for p in providers]


def load_session(ort: ModuleType, model: str | bytes, so: Any, providers: list[Any], path: str) -> Any:
    """An onnxruntime session of `model` (a path, or serialized bytes of the model at `path`).

    Raises:
        ModelError: onnxruntime cannot load it.
    """
    try:
        return ort.InferenceSession(model, so, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        if any(isinstance(p, tuple) for p in providers):
            # An onnxruntime-gpu that does not know an option: run without the options.
            log.info("retrying without CUDA provider options: %s", first_line(exc))
            return load_session(
                ort, model, so, [p[0] if isinstance(p, tuple) else p for p in providers], path
            )
        raise ModelError(
            f"cannot load model '{path}': {first_line(exc)}",
            hint="the file must be an ONNX model (see 'vsr models')",
        ) from exc


class PlainEngine:
    """The model as it is, through `session.run()` on float32 0..1 planes.

    Args:
        session: a session of the original model ([N,1,H,W] float32 in and out).
        name: the model's file name, for error messages.
        precision: its arithmetic: "fp32", or "int8" for a quantized model.
    """

    name = "plain"

    def __init__(self, session: Any, name: str, precision: str) -> None:
        self.session = session
        self.model_name = name
        self.precision = precision
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name

    def run(self, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """uint8 [n,1,h,w] -> uint8 [n,1,sh,sw]; uint16 (0..65535: high bit depth luma,
        never rounded to 8 bits) -> uint16 likewise."""
        try:
            result: npt.NDArray[np.float32] = self.session.run(
                [self.output_name], {self.input_name: to_unit(x)}
            )[0]
        except Exception as exc:  # onnxruntime's own error types; a bug-free model never raises
            raise run_error(self.model_name, x, exc) from exc
        return to_codes(result, x.dtype)


class BoundEngine:
    """The model rewritten to uint8 in and out (`vsr.model.graph.uint8_io`), through I/O binding.

    Args:
        session: a session of the rewritten model.
        name: the model's file name, for error messages.
        scale: the model's scale (the output array is allocated before the call).
        precision: its arithmetic inside: "fp16", "fp32" or "int8".
        io_names: the rewritten graph's (input, output) names.
        float_engine: makes the plain engine of the original model, for high bit depth
            frames; called once, on the first such frame.
    """

    name = "bound"

    def __init__(
        self,
        session: Any,
        name: str,
        scale: int,
        precision: str,
        io_names: tuple[str, str],
        float_engine: Callable[[], PlainEngine],
    ) -> None:
        self.session = session
        self.model_name = name
        self.scale = scale
        self.precision = precision
        self.input_name, self.output_name = io_names
        # One I/O binding per calling thread: a binding holds the shapes of the call it was
        # last bound for, and scale-out's segments call one upscaler from several threads at
        # once (a shared binding mixed their batches up: "Tensor size mismatch").
        self._local = threading.local()
        self._make_float = float_engine
        self._float: PlainEngine | None = None
        self._float_lock = threading.Lock()

    def run(self, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """uint8 [n,1,h,w] -> uint8 [n,1,sh,sw]; uint16 through the original float graph."""
        if x.dtype == np.uint16:
            with self._float_lock:
                if self._float is None:
                    self._float = self._make_float()
                    log.info("high bit depth frames: model %s runs its float32 graph", self.model_name)
            return self._float.run(x)
        n, _, h, w = x.shape
        out = np.empty((n, 1, h * self.scale, w * self.scale), np.uint8)
        binding = getattr(self._local, "binding", None)
        if binding is None:
            binding = self._local.binding = self.session.io_binding()
        try:
            binding.bind_cpu_input(self.input_name, np.ascontiguousarray(x))
            binding.bind_output(self.output_name, "cpu", 0, np.uint8, out.shape, out.ctypes.data)
            self.session.run_with_iobinding(binding)
        except Exception as exc:  # onnxruntime's own error types; a bug-free model never raises
            raise run_error(self.model_name, x, exc) from exc
        return out


def run_error(name: str, x: npt.NDArray[Any], exc: BaseException) -> ModelRunError:
    return ModelRunError(
        f"model '{name}' failed on a [{', '.join(map(str, x.shape))}] batch: {first_line(exc)}"
    )


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (onnxruntime's run on for pages)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def to_unit(x: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """uint8 codes (uint16 for high bit depth) -> float32 0..1, what the model takes."""
    xf = x.astype(np.float32)
    xf *= 1.0 / (65535.0 if x.dtype == np.uint16 else 255.0)
    return xf


def to_codes(x: npt.NDArray[np.float32], dtype: Any) -> npt.NDArray[Any]:
    """The model's 0..1 floats -> codes of `dtype` (uint8, or uint16 0..65535 for high bit
    depth): scaled, clipped and rounded in place when `x` is the model's own output, used once."""
    top = 65535.0 if dtype == np.uint16 else 255.0
    if not x.flags.writeable or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x, dtype=np.float32)
    x *= top
    np.clip(x, 0.0, top, out=x)
    return np.rint(x, out=x).astype(dtype)
