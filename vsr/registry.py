"""Bundled models: where they live, how a name or `--scale` maps to a file, what each claims.

Models are looked up in `$VSR_MODELS` (if set), the checkout's `models/` folder (editable
installs and source trees), and `<prefix>/share/vsr/models` (wheel installs), in that order.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError

DEFAULT_SCALE = 3


def model_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("VSR_MODELS"):
        dirs.append(Path(os.environ["VSR_MODELS"]))
    dirs.append(Path(__file__).resolve().parent.parent / "models")
    dirs.append(Path(sys.prefix) / "share" / "vsr" / "models")
    return dirs


@dataclass(frozen=True)
class BundledModel:
    """One bundled .onnx file and what its metadata says about it."""

    name: str
    path: Path
    scale: int
    parameters: int
    degradation: str
    psnr: dict[str, float]
    precision: str  # "fp32" or "int8"


def bundled_models() -> list[BundledModel]:
    """All bundled models, first directory wins on name clashes, sorted by name."""
    found: dict[str, BundledModel] = {}
    for d in model_dirs():
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.onnx")):
            if path.stem not in found:
                found[path.stem] = _describe(path)
    return sorted(found.values(), key=lambda m: m.name)


def _describe(path: Path) -> BundledModel:
    meta = read_metadata(path)
    psnr = json.loads(meta.get("vsr.psnr", "{}") or "{}")
    from .quant import precision_of

    return BundledModel(path.stem, path, int(meta.get("vsr.scale", "0") or 0),
                        int(meta.get("vsr.parameters", "0") or 0),
                        meta.get("vsr.degradation", "?"), psnr, precision_of(path, meta))


def read_metadata(path: Path) -> dict[str, str]:
    """The model's custom metadata (empty when the file cannot be read)."""
    from .model import import_onnxruntime

    ort = import_onnxruntime()
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return dict(sess.get_modelmeta().custom_metadata_map)
    except Exception:  # noqa: BLE001 - a broken file is listed, and fails when used
        return {}


def resolve(model: str | None, scale: int | None) -> Path:
    """The model file for `--model` (path or bundled name) and/or `--scale`.

    Raises:
        ModelError: no such file or bundled name, or no bundled model for that scale.
    """
    if model is not None:
        p = Path(model).expanduser()
        if p.suffix.lower() == ".onnx" or os.sep in model or p.exists():
            if not p.is_file():
                raise ModelError(f"cannot open model {model!r}: no such file",
                                 hint="pass a path to an .onnx file or a name from 'vsr models'")
            return p
        for d in model_dirs():
            cand = d / f"{model}.onnx"
            if cand.is_file():
                return cand
        names = ", ".join(m.name for m in bundled_models()) or "none found"
        raise ModelError(f"unknown model {model!r}", hint=f"bundled models: {names}; or pass a path to an .onnx file")
    want = scale or DEFAULT_SCALE
    for d in model_dirs():
        cand = d / f"espcn_x{want}.onnx"
        if cand.is_file():
            return cand
    raise ModelError(f"no bundled model for scale {want}",
                     hint="pass --model PATH, or reinstall vsr so that its models/ folder is present")
