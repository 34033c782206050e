"""A hard deadline for the calling thread's blocking PyAV reads: live mode's `--duration`.

Used by the live source thread ("vsr-source"): `with until(end): ...` around its reads.

Why: a read of a silent network input waits for its read timeout (`--stall-timeout`), which
PyAV fixes when the input is opened; a read that began just before the run's end would make
it overrun by up to that much. A shorter read timeout cannot stand in for it, because an
FFmpeg read that was interrupted cannot be resumed: the input's AVIOContext keeps its
end-of-file state (measured: after one interrupted read of a UDP input, every later read
failed at once, although the sender came back).

How: PyAV's interrupt callback, which FFmpeg polls about every 100 ms while a read waits,
compares `time.monotonic()`, looked up in the globals of `av.container.core`, with the time
the read started. `until` gives that module a clock that is the real one, except in a thread
past its deadline, where every call reads a day later than the one before: the waiting read is
interrupted at once and ends as its own timeout would (`av.error.ExitError`). Other threads, and
this one before its deadline or outside `until`, see the real clock. Where PyAV's internals are
not as expected, nothing is changed (`supported()` is False) and a read may outlast the
deadline by up to its read timeout, as before.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from types import ModuleType

_local = threading.local()
_lock = threading.Lock()


class _Clock(ModuleType):
    """`time`, with `monotonic` as the module docstring says."""

    def __init__(self) -> None:
        super().__init__("time")
        self.__dict__.update({k: v for k, v in vars(time).items() if not k.startswith("__")})
        self.monotonic = _monotonic


def _monotonic() -> float:
    now = time.monotonic()
    deadline: float | None = getattr(_local, "deadline", None)
    if deadline is None or now < deadline:
        return now
    skew: float = getattr(_local, "skew", 0.0) + 86400.0  # later than any read's start + timeout
    _local.skew = skew
    return now + skew


def _core() -> ModuleType | None:
    try:
        import av.container.core as core
    except ImportError:
        return None
    return core if isinstance(getattr(core, "time", None), ModuleType) else None


def supported() -> bool:
    """Whether this PyAV's reads can be cut at a deadline (see the module docstring)."""
    return _core() is not None


def _install() -> bool:
    core = _core()
    if core is None:
        return False
    with _lock:
        if not isinstance(core.time, _Clock):
            core.time = _Clock()  # type: ignore[attr-defined]
    return True


@contextlib.contextmanager
def until(deadline: float | None) -> Iterator[bool]:
    """Within the block, a blocking PyAV read in this thread ends (`av.error.ExitError`) at
    `deadline` (a `time.monotonic()` value) at the latest, about 0.1 s after it; None: no
    deadline. Yields whether the deadline is enforced (False where `supported()` is not)."""
    if deadline is None:
        yield False
        return
    ok = _install()
    _local.deadline, _local.skew = deadline, 0.0
    try:
        yield ok
    finally:
        _local.deadline = None
