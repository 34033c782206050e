"""ONNX graph rewrites for the GPU engine: uint8 in and out, and float16 inside.

On a GPU the network is cheap and what surrounds it is not: float32 frames are 4x the bytes
of uint8 over PCIe, and the x255 / clip / round / cast after the network is several passes
over every output pixel on the host. Moving both conversions into the graph runs them on the
device, next to the network, with results bit-identical to `vsr.model.engines.to_codes` (the same
float32 operations; ONNX Round and numpy's rint both round half to even).

float16 weights and activations double the tensor-core rate and halve activation traffic;
its cost in quality is measured (README "Performance"), not assumed.

Needs the `onnx` package (in the `gpu` extra); the model module falls back to its plain
float engine without it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, version_converter

INPUT = "vsr_luma_u8"
OUTPUT = "vsr_luma_out_u8"


def is_quantized(model: onnx.ModelProto) -> bool:
    """True for QDQ / integer models, whose arithmetic float16 must not touch."""
    ops = {n.op_type for n in model.graph.node}
    return bool(ops & {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger"})


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def uint8_io(data: bytes, fp16: bool = False) -> tuple[bytes, bool]:
    """The serialized model `data` with uint8 [N,1,H,W] in (`INPUT`) and out (`OUTPUT`),
    and whether it computes in float16.

    Args:
        data: a float32-in, float32-out super-resolution model (0..1 luma).
        fp16: also convert its float32 weights and arithmetic to float16. Ignored (float32
            kept) for quantized models.

    Raises:
        ValueError: the graph does not have exactly one input and one output.
    """
    m = onnx.load_from_string(data)
    if _opset(m) < 11:  # Round, and Clip with tensor bounds, need opset 11
        m = version_converter.convert_version(m, 13)
    g = m.graph
    if len(g.input) != 1 or len(g.output) != 1:
        raise ValueError("expected one input and one output")
    fin, fout = g.input[0], g.output[0]
    fp16 = fp16 and not is_quantized(m)
    ftype = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    npdt = np.float16 if fp16 else np.float32
    if fp16:
        for init in g.initializer:
            if init.data_type == TensorProto.FLOAT:
                init.CopyFrom(
                    numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name)
                )
        del g.value_info[:]  # stale float32 annotations; onnxruntime infers the rest

    def dims(vi: onnx.ValueInfoProto) -> list[str | int | None]:
        return [d.dim_param or d.dim_value or None for d in vi.type.tensor_type.shape.dim]

    g.initializer.extend(
        [
            numpy_helper.from_array(np.array(1.0 / 255.0, npdt), "vsr_k_in"),
            numpy_helper.from_array(np.array(255.0, npdt), "vsr_k_out"),
            numpy_helper.from_array(np.array(0.0, npdt), "vsr_lo"),
            numpy_helper.from_array(np.array(255.0, npdt), "vsr_hi"),
        ]
    )
    pre = [
        helper.make_node("Cast", [INPUT], ["vsr_x"], to=ftype),
        helper.make_node("Mul", ["vsr_x", "vsr_k_in"], [fin.name]),
    ]
    post = [
        helper.make_node("Mul", [fout.name, "vsr_k_out"], ["vsr_scaled"]),
        helper.make_node("Clip", ["vsr_scaled", "vsr_lo", "vsr_hi"], ["vsr_clipped"]),
        helper.make_node("Round", ["vsr_clipped"], ["vsr_rounded"]),
        helper.make_node("Cast", ["vsr_rounded"], [OUTPUT], to=TensorProto.UINT8),
    ]
    nodes = [*pre, *g.node, *post]
    del g.node[:]
    g.node.extend(nodes)
    new_in = helper.make_tensor_value_info(INPUT, TensorProto.UINT8, dims(fin))
    new_out = helper.make_tensor_value_info(OUTPUT, TensorProto.UINT8, dims(fout))
    del g.input[:]
    g.input.extend([new_in])
    del g.output[:]
    g.output.extend([new_out])
    onnx.checker.check_model(m)
    return bytes(m.SerializeToString()), fp16
