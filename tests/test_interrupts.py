"""SIGINT and SIGTERM on a real `python -m vsr upscale` process: it stops within seconds with
130 / 143 and leaves neither the output nor its hidden temporary file behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, Vsr

from vsr.errors import Interrupted
from vsr.lab.media import synth_video
from vsr.pipeline import interrupts

SIGNALS = [pytest.param(signal.SIGINT, 130, id="SIGINT"), pytest.param(signal.SIGTERM, 143, id="SIGTERM")]
#: How long a signalled run may take to clean up and exit.
EXIT_WITHIN = 5.0


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 frames of 160x90 H.264 + AAC: several seconds of work for vsr on two cores."""
    return synth_video(tmp_path_factory.mktemp("signals") / "long.mp4", n=400, size=(160, 90), bframes=False)


pytestmark = pytest.mark.usefixtures("sigint_default")  # tests/conftest.py


@pytest.fixture
def spawn():
    """Start vsr children; any still running when the test ends is killed."""
    children: list[Vsr] = []

    def start(*args: object, **kw: Any) -> Vsr:
        child = Vsr(*args, **kw)
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()
        if child.proc.stdin:
            child.proc.stdin.close()
        if child.proc.stderr:
            child.proc.stderr.close()


def _is_progress_with_frames(line: str) -> bool:
    import json

    try:
        rec = json.loads(line)
    except ValueError:
        return False
    return bool(rec.get("event") == "progress" and rec.get("frames", 0) > 0)


def _assert_clean_interrupt(child: Vsr, signum: int, expected: int, out_dir: Path, sent: float) -> None:
    status = child.wait_exit(timeout=EXIT_WITHIN + 10)
    took = time.monotonic() - sent
    assert status == expected, f"{signal.Signals(signum).name} gave {status}: {child.stderr}"
    assert took < EXIT_WITHIN, f"took {took:.1f}s to stop"
    assert "Traceback" not in child.stderr, child.stderr
    assert child.lines and child.lines[-1] == "vsr: interrupted; partial output removed\n", child.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("signum, expected", SIGNALS)
def test_signal_while_working_stops_and_removes_the_partial_output(
    long_clip: Path, out_dir: Path, spawn, signum: int, expected: int
) -> None:
    """A signal in the middle of a run exits 128+signal within seconds and deletes the partial output."""
    child = spawn("upscale", long_clip, out_dir / "out.mp4", "--preset", "ultrafast", "--progress", "json")
    child.wait_line(_is_progress_with_frames)
    # The hidden temporary file is there once the muxer has written (frames are encoding).
    deadline = time.monotonic() + 10
    while not list(out_dir.glob(".out.vsr-*.partial.mp4")):
        assert child.proc.poll() is None, child.stderr
        assert time.monotonic() < deadline, sorted(p.name for p in out_dir.iterdir())
        time.sleep(0.01)
    assert not (out_dir / "out.mp4").exists()
    sent = time.monotonic()
    child.proc.send_signal(signum)
    _assert_clean_interrupt(child, signum, expected, out_dir, sent)


@pytest.mark.parametrize("signum, expected", SIGNALS)
def test_signal_before_the_first_frame_still_exits_cleanly(
    long_clip: Path, out_dir: Path, spawn, signum: int, expected: int
) -> None:
    """A signal as soon as the model is loaded, before any frame is decoded, exits 128+signal with
    nothing left behind."""
    child = spawn(
        "upscale", long_clip, out_dir / "out.mp4", "--preset", "ultrafast", "--progress", "none", "--verbose"
    )
    # Logged from the model loader inside the CLI's signal handling, before the input is opened.
    child.wait_line(lambda line: line.startswith("vsr: model "))
    sent = time.monotonic()
    child.proc.send_signal(signum)
    _assert_clean_interrupt(child, signum, expected, out_dir, sent)


