"""What every upscaling run presents to the CLI, batch mode and API callers, whichever kind it
is: a `Pipeline`, or a `ScaleOutJob` for a file done in segments. Main thread.

- `Run`: the protocol both implement (`progress()` / `run()` / `snapshot()` / `stats()` /
  `close()`), so the CLI and `vsr.app.batch` drive either the same way.
- `Snapshot`: where a run is, for progress displays.
- `build_stats()`: the one builder of a finished run's `Stats`; what follows from the input
  and the model (sizes, scale, precision, the damage in time order) is filled in the same
  way for both, and each kind adds its own part (`LiveStats`, `ScaleOutStats`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ..frames import LiveStats, ScaleOutStats, StageTimes, Stats, StreamInfo
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

    @property
    def provider(self) -> str:
        """Where the model runs (onnxruntime's provider, or the engine's own words)."""

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
class InputFigures:
    """What a run met in its input: the frames decoded, packets that could not be decoded
    (their frames are missing), frames decoded with concealed damage (kept), the input times
    of both kinds of damage (in any order), and what was mended: timestamps repaired, jumps
    of the input's clock, changes of the picture's size."""

    frames: int = 0  # decoded (`Stats.frames_in`); 0 when not counted
    decode_errors: int = 0
    corrupt_frames: int = 0
    damage_times: tuple[float, ...] = ()
    repaired_timestamps: int = 0
    discontinuities: int = 0
    size_changes: int = 0


def build_stats(
    run: Run,
    *,
    frames: int,
    seconds: float,
    output: str,
    output_size: tuple[int, int] | None = None,
    audio_streams: int = 0,
    stages: StageTimes | None = None,
    input_figures: InputFigures = InputFigures(),
    latency: dict[str, float] | None = None,
    live: LiveStats | None = None,
    scale_out: ScaleOutStats | None = None,
) -> Stats:
    """A run's `Stats`: the figures given, with what follows from the run itself (the sizes,
    the scale, where and how the model ran, the batch, the damage in time order).

    Args:
        output_size: the encoded size (None: the input's times the model's scale).
        input_figures: what the run met in its input.
        Others: as in `Stats`.
    """
    v = run.info.video
    up = run.upscaler
    return Stats(
        frames=frames,
        seconds=seconds,
        input_size=(v.width, v.height),
        output_size=output_size or (v.width * up.scale, v.height * up.scale),
        scale=up.scale,
        provider=run.provider,
        precision=precision_of(up),
        engine=engine_of(up),
        model=name_of(up),
        batch=run.batch,
        stages=stages or StageTimes(),
        audio_streams=audio_streams,
        decode_errors=input_figures.decode_errors,
        corrupt_frames=input_figures.corrupt_frames,
        damage_times=tuple(sorted(input_figures.damage_times)),
        repaired_timestamps=input_figures.repaired_timestamps,
        discontinuities=input_figures.discontinuities,
        size_changes=input_figures.size_changes,
        output=output,
        frames_in=input_figures.frames,
        latency=latency or {},
        live=live,
        scale_out=scale_out,
    )
