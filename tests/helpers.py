"""Helpers the test files share: running vsr's CLI (in this process or as a real one) and
looking for leftovers. One definition each, imported as `from helpers import ...`."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from vsr.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: object) -> tuple[int, str]:
    """Run `vsr ARGS...` in this process; (exit status, what it wrote to stderr)."""
    err = io.StringIO()
    status = main([str(a) for a in args], stderr=err)
    return int(status), err.getvalue()


def run_process(*args: object, timeout: float = 60,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m vsr ARGS...` as a real process from the checkout."""
    return subprocess.run([sys.executable, "-m", "vsr", *map(str, args)], cwd=ROOT, check=False,
                          capture_output=True, text=True, timeout=timeout, env=env)


def listing(folder: Path) -> list[str]:
    """Every entry in `folder`, hidden temporary files included."""
    return sorted(p.name for p in folder.iterdir())


def leftovers(folder: Path) -> list[str]:
    """vsr's temporary files (`.NAME.vsr-XXXX.partial.EXT`) left in `folder`: none, ever."""
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def assert_user_error(status: int, err: str, expected: int = 2, *, mentions: str = "") -> str:
    """A user error: the documented status, one 'vsr: ' line (+ optional 'hint: '), no traceback."""
    assert status == expected, err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert 1 <= len(lines) <= 2, err
    assert lines[0].startswith("vsr: "), err
    if len(lines) == 2:
        assert lines[1].startswith("hint: "), err
    assert mentions.lower() in lines[0].lower(), err
    return lines[0]
