"""Shared fixtures: a generated sample video, and a check that no pipeline thread outlives
its test. Helpers the tests import live in helpers.py; generated media in vsr.lab.media."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from vsr.lab.media import synth_video


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules with the most slow tests first, each module's tests in their own order.

    With `--dist loadscope` (and `--no-loadscope-reorder`) xdist hands whole modules to the
    workers in this order, so the long ones start at once and the short ones fill in at the
    end, rather than one long module running alone on one worker while the other waits.
    (xdist's own order, by number of tests, left the live and Ray modules to the end.)"""

    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::")[0]

    # a parametrized test counts once: its cases share the fixtures that make it slow
    slow = Counter(
        module(item)
        for item in {item.nodeid.split("[")[0]: item for item in items}.values()
        if item.get_closest_marker("slow")
    )
    first_seen = {name: i for i, name in enumerate(dict.fromkeys(map(module, items)))}
    items.sort(key=lambda item: (-slow[module(item)], first_seen[module(item)]))


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


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty folder that only the run under test writes to."""
    d = tmp_path / "out"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def hard_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated hard images (text, line art, flat, contrast, dark), once per worker."""
    from vsr.lab import hard_images

    return hard_images.write_all(tmp_path_factory.mktemp("hard"))[0].parent
