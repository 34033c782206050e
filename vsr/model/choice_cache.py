"""Where the engine choices measured on this machine are kept: one small JSON file in the
user's cache directory, so that only a model's first start on a CPU pays for the probe.

Read and written in the main thread, while a model loads. The file is a cache, never a source
of truth: one that is missing, unreadable, damaged or of another format version counts as
empty, and one that cannot be written costs only the next start's probe (said once, at info
level). Writes go through a temporary file renamed into place, under a lock file, and the
first record stored under a key wins (`put_first`): vsr processes that start at once on a
fresh machine (the scale-out workers, a service's first jobs) and measure side by side all
run what the first of them stored, so their frames come from one engine.

Location: `$VSR_CACHE_DIR` if set (tests point it at a temporary folder), else
`$XDG_CACHE_HOME/vsr`, else `~/.cache/vsr`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FILE_NAME = "engines.json"
FORMAT = 1


def cache_dir() -> Path:
    """The folder vsr's caches live in (not created here)."""
    if os.environ.get("VSR_CACHE_DIR"):
        return Path(os.environ["VSR_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "vsr"


def cache_file() -> Path:
    return cache_dir() / FILE_NAME


def _entries() -> dict[str, Any]:
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(data.get("entries"), dict)
    ):
        return {}
    entries: dict[str, Any] = data["entries"]
    return entries


def get(key: str) -> dict[str, Any] | None:
    """The record stored under `key`, or None."""
    record = _entries().get(key)
    return record if isinstance(record, dict) else None


def put_first(
    key: str, record: dict[str, Any], usable: Callable[[dict[str, Any]], bool] = lambda _: True
) -> dict[str, Any]:
    """Store `record` under `key` unless another process stored a `usable` one first, keeping
    the other entries; return what is stored now (`record`, or the earlier one). Failures are
    logged, not raised (then `record` is returned)."""
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / (FILE_NAME + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            entries = _entries()
            earlier = entries.get(key)
            if isinstance(earlier, dict) and usable(earlier):
                return earlier
            entries[key] = record
            fd, tmp = tempfile.mkstemp(prefix=".engines.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump({"format": FORMAT, "entries": entries}, f, indent=1, sort_keys=True)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
    except OSError as exc:
        log.info(
            "cannot keep the engine choice in '%s': %s; the next start measures again",
            path,
            exc.strerror or exc,
        )
    return record
