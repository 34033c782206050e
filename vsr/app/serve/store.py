"""The job service's durable queue: one SQLite table of jobs (any thread, behind one lock).

Why SQLite: the queue must survive a restart and a SIGKILL, and the standard library has it.
Each state change is one committed transaction in WAL mode; `synchronous=NORMAL` keeps every
committed change through a killed process (only a power cut can lose the last ones), which is
what a job service on a server needs without paying an fsync per progress update.

A job moves queued -> running -> done | failed | cancelled. `claim()` takes the oldest queued
job atomically; `recover()`, at start-up, puts back in the queue every job a killed process
left running. Two jobs never write the same output: `add()` refuses an output that a queued
or running job already has, inside the same transaction that inserts.
"""

from __future__ import annotations

import enum
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import UsageError


class Status(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = (Status.QUEUED, Status.RUNNING)


class OutputBusy(UsageError):
    """Another queued or running job writes this output."""


@dataclass(frozen=True)
class Job:
    """One job as stored: what was asked, where it is, what ran and what came of it.

    `input` and `output` are as the client gave them (relative to the service's root, or a
    URL); `options` are the client's options, already checked. `progress` holds frames,
    total, fps and eta_s; `figures` what the run reported at its end (stage seconds, model,
    provider, engine, precision, real-time factor).
    """

    id: str
    status: Status
    input: str
    output: str
    options: dict[str, Any]
    created: float
    started: float | None = None
    finished: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 0

    def record(self) -> dict[str, Any]:
        """The job as the API returns it."""
        return {
            "id": self.id,
            "status": self.status.value,
            "input": self.input,
            "output": self.output,
            "options": self.options,
            "progress": self.progress,
            "error": self.error,
            "model": self.figures.get("model"),
            "provider": self.figures.get("provider"),
            "engine": self.figures.get("engine"),
            "precision": self.figures.get("precision"),
            "figures": self.figures,
            "created": _iso(self.created),
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "attempts": self.attempts,
        }


def _iso(t: float | None) -> str | None:
    return (
        None
        if t is None
        else time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
    )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT NOT NULL,
    output_key TEXT NOT NULL,
    options TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    progress TEXT NOT NULL DEFAULT '{}',
    figures TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_output ON jobs (output_key, status);
"""

_COLUMNS = (
    "id, status, input, output, options, created, started, finished, progress, figures, error, attempts"
)


class JobStore:
    """The jobs table. Every method is one transaction; any thread may call them."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, input: str, output: str, output_key: str, options: dict[str, Any]) -> Job:
        """Queue a new job.

        Raises:
            OutputBusy: a queued or running job already writes `output_key` (the resolved path).
        """
        job_id = secrets.token_hex(6)
        now = time.time()
        with self._tx() as db:
            busy = db.execute(
                "SELECT id FROM jobs WHERE output_key = ? AND status IN (?, ?)",
                (output_key, Status.QUEUED.value, Status.RUNNING.value),
            ).fetchone()
            if busy:
                raise OutputBusy(f"output '{output}' is already being written by job {busy[0]}")
            db.execute(
                "INSERT INTO jobs (id, status, input, output, output_key, options, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, Status.QUEUED.value, input, output, output_key, json.dumps(options), now),
            )
        return Job(job_id, Status.QUEUED, input, output, options, now)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def jobs(self, status: Status | None = None, limit: int = 100) -> list[Job]:
        """Newest first."""
        query = f"SELECT {_COLUMNS} FROM jobs"
        args: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status.value,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq DESC LIMIT ?", (*args, limit)).fetchall()
        return [_job(r) for r in rows]

    def counts(self) -> dict[Status, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        found = {Status(s): n for s, n in rows}
        return {s: found.get(s, 0) for s in Status}

    def output_key(self, job_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT output_key FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return str(row[0]) if row else None

    def claim(self) -> Job | None:
        """The oldest queued job, now running; None when the queue is empty."""
        with self._tx() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE status = ? ORDER BY seq LIMIT 1", (Status.QUEUED.value,)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = ?, started = ?, attempts = attempts + 1, "
                "progress = '{}', error = NULL WHERE id = ?",
                (Status.RUNNING.value, time.time(), row[0]),
            )
            got = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (row[0],)).fetchone()
        return _job(got)

    def progress(self, job_id: str, progress: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET progress = ? WHERE id = ? AND status = ?",
                (json.dumps(progress), job_id, Status.RUNNING.value),
            )

    def finish(
        self,
        job_id: str,
        status: Status,
        *,
        error: str | None = None,
        progress: dict[str, Any] | None = None,
        figures: dict[str, Any] | None = None,
    ) -> None:
        """A running job's end: done, failed or cancelled."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status = ?, finished = ?, error = ?, "
                "progress = COALESCE(?, progress), figures = COALESCE(?, figures) WHERE id = ?",
                (
                    status.value,
                    time.time(),
                    error,
                    json.dumps(progress) if progress is not None else None,
                    json.dumps(figures) if figures is not None else None,
                    job_id,
                ),
            )

    def cancel_queued(self, job_id: str) -> bool:
        """Cancel a job that has not started; False if it is not queued (any more)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET status = ?, finished = ? WHERE id = ? AND status = ?",
                (Status.CANCELLED.value, time.time(), job_id, Status.QUEUED.value),
            )
            return cur.rowcount == 1

    def requeue(self, job_id: str) -> None:
        """A running job back in the queue (the service stopped before it ended)."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status = ?, started = NULL, progress = '{}' WHERE id = ? AND status = ?",
                (Status.QUEUED.value, job_id, Status.RUNNING.value),
            )

    def recover(self) -> list[Job]:
        """Every job a previous process left running (it was killed), back in the queue, in
        their order. Returns them, so that the caller removes what they half wrote."""
        with self._tx() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE status = ? ORDER BY seq", (Status.RUNNING.value,)
            ).fetchall()
            db.execute(
                "UPDATE jobs SET status = ?, started = NULL, progress = '{}' WHERE status = ?",
                (Status.QUEUED.value, Status.RUNNING.value),
            )
        return [_job(r) for r in rows]


def _job(row: tuple[Any, ...]) -> Job:
    (
        job_id,
        status,
        input,
        output,
        options,
        created,
        started,
        finished,
        progress,
        figures,
        error,
        attempts,
    ) = row
    return Job(
        job_id,
        Status(status),
        input,
        output,
        json.loads(options),
        created,
        started,
        finished,
        json.loads(progress),
        json.loads(figures),
        error,
        attempts,
    )
