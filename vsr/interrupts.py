"""Ctrl-C and SIGTERM for the CLI (main thread): what the first, second and later ones do.

By default the first SIGINT/SIGTERM raises `Interrupted` (abort and clean up: file mode); a
live run sets `Interrupts.graceful`, so the first one only asks the pipeline to finish its
recording and the second aborts. Later ones are ignored: a Ctrl-C must not interrupt the
cleanup of the previous one (that skipped cleanup, printed stray tracebacks, or aborted the
process inside onnxruntime).

(Not to be confused with `vsr.signalling`: what an output video signals about its pixels.)
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import Interrupted

log = logging.getLogger(__name__)


@dataclass
class Interrupts:
    """The signals received while one command runs.

    Attributes:
        graceful: what the first signal does instead of raising (a live run's stop).
        received: the first signal's number, 0 if none.
        count: how many arrived.
    """

    graceful: Callable[[], None] | None = None
    received: int = 0
    count: int = 0

    def on_signal(self, signum: int, _frame: object) -> None:
        self.count += 1
        if self.count == 1:
            self.received = signum
            if self.graceful is not None:
                log.warning("stopping: finishing the recording (press Ctrl-C again to abort)")
                self.graceful()
                return
            raise Interrupted(signum)
        if self.count == 2 and self.graceful is not None:
            raise Interrupted(signum)


#: True when running as the `vsr` command (`cli.main_exit`), not called from Python code.
_exiting_process = False


def exiting_process() -> None:
    """Say that the process ends with the command: once interrupted, it is on its way out,
    so repeated signals stay ignored after the command returns."""
    global _exiting_process
    _exiting_process = True


@contextmanager
def handled() -> Iterator[Interrupts]:
    """Install the handlers described in `Interrupts` for the duration of a command.

    Outside the main thread (embedded use) signals are left alone.
    """
    state = Interrupts()
    try:
        old = {s: signal.signal(s, state.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        yield state
        return
    try:
        yield state
    finally:
        for s, handler in old.items():
            # Once interrupted, the process is on its way out: keep ignoring repeats.
            signal.signal(s, signal.SIG_IGN if state.count and _exiting_process else handler)
