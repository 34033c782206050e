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

from ..errors import ModelError
from ..paths import MODELS

DEFAULT_SCALE = 3
#: Speed/quality tiers, cheapest first. "balanced" costs what the model card's ESPCN (espcn_xN)
#: costs: balanced_xN where one beats it at that cost, espcn_xN elsewhere; "fast" costs at most
#: a quarter of it, "quality" at most 16 times (README "Models"). The file a tier picks at xN
#: is named TIER_xN (espcn_xN for balanced when there is no balanced_xN).
TIERS = ("fast", "balanced", "quality")
DEFAULT_TIER = "balanced"
#: What a model was trained to undo (metadata `vsr.degradation`): "clean" (the protocol's
#: bicubic downscale) or "video" (blur, noise and compression too: the *_video models, for
#: input an encoder has already damaged). `--degrade` picks by it.
DEGRADATIONS = ("clean", "video")
DEFAULT_DEGRADATION = "clean"


def model_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("VSR_MODELS"):
        dirs.append(Path(os.environ["VSR_MODELS"]))
    dirs.append(MODELS)
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
    tier: str = "balanced"  # "fast", "balanced" or "quality" (see TIERS)
    macs_per_pixel: float = 0.0  # Conv multiply-accumulates per input pixel (0: unknown)


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
    from .quant import file_precision

    macs = float(meta.get("vsr.macs_per_pixel", "0") or 0)
    if not macs:
        try:
            from .cost import conv_macs_per_pixel

            macs = conv_macs_per_pixel(path)
        except (ImportError, ValueError):
            macs = 0.0
    tier = meta.get("vsr.tier", "") or DEFAULT_TIER
    return BundledModel(
        path.stem,
        path,
        int(meta.get("vsr.scale", "0") or 0),
        int(meta.get("vsr.parameters", "0") or 0),
        meta.get("vsr.degradation", "?"),
        psnr,
        file_precision(path, meta),
        tier if tier in TIERS else DEFAULT_TIER,
        macs,
    )


def read_metadata(path: Path) -> dict[str, str]:
    """The model's custom metadata (empty when the file cannot be read)."""
    from .runtime import import_onnxruntime

    ort = import_onnxruntime()
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return dict(sess.get_modelmeta().custom_metadata_map)
    except Exception:  # noqa: BLE001 - a broken file is listed, and fails when used
        return {}


def default_for(
    scale: int | None = None, quality: str | None = None, degrade: str | None = None
) -> BundledModel | None:
    """The bundled model `--scale`/`--quality`/`--degrade` pick: of that scale and tier,
    trained for that degradation (clean by default), float (int8 variants are chosen by name)."""
    want, tier, degrade = scale or DEFAULT_SCALE, quality or DEFAULT_TIER, degrade or DEFAULT_DEGRADATION
    found = [
        m
        for m in bundled_models()
        if m.scale == want and m.tier == tier and m.degradation == degrade and m.precision == "fp32"
    ]
    names = _tier_names(tier, want, degrade)
    found.sort(key=lambda m: (names.index(m.name) if m.name in names else len(names), m.name))
    return found[0] if found else None


def _tier_names(tier: str, scale: int, degrade: str = DEFAULT_DEGRADATION) -> list[str]:
    """The names that mark a model as its tier's pick at `scale` for `degrade` input, first
    choice first: TIER_xN (balanced: then espcn_xN), with _video for video input."""
    suffix = "" if degrade == DEFAULT_DEGRADATION else f"_{degrade}"
    return [f"{tier}_x{scale}{suffix}"] + ([f"espcn_x{scale}{suffix}"] if tier == "balanced" else [])


def tier_defaults(spec: str, scale: int) -> list[tuple[str, BundledModel | None]]:
    """(tier, the model `--quality TIER --scale` picks, or None) for a benchmark's `--tiers`
    list: comma-separated tier names, or "all".

    Raises:
        ModelError: an unknown tier name.
    """
    tiers = list(TIERS) if spec == "all" else [t.strip() for t in spec.split(",") if t.strip()]
    for t in tiers:
        if t not in TIERS:
            raise ModelError(f"unknown tier {t!r}", hint=f"choose from {', '.join(TIERS)}, or all")
    return [(t, default_for(scale, t)) for t in tiers]


def resolve(
    model: str | None, scale: int | None, quality: str | None = None, degrade: str | None = None
) -> Path:
    """The model file for `--model` (path or bundled name), or `--scale`, `--quality` and
    `--degrade`.

    Raises:
        ModelError: no such file or bundled name, or no bundled model for that scale, tier
            and degradation.
    """
    if quality is not None and quality not in TIERS:
        raise ModelError(f"unknown quality {quality!r}", hint=f"choose one of {', '.join(TIERS)}")
    if degrade is not None and degrade not in DEGRADATIONS:
        raise ModelError(f"unknown degradation {degrade!r}", hint=f"choose one of {', '.join(DEGRADATIONS)}")
    if model is not None and (quality is not None or degrade is not None):
        flag = "--quality" if quality is not None else "--degrade"
        raise ModelError(f"--model and {flag} both pick a model", hint="pass only one of them")
    if model is not None:
        p = Path(model).expanduser()
        if p.suffix.lower() == ".onnx" or os.sep in model or p.exists():
            if not p.is_file():
                raise ModelError(
                    f"cannot open model {model!r}: no such file",
                    hint="pass a path to an .onnx file or a name from 'vsr models'",
                )
            return p
        for d in model_dirs():
            cand = d / f"{model}.onnx"
            if cand.is_file():
                return cand
        names = ", ".join(m.name for m in bundled_models()) or "none found"
        raise ModelError(
            f"unknown model {model!r}", hint=f"bundled models: {names}; or pass a path to an .onnx file"
        )
    want, tier, degrade = scale or DEFAULT_SCALE, quality or DEFAULT_TIER, degrade or DEFAULT_DEGRADATION
    for name in _tier_names(tier, want, degrade):  # by name, without reading every model's metadata
        for d in model_dirs():
            if (d / f"{name}.onnx").is_file():
                return d / f"{name}.onnx"
    chosen = default_for(want, tier, degrade)
    if chosen is not None:
        return chosen.path
    if degrade != DEFAULT_DEGRADATION:
        have = sorted(
            {
                f"{m.tier} x{m.scale}"
                for m in bundled_models()
                if m.degradation == degrade and m.precision == "fp32"
            }
        )
        raise ModelError(
            f"no bundled {tier} model for scale {want} trained for {degrade} input",
            hint=(
                f"{degrade}-trained models are bundled for: {', '.join(have)}"
                if have
                else "drop --degrade, or pass --model PATH"
            ),
        )
    have = sorted({f"{m.tier} x{m.scale}" for m in bundled_models() if m.scale == want})
    raise ModelError(
        f"no bundled {tier} model for scale {want}",
        hint=(
            f"bundled at x{want}: {', '.join(have)}"
            if have
            else "pass --model PATH, or reinstall vsr so that its models/ folder is present"
        ),
    )
