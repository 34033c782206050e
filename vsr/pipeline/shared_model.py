"""One loaded model shared by many pipelines, their frames merged into common model calls.

Thread "vsr-model-NAME" owns the model; each pipeline's model stage calls the `SharedModel`
like any `LumaUpscaler` and blocks until its frames come back. Why: a job service runs
several jobs at once, and loading the model once per job costs memory and start-up time on a
GPU that has room for one copy; more, many small streams leave a GPU idle between their small
calls, and frames of several jobs in one call fill it. On a CPU, where batching buys nothing,
`max_batch` 1 keeps the calls apart and the sharing is only of the loaded session.

Calls of the same frame size are merged, in arrival order, up to `max_batch` frames; a call is
never split, and a merged batch runs the same network on the same frames, so each job gets
the pixels it would get alone (tests/test_serve.py checks it on the CPU). The request queue
is bounded by the callers themselves: each blocks on its own call, so at most one call per
pipeline waits.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import Cancelled
from ..model.load import LumaUpscaler, engine_of, name_of, precision_of, provider_of

log = logging.getLogger(__name__)


@dataclass
class _Call:
    y: npt.NDArray[np.uint8]
    done: threading.Event = field(default_factory=threading.Event)
    result: npt.NDArray[np.uint8] | None = None
    error: BaseException | None = None


@dataclass(frozen=True)
class Occupancy:
    """How full the merged calls were: frames per call against `max_batch`."""

    calls: int
    frames: int
    max_batch: int

    @property
    def mean(self) -> float:
        """Mean frames per call as a share of `max_batch` (0 before the first call)."""
        return self.frames / (self.calls * self.max_batch) if self.calls else 0.0


class SharedModel:
    """A `LumaUpscaler` that many threads call at once; one thread runs the model.

    Args:
        model: the loaded model (an `OnnxUpscaler`, or any LumaUpscaler).
        max_batch: the most frames one model call takes (merged from several callers).
        linger: seconds the model thread waits for more calls of the same size before it runs
            a batch that is not full (only when `max_batch` > 1).
    """

    def __init__(self, model: LumaUpscaler, max_batch: int = 1, linger: float = 0.002) -> None:
        self.model = model
        self.scale = model.scale
        self.max_batch = max(1, max_batch)
        self.linger = linger
        self.provider = provider_of(model)
        self.precision = precision_of(model)
        self.runtime = engine_of(model)
        self.name = name_of(model)
        self.path: Path | None = getattr(model, "path", None)
        self.metadata: dict[str, str] = dict(getattr(model, "metadata", {}) or {})
        self._calls: collections.deque[_Call] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._count_calls = 0
        self._count_frames = 0
        self._thread = threading.Thread(
            target=self._serve, name=f"vsr-model-{self.name or 'custom'}", daemon=True
        )
        self._thread.start()

    def __getattr__(self, name: str) -> Any:
        # What the pipeline reads of a loaded model besides the call (fixed tile size,
        # receptive field, engine) comes from the model itself.
        return getattr(self.__dict__["model"], name)

    def __call__(self, y: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        call = _Call(y)
        with self._cond:
            if self._closed:
                raise Cancelled("the shared model is closed")
            self._calls.append(call)
            self._cond.notify_all()
        call.done.wait()
        if call.error is not None:
            raise call.error
        assert call.result is not None
        return call.result

    def occupancy(self) -> Occupancy:
        with self._cond:
            return Occupancy(self._count_calls, self._count_frames, self.max_batch)

    def close(self) -> None:
        """Stop the model thread; calls waiting now fail with `Cancelled`."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=10)

    def _take(self) -> list[_Call] | None:
        """The next merged batch: the oldest call, and the calls of its frame size behind it
        while they fit."""
        with self._cond:
            while not self._calls and not self._closed:
                self._cond.wait()
            if self._closed:
                for call in self._calls:
                    call.error = Cancelled("the shared model is closed")
                    call.done.set()
                self._calls.clear()
                return None
            first = self._calls.popleft()
            batch, frames = [first], len(first.y)
            shape = first.y.shape[1:]
            if self.max_batch > 1 and frames < self.max_batch:
                self._cond.wait_for(
                    lambda: any(c.y.shape[1:] == shape for c in self._calls) or self._closed,
                    timeout=self.linger,
                )
                for call in list(self._calls):
                    if call.y.shape[1:] == shape and frames + len(call.y) <= self.max_batch:
                        self._calls.remove(call)
                        batch.append(call)
                        frames += len(call.y)
            self._count_calls += 1
            self._count_frames += frames
            return batch

    def _serve(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                if len(batch) == 1:
                    batch[0].result = self.model(batch[0].y)
                else:
                    out = self.model(np.concatenate([c.y for c in batch]))
                    start = 0
                    for call in batch:
                        call.result = out[start : start + len(call.y)]
                        start += len(call.y)
            except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch
                for call in batch:
                    call.error = exc
            for call in batch:
                call.done.set()
