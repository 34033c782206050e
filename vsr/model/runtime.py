"""onnxruntime, imported in one place: a missing install becomes an error that says which
extra to install, whoever asks first (the model engine, the registry reading metadata).

Its own module so that the registry can read model metadata without importing the model
engine, which itself resolves names through the registry: no import cycle.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import ProviderUnavailable


def import_onnxruntime() -> ModuleType:
    """onnxruntime, or a ProviderUnavailable that says which extra to install."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ProviderUnavailable(
            "onnxruntime is not installed",
            hint="pip install 'vsr[cpu]' (or 'vsr[gpu]' for NVIDIA GPUs; never both)",
        ) from exc
    module: ModuleType = ort
    return module
