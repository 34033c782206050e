"""Where things are in the source checkout: the repository root, its models and sample clip,
and the shared data beside it (`../shared`, present on the project's own machines only)."""

from __future__ import annotations

from pathlib import Path

#: The repository root (vsr/lab/paths.py is two folders below it).
ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
SAMPLE = ROOT / "samples" / "sample.mp4"
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
SHARED_VIDEOS = SHARED / "videos"
