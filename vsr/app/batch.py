"""Many inputs in one run (main thread): expand folders, name the outputs, run them one by one.

`plan()` turns what the user named (files, folders) into `BatchItem`s, each an input and the
output it gets: `NAME_x3.EXT` in the output folder, as `default_output` names a single file's
(images become .png), with the sub-folders of a `--recursive` walk repeated there so that two
`a.mp4` in different folders cannot meet. `run_batch()` runs the items in order through jobs
the caller opens (a `Pipeline`, or a `ScaleOutJob` for `--segments`, sharing one loaded model)
and yields progress snapshots and one `FileResult` per file. A file that fails is reported
and the next one starts; Ctrl-C (KeyboardInterrupt) is not caught: the job in progress
removes its own temporary file and the finished outputs stay.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError, VsrError
from ..frames import Stats
from ..media.output_container import IMAGE_INPUTS, default_output
from ..pipeline.run import Run, Snapshot

#: Extensions a folder is searched for (images: output.IMAGE_INPUTS). Named files are taken
#: whatever their extension.
VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".ts",
        ".mts",
        ".m2ts",
        ".mpg",
        ".mpeg",
        ".flv",
        ".wmv",
        ".3gp",
        ".ogv",
        ".mxf",
        ".vob",
        ".y4m",
        ".dv",
        ".nut",
    }
)
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | IMAGE_INPUTS


class Status(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class BatchItem:
    """One input and the output it is written to."""

    input: str
    output: Path

    @property
    def is_image(self) -> bool:
        return Path(self.input).suffix.lower() in IMAGE_INPUTS


@dataclass(frozen=True)
class FileResult:
    """What happened to one file. `error` is the one-line reason of a failure."""

    item: BatchItem
    status: Status
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None
    stats: Stats | None = None

    def record(self) -> dict[str, object]:
        """The `--progress json` "file" event."""
        return {
            "event": "file",
            "input": self.item.input,
            "output": str(self.item.output),
            "status": self.status.value,
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


@dataclass(frozen=True)
class BatchProgress:
    """A snapshot of the whole run, taken between the current file's own snapshots.

    `total_estimate` counts the finished files' frames, the current file's announced total,
    and, for each file not started yet, the mean frame count of the files seen so far (0
    while none is known): an estimate for the overall ETA, not a promise.
    """

    files_total: int
    files_done: int  # finished, whatever the outcome
    current: BatchItem | None
    file: Snapshot | None  # the current file's own snapshot
    frames: int  # frames finished in all files, the current one included
    elapsed: float  # seconds since the batch started
    total_estimate: int
    events: tuple[dict[str, object], ...] = ()  # scale-out segment events of the current file

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if not self.total_estimate or not self.frames or self.frames >= self.total_estimate:
            return None
        return (self.total_estimate - self.frames) / self.fps


def expand(inputs: Sequence[str], recursive: bool = False) -> list[tuple[str, Path]]:
    """Each named file as it is, and each folder's media files (by extension, sorted by name).

    Hidden files and folders (vsr's own `.NAME.vsr-XXXX.partial.EXT`, for one) are passed
    over. Returns (input, sub-folder relative to the folder it was found in) pairs.

    Raises:
        UsageError: standard input among several inputs, or a folder without media files.
    """
    found: list[tuple[str, Path]] = []
    for name in inputs:
        if name == "-":
            raise UsageError(
                "standard input (-) cannot be one of several inputs",
                hint="run 'vsr upscale - OUTPUT' on its own",
            )
        folder = Path(name)
        if "://" in name or not folder.is_dir():
            found.append((name, Path()))  # a file (or URL): an error, if any, is its own
            continue
        before = len(found)
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
            rel = Path(root).relative_to(folder)
            found.extend(
                (str(Path(root) / f), rel)
                for f in sorted(files)
                if not f.startswith(".") and Path(f).suffix.lower() in MEDIA_EXTENSIONS
            )
        if len(found) == before:
            raise UsageError(
                f"no video or image files in folder '{folder}'"
                + ("" if recursive else " (pass --recursive to search its sub-folders)")
            )
    return found


def plan(found: Sequence[tuple[str, Path]], output_dir: str | Path, scale: int) -> list[BatchItem]:
    """The inputs `expand()` found, with their outputs: NAME_x{scale}.EXT in `output_dir`
    (in the same sub-folder as the input, for a recursive walk), images as .png.

    A file that is another input's planned output (`a_x3.mp4` beside `a.mp4`, when the output
    folder is the input folder) is not an input: re-running over a folder never upscales
    its own results.

    Raises:
        UsageError: two inputs that would write the same output.
    """
    out_dir = Path(output_dir)
    items = [BatchItem(url, out_dir / rel / Path(default_output(url, scale)).name) for url, rel in found]
    outputs = {_key(it.output) for it in items}
    items = [it for it in items if "://" in it.input or _key(Path(it.input)) not in outputs]
    seen: dict[str, BatchItem] = {}
    for it in items:
        other = seen.setdefault(_key(it.output), it)
        if other is not it:
            raise UsageError(
                f"inputs '{other.input}' and '{it.input}' would both be written to '{it.output}'",
                hint="rename one of them, or upscale them in two runs",
            )
    return items


def _key(path: Path) -> str:
    return os.path.normcase(os.path.abspath(path))


def run_batch(
    items: Sequence[BatchItem],
    open_job: Callable[[BatchItem], Run],
    *,
    skip_existing: bool = False,
    fail_fast: bool = False,
    interval: float = 0.25,
) -> Generator[BatchProgress | FileResult, None, None]:
    """Run every item, yielding progress snapshots and one FileResult per file, each
    followed by a snapshot.

    Args:
        items: from `plan()`.
        open_job: opens the job for one item (raising VsrError for a bad input or output);
            called only for items that are not skipped.
        skip_existing: skip items whose output exists. vsr renames an output into place
            only when it is complete, so an existing output is a finished one.
        fail_fast: stop after the first failure (the rest are not started).
        interval: seconds between progress snapshots.

    A VsrError fails the file; anything else (a bug, KeyboardInterrupt) ends the batch.
    """
    t0 = time.monotonic()
    skip = {i for i, it in enumerate(items) if skip_existing and it.output.exists()}
    finished_frames = 0
    known: list[int] = []  # frame counts of the files seen, for the estimate

    def snapshot(done: int, item: BatchItem | None, p: Snapshot | None) -> BatchProgress:
        """`done` files finished; the ones after the current file (or after `done`, between
        files) are still to come."""
        current = max(p.total, p.frames) if p else 0
        sample = [*known, current] if current else known
        mean = sum(sample) / len(sample) if sample else 0.0
        pending = sum(1 for j in range(done + (item is not None), len(items)) if j not in skip)
        return BatchProgress(
            len(items),
            done,
            item,
            p,
            finished_frames + (p.frames if p else 0),
            time.monotonic() - t0,
            int(finished_frames + current + mean * pending),
            p.events if p else (),
        )

    for i, item in enumerate(items):
        if i in skip:
            yield FileResult(item, Status.SKIPPED)
            yield snapshot(i + 1, None, None)
            continue
        started = time.monotonic()
        last: Snapshot | None = None
        job: Run | None = None
        try:
            try:
                job = open_job(item)
                for last in job.progress(interval):
                    yield snapshot(i, item, last)
                stats = job.stats()
            finally:
                if job is not None:  # also when interrupted, or when the caller stops here
                    job.close()
        except VsrError as exc:
            frames = last.frames if last else 0
            finished_frames += frames
            yield FileResult(item, Status.FAILED, frames, time.monotonic() - started, str(exc))
            yield snapshot(i + 1, None, None)
            if fail_fast:
                return
            continue
        finished_frames += stats.frames
        known.append(stats.frames)
        yield FileResult(item, Status.DONE, stats.frames, time.monotonic() - started, stats=stats)
        yield snapshot(i + 1, None, None)


def tally(results: Iterable[FileResult]) -> dict[Status, int]:
    """How many files ended in each status (every status present, 0 included)."""
    counts = dict.fromkeys(Status, 0)
    for r in results:
        counts[r.status] += 1
    return counts
