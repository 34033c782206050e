"""The networks that scripts/models/train.py trains, and their export to vsr's ONNX models.

ESPCN (the ONNX model zoo's Super Resolution card, Shi et al. 2016; `build_model`, optionally
deeper with identity-initialised layers, `init_from`) and the model family's ECBSR-style
network (`build_ecb`: edge-oriented multi-branch blocks merged at export into a plain stack
of 3x3 convs with a global residual). The export (`export_onnx`) writes the graph directly
with `onnx.helper`, so the file is the same whichever torch version trained it, and
`check_export` compares it with PyTorch. Shared by the training script and tests/test_train.py.

PyTorch and onnx are imported inside the functions (the `train` extra); a network is a
`torch.nn.Module`, typed `Any` here since PyTorch is optional (mypy skips it). Runs in the
caller's thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

#: A `torch.nn.Module` built here (PyTorch is optional, so not typed further).
Network = Any


def layer_names(extra: int) -> list[str]:
    """The convolutions in order: conv1, conv2, the extra 3x3x64 ones (conv2b, conv2c, ...),
    conv3, conv4. The names are the ONNX initializers' prefixes, so a model with extra
    layers can start from one without (`--init`)."""
    return ["conv1", "conv2", *(f"conv2{chr(ord('b') + i)}" for i in range(extra)), "conv3", "conv4"]


def build_model(scale: int, extra: int = 0) -> Network:
    """ESPCN at `scale`: conv 5x5x64, 3x3x64, `extra` more 3x3x64, 3x3x32, 3x3x(r*r), ReLU
    between them, pixel shuffle. Input and output are luma in 0..1, [N,1,H,W] -> [N,1,rH,rW]."""
    import torch
    from torch import nn

    class ESPCN(nn.Module):  # type: ignore[misc]  # nn.Module is Any to mypy
        def __init__(self, r: int) -> None:
            super().__init__()
            self.names = layer_names(extra)
            shapes = {"conv1": (1, 64, 5), "conv3": (64, 32, 3), "conv4": (32, r * r, 3)}
            for name in self.names:
                cin, cout, k = shapes.get(name, (64, 64, 3))
                setattr(self, name, nn.Conv2d(cin, cout, k, padding=k // 2))
            self.shuffle = nn.PixelShuffle(r)
            for name in self.names[:-1]:
                conv = getattr(self, name)
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                nn.init.zeros_(conv.bias)
            # A small last layer starts the network near a flat output; the bias of 0.5
            # starts it at mid-grey, where the loss surface is tame.
            nn.init.normal_(self.conv4.weight, std=1e-3)
            nn.init.constant_(self.conv4.bias, 0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for name in self.names[:-1]:
                x = torch.relu(getattr(self, name)(x))
            return self.shuffle(self.conv4(x))

    return ESPCN(scale)


def ecb_macs_per_pixel(
    scale: int, channels: int, blocks: int, refine: int = 0, refine_factor: int = 0
) -> int:
    """Conv MACs per LR pixel of the exported ECB model: head 1->C, `blocks` C->C, tail C->r*r,
    all 3x3 (what `vsr.model.cost.conv_macs_per_pixel` counts on the exported graph); with a
    refinement branch (`refine` channels at `refine_factor` x the input's resolution) also its
    LR conv C->f*f*K and its two convs at f x resolution, K->K and K->(r/f)^2, each counted
    f*f times per LR pixel."""
    macs = 9 * (channels + blocks * channels * channels + channels * scale * scale)
    if refine:
        f = refine_factor or scale
        macs += 9 * channels * f * f * refine + f * f * 9 * (refine * refine + refine * (scale // f) ** 2)
    return macs


def build_ecb(
    scale: int, channels: int = 16, blocks: int = 4, refine: int = 0, refine_factor: int = 0
) -> Network:
    """An ECBSR-style network (Zhang et al. 2021, "Edge-oriented Convolution Block for Real-time
    Super Resolution on Mobile Devices"), re-parameterised at export to a plain conv stack.

    Exported graph: Conv3x3 1->C, Relu, `blocks` x (Conv3x3 C->C, Relu), Conv3x3 C->r*r,
    Add(input) (broadcast [N,r*r,H,W] + [N,1,H,W]: a nearest-neighbour global residual),
    DepthToSpace(CRD). Why this shape:
    - Cost: every layer is a 3x3 conv at LR resolution, so cost per pixel is exactly
      9*(C + blocks*C*C + C*r*r) (`ecb_macs_per_pixel`), and it is what runs: no branches,
      no BatchNorm, nothing the runtime's uint8/float16 rewrite or int8 QDQ quantizer does not
      already handle for ESPCN (Conv, Relu, Add, DepthToSpace).
    - Quality per MAC: during training each conv is an Edge-oriented Conv Block, the sum of
      a 3x3 conv, a 1x1 (expand x2) -> 3x3 conv, 1x1 convs followed by fixed Sobel-x, Sobel-y
      and Laplacian filters with learned per-channel scales, and the identity (when Cin ==
      Cout). All branches are linear, so their sum IS one 3x3 conv (`ECB.merged`), but the
      over-parameterisation and the edge priors train better than a plain conv of the same
      cost (ECBSR's ablation: +0.2..0.4 dB at these sizes).
    - Relu, not ECBSR's PReLU: int8 quantization and fp16 treat Relu best (no negative
      slope to represent; onnxruntime fuses Conv+Relu).
    - The global residual (the input added to each of the r*r sub-pixel channels, i.e. the
      nearest-neighbour upscale) lets the network learn only the detail: deep plain stacks
      then train quickly and stably from a start that already outputs a sane picture (the
      tail starts near zero).

    Training forward uses the merged kernels (`forward` = a plain conv per block computed
    from the branch parameters, differentiably): the same function of the same parameters
    as the branch sum, hence the same gradients, at the cost of the exported network instead
    of ~3x that. `forward_branches` evaluates the branches one by one as ECBSR does (the
    1x1 branches' intermediate maps are padded with their bias, not zero, which is what makes
    the sum exactly one zero-padded 3x3 conv); the tests check the export against it.

    `refine` > 0 adds a refinement branch that works above the input's resolution: from the
    last body features, a 3x3 conv to f*f*K channels, DepthToSpace(f) (K channels at f x the
    input's resolution, f = `refine_factor`, default the scale), Relu, a 3x3 K->K block, Relu,
    a 3x3 conv to (r/f)^2 channels, DepthToSpace(r/f), added to the main output. Why: every
    layer of the plain network runs at LR, and the r*r sub-pixels of one LR pixel come out of
    one linear map (the tail) of its features; the branch gives the output pixels a
    non-linearity of their own, among their HR neighbours, for the budget the quality tier
    has left at x4. Its last conv starts near zero (like the tail), so a branch added to a
    trained network starts out computing that network's output.
    """
    import torch
    from torch import nn
    from torch.nn import functional as F

    sobel_x = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    sobel_y = sobel_x.t().contiguous()
    laplacian = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])

    class ECB(nn.Module):  # type: ignore[misc]  # nn.Module is Any to mypy
        def __init__(
            self, cin: int, cout: int, expand: int = 2, identity: bool = True, last: bool = False
        ) -> None:
            super().__init__()
            self.cin, self.cout = cin, cout
            self.identity = identity and cin == cout
            mid = expand * cout
            self.k3 = nn.Conv2d(cin, cout, 3)
            self.e1 = nn.Conv2d(cin, mid, 1)  # expand
            self.e3 = nn.Conv2d(mid, cout, 3)  # squeeze
            self.d1 = nn.Conv2d(cin, 3 * cout, 1)  # 1x1 in front of the three edge filters
            self.d_scale = nn.Parameter(torch.randn(3 * cout) * 1e-3)
            self.d_bias = nn.Parameter(torch.randn(3 * cout) * 1e-3)
            self.register_buffer("mask", torch.stack([sobel_x, sobel_y, laplacian]), persistent=False)
            if last:  # the tail starts near zero: the model starts as the nearest-neighbour upscale
                for p in (self.k3.weight, self.e3.weight):
                    nn.init.normal_(p, std=1e-3)
                for p in (self.k3.bias, self.e3.bias):
                    nn.init.zeros_(p)
                with torch.no_grad():
                    self.d_scale.mul_(1e-2)

        def _edge_kernels(self) -> torch.Tensor:
            # [3*cout, 1, 3, 3]: filter t of channel o is scale * mask[t]; order (t, o)
            m = self.mask.repeat_interleave(self.cout, dim=0)
            return (self.d_scale[:, None, None] * m)[:, None]

        def merged(self) -> tuple[torch.Tensor, torch.Tensor]:
            """(weight [cout, cin, 3, 3], bias [cout]) of the one conv equal to all branches."""
            w = self.k3.weight
            b = self.k3.bias
            # 1x1 (w1, b1) then 3x3 (w3, b3): W = w3 . w1 over the middle channels
            w1 = self.e1.weight[:, :, 0, 0]  # [mid, cin]
            w = w + torch.einsum("omhw,mi->oihw", self.e3.weight, w1)
            b = b + self.e3.bias + torch.einsum("omhw,m->o", self.e3.weight, self.e1.bias)
            # 1x1 (v, c) then per-channel edge filter k: W[o, i] = k[o] * v[o, i]
            k = self._edge_kernels()[:, 0]  # [3*cout, 3, 3]
            v = self.d1.weight[:, :, 0, 0]  # [3*cout, cin]
            we = k[:, None] * v[:, :, None, None]  # [3*cout, cin, 3, 3]
            be = self.d1.bias * k.sum((1, 2)) + self.d_bias
            w = w + we.view(3, self.cout, self.cin, 3, 3).sum(0)
            b = b + be.view(3, self.cout).sum(0)
            if self.identity:
                eye = torch.zeros_like(w)
                idx = torch.arange(self.cout)
                eye[idx, idx, 1, 1] = 1.0
                w = w + eye
            return w, b

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            w, b = self.merged()
            return F.conv2d(x, w, b, padding=1)

        def forward_branches(self, x: torch.Tensor) -> torch.Tensor:
            def bias_pad(y: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
                y = F.pad(y, (1, 1, 1, 1))
                border = torch.ones_like(y[:1])
                border[:, :, 1:-1, 1:-1] = 0
                return y + border * bias[None, :, None, None]

            out = self.k3(F.pad(x, (1, 1, 1, 1)))
            out = out + self.e3(bias_pad(self.e1(x), self.e1.bias))
            edges = F.conv2d(
                bias_pad(self.d1(x), self.d1.bias), self._edge_kernels(), self.d_bias, groups=3 * self.cout
            )
            out = out + edges.view(x.shape[0], 3, self.cout, *edges.shape[2:]).sum(1)
            if self.identity:
                out = out + x
            return out

    f = refine_factor or scale
    if refine and (f < 2 or scale % f):
        raise ValueError(f"refine factor {f} must be at least 2 and divide the scale {scale}")

    class ECBNet(nn.Module):  # type: ignore[misc]  # nn.Module is Any to mypy
        def __init__(self, r: int) -> None:
            super().__init__()
            self.scale, self.channels, self.blocks = r, channels, blocks
            self.refine, self.refine_factor = refine, f if refine else 0
            self.names = ["head", *(f"body{i + 1}" for i in range(blocks)), "tail"]
            self.head = ECB(1, channels)
            for name in self.names[1:-1]:
                setattr(self, name, ECB(channels, channels))
            self.tail = ECB(channels, r * r, last=True)
            self.shuffle = nn.PixelShuffle(r)
            # the refinement branch (not in `names`: those are the main path, in order)
            self.refine_names = ["refine_up", "refine_mid", "refine_out"] if refine else []
            if refine:
                self.refine_up = ECB(channels, f * f * refine)
                self.refine_mid = ECB(refine, refine)
                self.refine_out = ECB(refine, (r // f) ** 2, identity=False, last=True)
                self.refine_shuffle = nn.PixelShuffle(f)
                self.refine_shuffle_out = nn.PixelShuffle(r // f)

        def forward(self, x: torch.Tensor, branches: bool = False, bf16: bool = False) -> torch.Tensor:
            """`bf16`: every convolution's input (and the residual's) rounded to bfloat16, as
            OpenVINO's bf16 inference stores them between layers (float32 accumulation), with
            the gradient passed straight through: what `train.py --bf16-consistency`
            compares with the float32 output."""

            def run(name: str, t: torch.Tensor) -> torch.Tensor:
                block = getattr(self, name)
                if bf16:
                    t = t + (t.to(torch.bfloat16).float() - t).detach()
                return block.forward_branches(t) if branches else block(t)

            if bf16:
                x = x + (x.to(torch.bfloat16).float() - x).detach()
            y = x
            for name in self.names[:-1]:
                y = torch.relu(run(name, y))
            out = self.shuffle(run("tail", y) + x)  # x broadcasts over the r*r channels
            if not self.refine:
                return out
            z = torch.relu(self.refine_shuffle(run("refine_up", y)))
            z = run("refine_out", torch.relu(run("refine_mid", z)))
            return out + self.refine_shuffle_out(z)

        def export_layers(self) -> list[tuple[str, npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
            """(name, weight, bias) of each plain 3x3 conv, the main path in order, then the
            refinement branch's (float32 numpy)."""
            with torch.no_grad():
                return [
                    (
                        name,
                        *(t.detach().cpu().numpy().astype(np.float32) for t in getattr(self, name).merged()),
                    )
                    for name in [*self.names, *self.refine_names]
                ]

    return ECBNet(scale)


def init_from(model: Network, path: Path) -> list[str]:
    """Copy the weights of an exported vsr ESPCN model into `model` wherever the names and
    shapes match; extra 3x3x64 layers it lacks start as the identity (a centred one-hot
    kernel, zero bias), which passes the ReLU output before it through unchanged, so the
    deeper network starts out computing exactly what the given model computes."""
    import onnx
    import torch
    from onnx import numpy_helper

    weights = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    copied = []
    with torch.no_grad():
        for name, param in model.named_parameters():
            w = weights.get(name)
            if w is not None and tuple(w.shape) == tuple(param.shape):
                param.copy_(torch.from_numpy(np.array(w, np.float32)))
                copied.append(name)
            elif w is None and name.endswith(".weight") and tuple(param.shape) == (64, 64, 3, 3):
                param.zero_()
                for c in range(64):
                    param[c, c, 1, 1] = 1.0
            elif name.endswith(".bias") and w is None:
                param.zero_()
            else:
                raise SystemExit(f"--init {path}: no weights for {name} {tuple(param.shape)}")
    return copied


def init_from_checkpoint(model: Network, path: Path) -> list[str]:
    """Copy a training checkpoint's tensors into `model` wherever the names and shapes match.

    Why: the quality tier is one network shape at every scale except its tail (r*r output
    channels), so an x2 or x4 run can start from the x3 run's head and body, which already
    know natural-image detail, and spend its steps on what differs (a known trick: EDSR and
    RCAN train x3/x4 from x2). The rest (the tail) keeps its fresh initialisation, which
    starts the network as the nearest-neighbour upscale. Nothing is copied silently across
    shapes: a checkpoint sharing no tensor with `model` is refused.

    A body block the checkpoint lacks entirely (a deeper network than the one it saved) starts
    as the identity: its 3x3 and squeeze weights zero, its edge scales near zero, so the merged
    conv is the identity branch alone, which passes the ReLU output before it unchanged. The
    deeper network then starts out computing exactly what the checkpoint's network computed
    (as `init_from` does for ESPCN), instead of having random blocks in front of a trained
    tail undo what the checkpoint learned."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)["model"]
    copied = []
    with torch.no_grad():
        for name, param in model.named_parameters():
            w = state.get(name)
            if w is not None and tuple(w.shape) == tuple(param.shape):
                param.copy_(w)
                copied.append(name)
        saved_blocks = {key.split(".")[0] for key in state}
        missing = [b for b in getattr(model, "names", [])[1:-1] if b not in saved_blocks]
        if any(b.startswith("body") for b in saved_blocks):
            for block in missing:
                _silence(getattr(model, block))
    if not copied:
        raise SystemExit(f"--init {path}: no tensor of this network's shape in the checkpoint")
    return copied


def _silence(ecb: Any) -> None:
    """Every branch of an ECB block but the identity set to (almost) nothing: its 3x3 and
    squeeze weights zero, its edge scales near zero (not zero, so that they still get
    gradients). The merged conv is then the identity alone (or zero, without one)."""
    for t in (ecb.k3.weight, ecb.k3.bias, ecb.e3.weight, ecb.e3.bias, ecb.d_bias):
        t.zero_()
    ecb.d_scale.mul_(1e-3)


def init_ecb_from_onnx(model: Network, path: Path) -> list[str]:
    """Start an ECB network from an exported one: each merged 3x3 conv of the file becomes
    its block's plain 3x3 branch (less the identity, which the block adds itself), and the
    other branches start silent (squeeze weights zero, edge scales near zero), so the network
    starts out computing what the file computes.

    Why: a shipped model is the record that lasts (training checkpoints live outside the
    repository and are lost with the machine), so a later fine-tune, say on more varied
    data, must be able to start from the model itself. The silent branches then train from
    there as they would from a fresh start. Blocks the file lacks (a deeper network) start as
    the identity, as in `init_from_checkpoint`."""
    import onnx
    import torch
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}

    def weights(n: Any) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        return np.array(inits[n.input[1]], np.float32), np.array(inits[n.input[2]], np.float32)

    # the refinement branch's convs are named; a network without the branch refuses them
    branch = {n.name: weights(n) for n in graph.node if n.op_type == "Conv" and n.name.startswith("refine_")}
    convs = [weights(n) for n in graph.node if n.op_type == "Conv" and n.name not in branch]
    names: list[str] = list(getattr(model, "names", []))
    refine_names: list[str] = list(getattr(model, "refine_names", []))
    if len(convs) < 2 or len(convs) > len(names):
        raise SystemExit(f"--init {path}: {len(convs)} convolutions, this network has {len(names)}")
    if branch and set(branch) != set(refine_names):
        raise SystemExit(
            f"--init {path}: the file has a refinement branch this network lacks "
            "(pass the --refine settings it was trained with)"
        )
    # the file's head and body fill this network's first blocks; its tail is this tail
    pairs = [*zip(names[: len(convs) - 1], convs[:-1], strict=True), (names[-1], convs[-1]), *branch.items()]
    copied = []
    with torch.no_grad():
        for name in [*names, *(refine_names if branch else [])]:
            _silence(getattr(model, name))
        for name, (w, b) in pairs:
            ecb = getattr(model, name)
            if tuple(ecb.k3.weight.shape) != w.shape:
                raise SystemExit(
                    f"--init {path}: {name} is {w.shape} there, {tuple(ecb.k3.weight.shape)} here"
                )
            wt = torch.from_numpy(w.copy())
            if ecb.identity:
                idx = torch.arange(ecb.cout)
                wt[idx, idx, 1, 1] -= 1.0
            ecb.k3.weight.copy_(wt)
            ecb.k3.bias.copy_(torch.from_numpy(b))
            copied += [f"{name}.k3.weight", f"{name}.k3.bias"]
    return copied


def export_onnx(model: Network, scale: int, out: Path, metadata: dict[str, str]) -> None:
    """Write the model as a plain graph with dynamic batch/height/width: ESPCN's Conv/Relu
    chain and DepthToSpace; an ECB model's merged 3x3 convs, then its global residual Add (and
    its refinement branch, from the last Relu to an Add after the DepthToSpace)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    residual = hasattr(model, "export_layers")
    if residual:
        sd = {}
        for name, w, b in model.export_layers():
            sd[f"{name}.weight"], sd[f"{name}.bias"] = w, b
    else:
        sd = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    inits = [numpy_helper.from_array(sd[k], name=k) for k in sd]
    nodes = []

    def conv(name: str, x: str) -> str:
        pad = sd[f"{name}.weight"].shape[2] // 2
        nodes.append(
            helper.make_node(
                "Conv",
                [x, f"{name}.weight", f"{name}.bias"],
                [f"{name}_out"],
                pads=[pad] * 4,
                kernel_shape=[2 * pad + 1] * 2,
                name=name,
            )
        )
        return f"{name}_out"

    def relu(name: str, x: str) -> str:
        nodes.append(helper.make_node("Relu", [x], [f"{name}_out"], name=name))
        return f"{name}_out"

    def shuffle(name: str, x: str, r: int, y: str) -> str:
        nodes.append(helper.make_node("DepthToSpace", [x], [y], blocksize=r, mode="CRD", name=name))
        return y

    x = "input"
    names = model.names
    for name in names[:-1]:
        x = relu(f"relu_{name}" if residual else "relu" + name.removeprefix("conv"), conv(name, x))
    features = x
    x = conv(names[-1], x)
    refine = getattr(model, "refine", 0)
    if residual:  # [N,r*r,H,W] + [N,1,H,W]: the nearest-neighbour upscale of the input
        nodes.append(helper.make_node("Add", [x, "input"], ["residual_out"], name="residual"))
        x = "residual_out"
    shuffle("pixel_shuffle", x, scale, "main_out" if refine else "output")
    if refine:  # the refinement branch, from the last body features, added at HR
        f = model.refine_factor
        z = relu("relu_refine_up", shuffle("refine_shuffle", conv("refine_up", features), f, "refine_hr"))
        z = conv("refine_out", relu("relu_refine_mid", conv("refine_mid", z)))
        if scale // f > 1:
            z = shuffle("refine_shuffle_out", z, scale // f, "refine_shuffle_out_out")
        nodes.append(helper.make_node("Add", ["main_out", z], ["output"], name="refine_add"))
    graph = helper.make_graph(
        nodes,
        "ecbsr" if residual else "espcn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, "height", "width"])],
        [
            helper.make_tensor_value_info(
                "output", TensorProto.FLOAT, ["batch", 1, f"height*{scale}", f"width*{scale}"]
            )
        ],
        inits,
    )
    m = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="vsr scripts/models/train.py"
    )
    m.ir_version = 8
    helper.set_model_props(m, metadata)
    onnx.checker.check_model(m)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".onnx.tmp")
    onnx.save(m, str(tmp))
    tmp.replace(out)


def check_export(model: Network, out: Path) -> float:
    """Largest |ONNX - PyTorch| on a random odd-sized batch; raises if not ~equal. An ECB
    model is compared in its multi-branch form, so this also checks the re-parameterisation."""
    import onnxruntime as ort
    import torch

    x = np.random.default_rng(0).random((2, 1, 37, 53), dtype=np.float32)
    model = model.cpu()
    with torch.no_grad():
        t = torch.from_numpy(x)
        ref = (model(t, branches=True) if hasattr(model, "export_layers") else model(t)).numpy()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0]
    err = float(np.abs(got - ref).max())
    if got.shape != ref.shape or err > 1e-4:
        raise SystemExit(f"ONNX export differs from PyTorch: shape {got.shape} vs {ref.shape}, max err {err}")
    return err
