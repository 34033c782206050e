"""Where things are in the source checkout: the repository root, its models and sample clip,
and the shared data beside it (`../shared`, present on the project's own machines only).

Defined once, here, for the package (the model registry looks in `MODELS`), the lab, the
scripts and the tests. In a wheel install `ROOT` is site-packages and these paths do not
exist; the registry then finds the models under `<prefix>/share/vsr/models`."""

from __future__ import annotations

from pathlib import Path

#: The repository root (vsr/paths.py is one folder below it).
ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
SAMPLE = ROOT / "samples" / "sample.mp4"
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
SHARED_VIDEOS = SHARED / "videos"
