"""Shared fixtures: a generated sample video, and a check that no pipeline thread outlives
its test. Helpers the tests import live in helpers.py; generated media in vsr.lab.media."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vsr.lab.media import synth_video


@pytest.fixture
def sample_video(tmp_path: Path) -> Path:
    """A 12-frame 64x48 H.264 + AAC mp4 with B-frames."""
    return synth_video(tmp_path / "in.mp4")


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every test must leave no 'vsr-*' thread running."""
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = [t.name for t in threading.enumerate() if t.name.startswith("vsr-")]
        if not alive:
            return
        time.sleep(0.05)
    pytest.fail(f"threads still running after the test: {alive}")
