"""Integer models: what arithmetic a model file uses, and whether this CPU runs it exactly.

Why this module exists: onnxruntime's int8 convolutions on x86 CPUs without VNNI (AVX2 and
plain AVX-512) multiply uint8 activations by int8 weights with `vpmaddubsw`, which adds each
pair of neighbouring products into a *saturating* int16. With full-range weights a pair can
reach 2 x 255 x 128 = 65280 and is clipped to 32767: the output is wrong, silently, and only
on those CPUs (the first int8 ESPCN lost 0.6 dB on Set5 there and nothing on a VNNI machine).
Weights kept within 7 bits (|q| <= 64, onnxruntime's `reduce_range`) bound a pair by
2 x 255 x 64 = 32640, so it cannot saturate. VNNI (`vpdpbusd`) sums into int32, and ARM64's
kernels widen to 16 bits before adding, so neither is affected.

vsr's own int8 models are quantized within 7 bits (scripts/models/quantize.py). For any other int8
model, `load()` asks `saturation_risk()`; where the CPU would clip, a bundled model falls
back to its float version and any other model gets one warning.

Reading the graph needs the `onnx` package (in the `cpu` and `gpu` extras); without it the
model's `vsr.precision` metadata is all there is to go by.
"""

from __future__ import annotations

from pathlib import Path

from . import cpu
from .cpu import VNNI_FLAGS

#: The largest |int8 weight| whose pair of products with uint8 activations fits in int16.
SAFE_WEIGHT = 64
_QUANT_OPS = frozenset(
    {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul"}
)


def _may_be_integer(path: Path) -> bool:
    """False when the file names no integer operator: op types are stored as plain strings,
    so a float model needs no parsing (importing `onnx` alone takes 0.1-0.2 s a run)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False  # unreadable: the loader says so in its own words
    return any(op.encode() in data for op in _QUANT_OPS)


def file_precision(path: Path, metadata: dict[str, str] | None = None) -> str:
    """What a model file stores: "int8" for a quantized model (QDQ or integer operators),
    else "fp32". (`vsr.model.load.precision_of` says what a loaded model computes in, which
    may differ: an fp32 file can run in bf16 or fp16.)"""
    if not _may_be_integer(path):
        return "fp32"
    try:
        import onnx
    except ImportError:
        return "int8" if (metadata or {}).get("vsr.precision", "").startswith("int8") else "fp32"
    model = onnx.load(str(path), load_external_data=False)
    return "int8" if {n.op_type for n in model.graph.node} & _QUANT_OPS else "fp32"


def saturating_weights(path: Path) -> list[str]:
    """Names of int8 weights that a non-VNNI x86 CPU can saturate on: those with
    |q| > SAFE_WEIGHT multiplied by integer activations, and float convolution weights
    between a DequantizeLinear and a QuantizeLinear (onnxruntime fuses such a node into a
    QLinearConv with weights it quantizes itself, to the full range: a shipped int8 model
    differed by up to 57 grey levels under AVX2 that way). int8 activations are no safer than
    uint8 ones: onnxruntime shifts them to uint8 and runs the same kernel there (measured:
    S8S8 lost the same 0.6 dB as U8S8). Empty for float models, models quantized within 7
    bits, uint8 weights, weight-only quantization (float arithmetic), and when `onnx` is not
    installed or cannot parse the file (nothing can be read then: onnxruntime, which loads the
    model next, says what is wrong with it in the words the user gets for any bad model)."""
    if not _may_be_integer(path):
        return []
    try:
        import onnx
        from google.protobuf.message import DecodeError
        from onnx import TensorProto, numpy_helper
    except ImportError:
        return []
    import numpy as np

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except (DecodeError, OSError, ValueError):  # not a model (or not readable): not ours to judge
        return []
    inits = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}

    def weight_init(name: str) -> onnx.TensorProto | None:
        node = producer.get(name)
        if node is not None and node.op_type == "DequantizeLinear":
            name = node.input[0]
        return inits.get(name)

    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def quantized_after(name: str) -> bool:
        """Whether `name` (through at most one Relu) goes into a QuantizeLinear."""
        for node in consumers.get(name, []):
            if node.op_type == "QuantizeLinear" or (
                node.op_type == "Relu"
                and any(c.op_type == "QuantizeLinear" for c in consumers.get(node.output[0], []))
            ):
                return True
        return False

    risky = []
    for node in graph.node:
        if node.op_type == "Conv" and len(node.input) > 1:
            init, x_node = inits.get(node.input[1]), producer.get(node.input[0])
            if (
                init is not None
                and init.data_type == TensorProto.FLOAT
                and x_node is not None
                and x_node.op_type == "DequantizeLinear"
                and quantized_after(node.output[0])
            ):
                # Float weights between integer activations: onnxruntime fuses the node into a
                # QLinearConv and quantizes these weights itself, to the full int8 range.
                risky.append(init.name)
                continue
        if node.op_type in ("Conv", "MatMul", "Gemm"):
            x, w = node.input[0], node.input[1]
        elif node.op_type in ("QLinearConv", "QLinearMatMul"):
            x, w = node.input[0], node.input[3]
        elif node.op_type in ("ConvInteger", "MatMulInteger"):
            x, w = node.input[0], node.input[1]
        else:
            continue
        init = weight_init(w)
        x_node = producer.get(x)
        integer_input = node.op_type not in ("Conv", "MatMul", "Gemm") or (
            x_node is not None and x_node.op_type == "DequantizeLinear"
        )
        if init is None or init.data_type != TensorProto.INT8 or not integer_input:
            continue
        if int(np.abs(numpy_helper.to_array(init).astype(np.int16)).max()) > SAFE_WEIGHT:
            risky.append(init.name)
    return risky


def cpu_saturates_u8s8(flags: set[str] | frozenset[str] | None = None, machine: str | None = None) -> bool:
    """Whether onnxruntime's uint8 x int8 kernels on this CPU sum products in int16.

    Args:
        flags: the CPU's feature flags (default: this CPU's, `vsr.model.cpu.flags`).
        machine: `platform.machine()` (default: this one's).

    True on x86 without VNNI; True as well on x86 whose flags cannot be read (assuming the
    worst costs only speed); False on ARM64 and other architectures.
    """
    if not cpu.is_x86(machine):
        return False
    if flags is None:
        flags = cpu.flags()
        if flags is None:
            return True
    return not (flags & VNNI_FLAGS)
