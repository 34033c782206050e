"""The work directory's manifest: what a job is, and which segments are done.

Only the driver writes it, and always atomically (temporary file, fsync, rename, fsync of the
folder), so a crash at any moment leaves either the old or the new manifest, never half of
one. `--resume` continues a job only when the input's signature and the settings hash are
those recorded; anything else is refused rather than silently mixing two jobs' segments.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

VERSION = 1
NAME = "manifest.json"
HEAD_BYTES = 1 << 20


class WorkDirError(UsageError):
    """The work directory cannot be used as asked (exit 2)."""


@dataclass
class SegmentRecord:
    """One segment's state. status: pending | done | failed."""

    index: int
    start_pts: int
    end_pts: int | None
    file: str  # name inside the work directory
    status: str = "pending"
    attempts: int = 0
    error: str | None = None
    frames: int = 0
    first_pts: int | None = None
    last_pts: int | None = None
    bytes: int = 0
    sha256: str | None = None
    extradata: str | None = None  # sha256 of the encoder's extradata (must match across parts)
    decode_errors: int = 0  # undecodable packets in this segment's range (frames lost)
    corrupt_frames: int = 0  # frames kept with concealed damage
    damage_times: list[float] = field(default_factory=list)  # input seconds of both
    checked: bool = False  # its frames were found to be a straight decode's (verify.py)
    # sha256 of its frames' content fingerprints (verify.content_digest): what --resume checks
    # a part made before the driver stopped by. None: made by a vsr that kept none.
    content: str | None = None


@dataclass
class Manifest:
    version: int
    input: dict[str, Any]  # the input's signature (see input_signature)
    settings_hash: str
    settings: dict[str, Any]  # what the hash covers, for humans reading the file
    output: str
    time_base: str
    segments: list[SegmentRecord] = field(default_factory=list)
    # Cuts found not to be exact, [pts, why]: their segments were merged into the ones
    # before, and a --resume plans without them.
    dropped_cuts: list[list[Any]] = field(default_factory=list)

    def save(self, work: Path) -> None:
        """Atomically replace WORK/manifest.json."""
        data = json.dumps(asdict(self), indent=1, sort_keys=True).encode()
        tmp = work / f".{NAME}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, work / NAME)
        fd = os.open(work, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @classmethod
    def load(cls, work: Path) -> Manifest:
        """Read WORK/manifest.json.

        Raises:
            WorkDirError: missing, unreadable, not JSON, another version, or wrong fields.
        """
        path = work / NAME
        try:
            raw = json.loads(path.read_text())
            if raw.get("version") != VERSION:
                raise WorkDirError(
                    f"manifest {path} is version {raw.get('version')!r}, this vsr writes version {VERSION}",
                    hint="pass --restart to start over",
                )
            segments = [SegmentRecord(**s) for s in raw.pop("segments")]
            return cls(**raw, segments=segments)
        except FileNotFoundError as exc:
            raise WorkDirError(
                f"no manifest in work directory '{work}': nothing to resume",
                hint="run without --resume to start the job",
            ) from exc
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise WorkDirError(
                f"manifest {path} is damaged ({type(exc).__name__}: {exc})",
                hint="pass --restart to start the job over",
            ) from exc


def input_signature(url: str, keyframes: tuple[int, ...]) -> dict[str, Any]:
    """What identifies the input: size, mtime, a hash of its first MiB, and its keyframes."""
    p = Path(url)
    st = p.stat()
    h = hashlib.sha256()
    with open(p, "rb") as f:
        h.update(f.read(HEAD_BYTES))
    return {
        "path": str(p.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "head_sha256": h.hexdigest(),
        "keyframes": list(keyframes),
    }


def settings_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_sha256(path: Path) -> str:
    return file_sha256(path)
