"""Variants of an ESPCN ONNX model for the model-stage experiments (scripts/model_fps.py).

These are built in memory from the bundled float model, not shipped: which of them the
pipeline adopts is for the GPU measurements to decide (README "Performance").

- `uint8_io`: the uint8 -> float/255 conversion before the network and the x255, clip, round,
  uint8 conversion after it move inside the graph. Bit-identical to vsr's numpy conversions
  (same float32 operations; ONNX Round and numpy rint both round half to even); on a GPU they
  run on the device and 4x fewer bytes cross PCIe.
- `fp16`: weights and activations in float16 (with `uint8_io` around them), for tensor cores.

Needs the `onnx` package (in the test and train extras), never vsr at run time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def uint8_io(path: str | Path, fp16: bool = False) -> bytes:
    """The model at `path` with uint8 [N,1,H,W] in and uint8 [N,1,rH,rW] out."""
    m = onnx.load(str(path))
    g = m.graph
    if len(g.input) != 1 or len(g.output) != 1:
        raise ValueError("expected one input and one output")
    fin, fout = g.input[0], g.output[0]
    ftype = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    npdt = np.float16 if fp16 else np.float32
    if fp16:
        for init in g.initializer:
            if init.data_type == TensorProto.FLOAT:
                init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16),
                                                      init.name))
        del g.value_info[:]  # stale float32 annotations; onnxruntime infers the rest

    def dims(vi: onnx.ValueInfoProto) -> list[object]:
        return [d.dim_param or d.dim_value or None for d in vi.type.tensor_type.shape.dim]

    g.initializer.extend([
        numpy_helper.from_array(np.array(1.0 / 255.0, npdt), "vsr_k_in"),
        numpy_helper.from_array(np.array(255.0, npdt), "vsr_k_out"),
        numpy_helper.from_array(np.array(0.0, npdt), "vsr_lo"),
        numpy_helper.from_array(np.array(255.0, npdt), "vsr_hi"),
    ])
    pre = [helper.make_node("Cast", ["luma_u8"], ["vsr_x"], to=ftype),
           helper.make_node("Mul", ["vsr_x", "vsr_k_in"], [fin.name])]
    post = [helper.make_node("Mul", [fout.name, "vsr_k_out"], ["vsr_scaled"]),
            helper.make_node("Clip", ["vsr_scaled", "vsr_lo", "vsr_hi"], ["vsr_clipped"]),
            helper.make_node("Round", ["vsr_clipped"], ["vsr_rounded"]),
            helper.make_node("Cast", ["vsr_rounded"], ["luma_out_u8"], to=TensorProto.UINT8)]
    nodes = [*pre, *g.node, *post]
    del g.node[:]
    g.node.extend(nodes)
    new_in = helper.make_tensor_value_info("luma_u8", TensorProto.UINT8, dims(fin))
    new_out = helper.make_tensor_value_info("luma_out_u8", TensorProto.UINT8, dims(fout))
    del g.input[:]
    g.input.extend([new_in])
    del g.output[:]
    g.output.extend([new_out])
    onnx.checker.check_model(m)
    return bytes(m.SerializeToString())