@pytest.mark.parametrize("signum, expected", SIGNALS)
def test_signal_while_waiting_for_standard_input_exits(
    out_dir: Path, spawn, signum: int, expected: int
) -> None:
    """A signal while vsr waits for the first bytes on standard input stops it with 128+signal, without
    needing EOF."""
    child = spawn(
        "upscale",
        "-",
        out_dir / "out.mp4",
        "--input-format",
        "mpegts",
        "--preset",
        "ultrafast",
        "--verbose",
        stdin=subprocess.PIPE,
    )
    child.wait_line(lambda line: line.startswith("vsr: model "))
    time.sleep(0.5)  # now blocked reading the (open, silent) pipe
    assert child.proc.poll() is None, child.stderr
    sent = time.monotonic()
    child.proc.send_signal(signum)
    try:
        child.proc.wait(timeout=EXIT_WITHIN)
        stopped = True
    except subprocess.TimeoutExpired:
        stopped = False
    if not stopped:
        # Show what happens once the input ends, then fail: the signal alone did not stop it.
        assert child.proc.stdin is not None
        child.proc.stdin.close()
        status = child.wait_exit(timeout=10)
        pytest.fail(
            f"{signal.Signals(signum).name} did not stop vsr while it waited for standard "
            f"input; after EOF it exited {status} with stderr: {child.stderr!r}"
        )
    _assert_clean_interrupt(child, signum, expected, out_dir, sent)


@pytest.mark.slow
def test_repeated_sigint_while_unwinding_still_exits_130(long_clip: Path, out_dir: Path, spawn) -> None:
    """Ctrl-C pressed again and again while vsr unwinds still ends in exit 130, no traceback and no
    partial output."""
    child = spawn("upscale", long_clip, out_dir / "out.mp4", "--preset", "ultrafast", "--progress", "json")
    child.wait_line(_is_progress_with_frames)
    sent = time.monotonic()
    while child.proc.poll() is None and time.monotonic() - sent < EXIT_WITHIN:
        child.proc.send_signal(signal.SIGINT)
        time.sleep(0.005)
    status = child.wait_exit(timeout=10)
    assert status == 130, f"exit {status}: {child.stderr}"
    assert time.monotonic() - sent < EXIT_WITHIN
    assert "Traceback" not in child.stderr, child.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == []


def test_a_signal_whose_exception_python_cannot_raise_is_kept_for_the_next_check() -> None:
    """A SIGINT handled where Python can only print and drop an exception (a weakref callback,
    as when a finished run's threads are freed) is not lost and prints nothing: the command's
    next check raises it. (Before: 'Exception ignored ... Interrupted' and the run went on
    to exit 0.)"""
    seen: list[object] = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        with interrupts.handled() as signals:

            class Dropped:
                pass

            obj = Dropped()
            ref = weakref.ref(obj, lambda _: signal.raise_signal(signal.SIGINT))
            del obj
            assert ref() is None and seen == []
            with pytest.raises(Interrupted) as raised:
                signals.check()
            assert raised.value.signum == signal.SIGINT
            signals.check()  # raised once only
    finally:
        sys.unraisablehook = old_hook


_START_UP = """
import builtins, os, signal, sys
point = sys.argv[1]
sys.argv = ["vsr", *sys.argv[2:]]
real_import = builtins.__import__

def interrupt_on_import(name, *args, **kwargs):
    if name == point:
        builtins.__import__ = real_import
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, *args, **kwargs)

builtins.__import__ = interrupt_on_import
if point == "parse":  # after the CLI's imports, before its handlers: while parsing arguments
    import argparse
    parse = argparse.ArgumentParser.parse_args
    def parse_and_interrupt(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return parse(self, *args, **kwargs)
    argparse.ArgumentParser.parse_args = parse_and_interrupt
from vsr.__main__ import run
run()
"""


@pytest.mark.parametrize("point", ["app.cli", "numpy", "parse"])  # app.cli: `from .app.cli import`, relative
def test_ctrl_c_during_start_up_is_one_line_and_130(point: str, long_clip: Path, out_dir: Path) -> None:
    """Ctrl-C while the `vsr` command is still importing (the CLI, numpy) or parsing its
    arguments, before vsr.pipeline.interrupts handles signals, ends with one line and status 130, not
    a KeyboardInterrupt traceback and -2; nothing is written. The signal is sent from inside
    the process at that exact point, so the test does not race start-up time."""
    out = out_dir / "o.mp4"
    proc = subprocess.run(
        [sys.executable, "-c", _START_UP, point, "upscale", str(long_clip), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 130 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("vsr: interrupted")
    assert not list(out_dir.iterdir())
