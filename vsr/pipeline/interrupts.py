"""Ctrl-C and SIGTERM for the CLI (main thread): what the first, second and later ones do.

By default the first SIGINT/SIGTERM raises `Interrupted` (abort and clean up: file mode); a
live run sets `Interrupts.graceful`, so the first one only asks the pipeline to finish its
recording and the second aborts. Later ones are ignored: a Ctrl-C must not interrupt the
cleanup of the previous one (that skipped cleanup, printed stray tracebacks, or aborted the
process inside onnxruntime).

The raise happens wherever the main thread is, which is not always a place that can take it:
inside a `deferred()` block (stage threads starting, an output being finished) it waits
for the block's end; where Python cannot raise at all (a weakref callback, a `__del__`, a
callback from FFmpeg) the exception would be printed and lost, so it is kept as `pending`
instead and `Interrupts.check()` raises it at the command's next progress step.

(Not to be confused with `vsr.media.picture_metadata`: what an output video says about its pixels.)
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import Interrupted

log = logging.getLogger(__name__)


@dataclass
class Interrupts:
    """The signals received while one command runs.

    Attributes:
        graceful: what the first signal does instead of raising (a live run's stop).
        received: the first signal's number, 0 if none.
        count: how many arrived.
        pending: the number of a signal whose `Interrupted` is still to be raised (held by
            `deferred()`, or lost where Python could not raise it), 0 if none.
    """

    graceful: Callable[[], None] | None = None
    received: int = 0
    count: int = 0
    pending: int = 0

    def on_signal(self, signum: int, _frame: object) -> None:
        self.count += 1
        if self.count == 1:
            self.received = signum
            if self.graceful is not None:
                log.warning("stopping: finishing the recording (press Ctrl-C again to abort)")
                self.graceful()
                return
            self._raise(signum)
        elif self.count == 2 and self.graceful is not None:
            self._raise(signum)

    def _raise(self, signum: int) -> None:
        if _deferring:
            self.pending = signum
            return
        raise Interrupted(signum)

    def check(self) -> None:
        """Raise the `Interrupted` a signal asked for, if it is still pending.

        Raises:
            Interrupted: a signal was held by `deferred()` or its exception was lost.
        """
        if self.pending:
            signum, self.pending = self.pending, 0
            raise Interrupted(signum)

    def unraisable(
        self, hook: Callable[[sys.UnraisableHookArgs], object]
    ) -> Callable[[sys.UnraisableHookArgs], None]:
        """A `sys.unraisablehook` that keeps a lost `Interrupted` as pending (and prints
        nothing); anything else goes to `hook`."""

        def keep(args: sys.UnraisableHookArgs) -> None:
            if isinstance(args.exc_value, Interrupted):
                self.pending = self.pending or args.exc_value.signum
            else:
                hook(args)

        return keep


#: The handlers' state while a command runs in the main thread (None outside `handled()`).
_active: Interrupts | None = None
#: How many `deferred()` blocks the main thread is in.
_deferring = 0

#: True when running as the `vsr` command (`cli.main_exit`), not called from Python code.
_exiting_process = False


def exiting_process() -> None:
    """Say that the process ends with the command: signals stay ignored after the command
    returns, so its exit status stands."""
    global _exiting_process
    _exiting_process = True


@contextmanager
def handled() -> Iterator[Interrupts]:
    """Install the handlers described in `Interrupts` for the duration of a command.

    Outside the main thread (embedded use) signals are left alone.
    """
    global _active
    state = Interrupts()
    try:
        old = {s: signal.signal(s, state.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        yield state
        return
    old_hook, sys.unraisablehook = sys.unraisablehook, state.unraisable(sys.unraisablehook)
    _active = state
    try:
        yield state
    finally:
        _active = None
        sys.unraisablehook = old_hook
        for s, handler in old.items():
            # The `vsr` process is on its way out with the command's status: a signal now (a
            # repeat, or a late first one) must not turn it into a traceback.
            signal.signal(s, signal.SIG_IGN if _exiting_process else handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold the `Interrupted` of a signal until the block ends, then raise it.

    For the short windows where an exception would leave a libav object or a temporary file
    that nobody closes: stage threads being started (one running but not yet supervised),
    a finished output being closed and renamed. Not for blocking waits (opening an input):
    those must stay interruptible. Outside the main thread, or without `handled()`, it does
    nothing.
    """
    global _deferring
    if _active is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _active is not None:
            _active.check()
