"""What every upscaling run presents to the CLI, batch mode and API callers, whichever kind it
is: a `Pipeline`, or a `ScaleOutJob` for a file done in segments. Main thread.

- `Run`: the protocol both implement (`progress()` / `run()` / `snapshot()` / `stats()` /
  `close()`), so the CLI and `vsr.app.batch` drive either the same way.
- `Snapshot`: where a run is, for progress displays.
- `build_stats()`: the one builder of a finished run's `Stats`; what follows from the input
  and the model (sizes, scale, precision, the damage in time order) is filled in the same
  way for both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ..frames import StageTimes, Stats, Steady, StreamInfo
from ..model.load import LumaUpscaler, engine_of, name_of, precision_of


@dataclass(frozen=True)
class Snapshot:
    """Where a run is, for progress displays; taken in the caller's thread."""

    frames: int
    total: int  # 0 when the input does not say
    elapsed: float
    frames_in: int = 0  # decoded so far
    dropped: int = 0  # dropped at the input (live)
    latency: float | None = None  # recent median seconds from decode to encode
    batch: int = 0  # the batch size in force (live: adaptive)
    segments: int = 0  # scale-out: segments in the job (0: not split)
    segments_done: int = 0
    events: tuple[dict[str, Any], ...] = ()  # scale-out: segment events since the last snapshot

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if not self.total or not self.frames or self.frames >= self.total:
            return None
        return (self.total - self.frames) / self.fps


class Run(Protocol):
    """One upscaling run, opened (inputs, model and output checked) and ready to go."""

    @property
    def info(self) -> StreamInfo:
        """The opened input."""

    @property
    def upscaler(self) -> LumaUpscaler:
        """The model that runs."""

    @property
    def batch(self) -> int:
        """Frames per model call (0: chosen per segment)."""

    def progress(self, interval: float = 0.25) -> Iterator[Snapshot]:
        """Run to the end, yielding a snapshot every `interval` seconds."""

    def run(self) -> Stats:
        """Run to the end and return the statistics."""

    def snapshot(self) -> Snapshot:
        """Where the run is now."""

    def stats(self) -> Stats:
        """What the run did (so far)."""

    def close(self) -> None:
        """Release what the run still holds (whatever happened: called in a finally)."""


@dataclass(frozen=True)
class Damage:
    """Input damage a run met: packets that could not be decoded (their frames are
    missing), frames decoded with concealed damage (kept), and the input times of both."""

    decode_errors: int = 0
    corrupt_frames: int = 0
    times: tuple[float, ...] = ()  # in any order


def build_stats(
    run: Run,
    *,
    frames: int,
    seconds: float,
    provider: str,
    output: str,
    damage: Damage = Damage(),
    stages: StageTimes | None = None,
    output_size: tuple[int, int] | None = None,
    audio_streams: int = 0,
    frames_in: int = 0,
    dropped: int = 0,
    steady: Steady | None = None,
    latency: dict[str, float] | None = None,
    reconnects: int = 0,
    input_lost: str = "",
    repaired_timestamps: int = 0,
    segments: int = 0,
    discontinuities: int = 0,
    size_changes: int = 0,
) -> Stats:
    """A run's `Stats`: the figures given, with what follows from the run itself.

    Args:
        output_size: the encoded size (None: the input's times the model's scale).
        Others: as in `Stats`.
    """
    v = run.info.video
    scale = run.upscaler.scale
    return Stats(
        frames=frames,
        seconds=seconds,
        input_size=(v.width, v.height),
        output_size=output_size or (v.width * scale, v.height * scale),
        scale=scale,
        provider=provider,
        precision=precision_of(run.upscaler),
        engine=engine_of(run.upscaler),
        model=name_of(run.upscaler),
        batch=run.batch,
        stages=stages or StageTimes(),
        audio_streams=audio_streams,
        decode_errors=damage.decode_errors,
        corrupt_frames=damage.corrupt_frames,
        damage_times=tuple(sorted(damage.times)),
        repaired_timestamps=repaired_timestamps,
        discontinuities=discontinuities,
        size_changes=size_changes,
        output=output,
        frames_in=frames_in,
        dropped=dropped,
        steady=steady,
        latency=latency or {},
        reconnects=reconnects,
        input_lost=input_lost,
        segments=segments,
    )
