"""Shared fixtures: a generated sample video, and a check that no pipeline thread outlives
its test. Helpers the tests import live in helpers.py; generated media in vsr.lab.media."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vsr.lab.media import synth_video


@pytest.fixture(scope="session", autouse=True)
def engine_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The engine choices (`--engine auto`) of this test run, in one folder its workers share
    (so each model is measured once a run, not once a test), never the user's own cache; the
    CLI's subprocesses inherit it."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "vsr-engine-cache"
    patch = pytest.MonkeyPatch()
    patch.setenv("VSR_CACHE_DIR", str(folder))
    yield folder
    patch.undo()


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


@pytest.fixture
def sigint_default() -> Iterator[None]:
    """Children must start with SIGINT at its default, or Python never installs
    KeyboardInterrupt in them: a test run started without job control (`cmd &` in a script)
    has SIGINT ignored, and an ignored signal stays ignored across exec (a handled one is
    reset to the default)."""
    old = signal.getsignal(signal.SIGINT)
    if old is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if old is signal.SIG_IGN:
        signal.signal(signal.SIGINT, old)
