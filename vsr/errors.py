"""The exceptions vsr raises, one class per thing a user can act on.

Each is a `VsrError` carrying an optional `hint`; the CLI turns them into one line and an exit
status, and nothing else does. They also subclass the matching builtin (PyAV's habit), so
`except FileNotFoundError` keeps working for API users.
"""

from __future__ import annotations


class VsrError(Exception):
    """Base class: a problem the user can fix, reported without a traceback.

    Args:
        message: `<what failed> <which object>: <why>`.
        hint: what to do about it, shown on its own line.
    """

    #: exit status the CLI uses: 2 for bad input or usage, 1 for failures while processing.
    exit_status: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class UsageError(VsrError, ValueError):
    """Options that cannot work together, or a value out of range."""

    exit_status = 2


class SourceError(VsrError, OSError):
    """The input cannot be opened, has no video stream, or cannot be decoded."""

    exit_status = 2


class NoVideoFrame(SourceError):
    """The input (or the asked-for range of it) has no video frame that can be decoded."""


class DecodeError(SourceError):
    """A frame could not be decoded after processing had started."""

    exit_status = 1


class ModelError(VsrError, ValueError):
    """The model file is missing, unreadable, or not an [N,1,H,W] -> [N,1,rH,rW] network."""

    exit_status = 2


class ModelRunError(VsrError, RuntimeError):
    """The model failed while processing (onnxruntime error, out of memory)."""

    exit_status = 1


class ProviderUnavailable(ModelError):
    """The requested onnxruntime execution provider (or onnxruntime itself) is missing."""


class SinkError(VsrError, OSError):
    """The output cannot be created, encoded or written."""

    exit_status = 2


class EncodeError(SinkError):
    """Encoding or writing failed after processing had started (disk full, codec error)."""

    exit_status = 1


class Cancelled(Exception):
    """Raised inside a stage when the pipeline was aborted; never reaches the user."""


class Interrupted(KeyboardInterrupt):
    """A signal (SIGINT/SIGTERM) stopped the run; `signum` decides the exit status."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def reason(exc: BaseException) -> str:
    """The system's or FFmpeg's own reason for `exc`, without errno numbers or file names
    (PyAV's messages repeat the path, which for outputs is a temporary file's)."""
    strerror = getattr(exc, "strerror", None)  # OSError and PyAV's FFmpegError both have it
    if strerror:
        return str(strerror)
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
