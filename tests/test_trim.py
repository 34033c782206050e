"""`vsr upscale --start/--duration`: a part of the input, its audio trimmed with it, every
stream moved earlier by the same amount so they stay in sync and the output starts where an
untrimmed run's would. Real clips, the real fast model, real encoders.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from helpers import ROOT, assert_user_error, end_of, leftovers, run_cli, time_of

import vsr
from vsr.lab.media import synth_video

MODEL = ["--quality", "fast", "--preset", "ultrafast", "--device", "cpu"]
#: AAC at 48 kHz: 1024 samples a packet; a trim keeps whole packets.
PACKET = 1024 / 48000


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four seconds at 25 fps with B-frames, a keyframe every second and AAC audio."""
    return synth_video(tmp_path_factory.mktemp("trim") / "in.mp4", n=100, fps=25, options={"g": "25"})


def streams(path: Path) -> dict[str, Any]:
    """Video frame times and pictures, and the audio packets' first start and last end (s)."""
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    with av.open(str(path)) as c:
        audio = [p for p in c.demux(audio=0) if p.size] if c.streams.audio else []
    return {
        "times": [float(time_of(f)) for f in frames],
        "pictures": [f.to_ndarray() for f in frames],
        "audio": (
            min(float(time_of(p)) for p in audio),
            max(float(end_of(p)) for p in audio),
        )
        if audio
        else None,
    }


def test_start_and_duration_keep_that_span_and_its_audio_in_sync(clip: Path, tmp_path: Path) -> None:
    """--start 1.5 --duration 1 writes the 25 frames from 1.52 s, pixel for pixel those of an
    untrimmed run (lossless FFV1), every time 1.5 s earlier: 1.5 s is output time 0, as the
    input's start; the audio starts there (to within one packet) and ends with the video."""
    whole, part = tmp_path / "whole.mkv", tmp_path / "part.mkv"
    assert run_cli("upscale", clip, whole, *MODEL, "--codec", "ffv1")[0] == 0
    status, err = run_cli(
        "upscale", clip, part, *MODEL, "--codec", "ffv1", "--start", "1.5", "--duration", "1"
    )
    assert status == 0, err
    assert "landed after" not in err
    w, p = streams(whole), streams(part)
    assert len(p["pictures"]) == 25
    first = 38  # 38 / 25 = 1.52 s: the first frame at or after 1.5 s
    for a, b in zip(p["pictures"], w["pictures"][first : first + 25], strict=True):
        np.testing.assert_array_equal(a, b)
    assert p["times"] == pytest.approx([t - 1.5 for t in w["times"][first : first + 25]], abs=1e-3)
    assert p["times"][0] == pytest.approx(0.02, abs=1e-3)
    a0, a1 = p["audio"]
    end = p["times"][-1] + 0.04  # the last frame's end: 1.02 s
    assert 0 <= a0 <= PACKET + 1e-3
    assert end - 1e-3 <= a1 <= end + PACKET + 1e-3
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_a_transport_stream_keeps_its_start_time_and_a_pipe_trims_the_same(tmp_path: Path) -> None:
    """An MPEG-TS whose first frame is at 1.4 s, trimmed from 1 s: the output's first frame is
    at 1.4 s, as an untrimmed run's is, with the audio shifted alike; read from a pipe (decoded
    up to the start, no seeking) it comes out the same."""
    src = synth_video(
        tmp_path / "in.ts", n=75, fps=25, container_format="mpegts", start=1.4, options={"g": "25"}
    )
    from_file, from_pipe = tmp_path / "file.mp4", tmp_path / "pipe.mp4"
    status, err = run_cli("upscale", src, from_file, *MODEL, "--start", "1", "--duration", "0.5")
    assert status == 0, err
    with src.open("rb") as stdin:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "vsr",
                "upscale",
                "-",
                str(from_pipe),
                "--input-format",
                "mpegts",
                *MODEL,
                "--start",
                "0:01",
                "--duration",
                "0.5",
            ],
            stdin=stdin,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    f, p = streams(from_file), streams(from_pipe)
    assert len(f["times"]) == 13  # 2.40, 2.44, ... 2.88 s in the input
    assert f["times"][0] == pytest.approx(1.4, abs=1e-3)
    assert f["times"] == pytest.approx(p["times"], abs=1e-6)
    assert f["audio"] == pytest.approx(p["audio"], abs=1e-6)
    assert 1.4 <= f["audio"][0] <= 1.4 + PACKET + 1e-3


def test_re_encoded_audio_is_trimmed_too(clip: Path, tmp_path: Path) -> None:
    """WebM re-encodes the AAC as Opus: the decoded audio is trimmed and re-timed the same way."""
    out = tmp_path / "part.webm"
    status, err = run_cli("upscale", clip, out, *MODEL, "--start", "2", "--duration", "0.8")
    assert status == 0, err
    s = streams(out)
    assert len(s["times"]) == 20 and s["times"][0] == pytest.approx(0, abs=1e-3)
    a0, a1 = s["audio"]
    # Opus starts with its encoder's pre-skip, a few ms before 0, trimmed or not
    assert -0.01 <= a0 <= PACKET + 1e-3 and 0.8 - 1e-3 <= a1 <= 0.8 + 0.03


def test_audio_with_coarse_ticks_moves_by_the_exact_shift(tmp_path: Path) -> None:
    """AVI times video in frames (40 ms ticks) and MP3 in packets (24 ms ticks at 48 kHz): a
    start of 1.5 s is the frame at 1.52 s, and the copied audio moves by exactly 1.52 s (63.3
    of its ticks), not by a whole number of its ticks (8 ms out of sync)."""
    src = synth_video(
        tmp_path / "in.avi", n=75, fps=25, codec="mpeg4", audio="libmp3lame", options={"g": "25"}
    )
    out = tmp_path / "out.mkv"
    status, err = run_cli("upscale", src, out, *MODEL, "--start", "1.5", "--duration", "1")
    assert status == 0, err
    s = streams(out)
    assert s["times"][0] == pytest.approx(0, abs=1e-3)  # the frame at 1.52 s
    assert s["audio"][0] == pytest.approx(0.016, abs=1e-3)  # the packet at 64 x 24 ms = 1.536 s


@pytest.mark.slow
def test_the_api_trims_and_progress_counts_the_span(clip: Path, tmp_path: Path) -> None:
    """`upscale_video(SourceOptions(start=, duration=))` trims as the CLI does; --progress
    json's total is the span's frame count, not the input's."""
    fast = vsr.ModelOptions(quality="fast", device=vsr.Device.CPU)
    stats = vsr.upscale_video(
        vsr.SourceOptions(str(clip), start=3.0, duration=5.0),
        vsr.SinkOptions(str(tmp_path / "api.mp4"), preset="ultrafast"),
        model=fast,
    )
    assert stats.frames == 25  # from 3 s to the end
    bad_spans = (
        (vsr.SourceOptions(str(clip), start=-1.0), "a start is 0 or more"),
        (vsr.SourceOptions(str(clip), duration=0.0), "more than 0"),
    )
    for bad, words in bad_spans:
        with pytest.raises(vsr.UsageError, match=words):
            vsr.upscale_video(bad, tmp_path / "bad.mp4", model=fast)
    assert not (tmp_path / "bad.mp4").exists()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vsr",
            "upscale",
            str(clip),
            str(tmp_path / "p.mp4"),
            *MODEL,
            "--start",
            "1",
            "--duration",
            "0.5",
            "--progress",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"frames": 13, "total": 13' in proc.stderr


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--start", "4"], "--start 4s is past the end"),
        (["--start", "3.99"], "past the last video frame"),
        (["--start", "1", "--segments", "2"], "cannot be combined with segments"),
    ],
)
def test_a_span_outside_the_input_is_one_clear_line(
    clip: Path, tmp_path: Path, args: list[str], mentions: str
) -> None:
    """A start at or past the end, or a trim of a split job: exit 2, one line, nothing written."""
    status, err = run_cli("upscale", clip, tmp_path / "out.mp4", *MODEL, *args)
    assert_user_error(status, err, mentions=mentions)
    assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--start", "1:x"], "argument --start: expected seconds or [HH:]MM:SS[.ms], got '1:x'"),
        (["--start", "-1"], "argument --start: must be 0 or more seconds, got '-1'"),
        (["--duration", "0"], "argument --duration: must be more than 0 seconds, got '0'"),
    ],
)
def test_a_time_that_is_not_one_is_one_line(
    clip: Path, tmp_path: Path, args: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A time that cannot be read, a negative start or a zero duration: exit 2 and one line."""
    assert run_cli("upscale", clip, tmp_path / "out.mp4", *args)[0] == 2
    assert capsys.readouterr().err.splitlines() == [f"vsr upscale: {line}"]


def test_times_read_as_ffmpeg_writes_them() -> None:
    """Seconds, MM:SS and HH:MM:SS, with fractions."""
    from vsr.app.arguments import time_value as _time

    assert [_time(t) for t in ("90", "1.5", "1:30", "01:00:01.25", "0")] == [90, 1.5, 90, 3601.25, 0]


def test_an_image_has_no_later_start(tmp_path: Path) -> None:
    """--start on a still image says it is one frame."""
    image = tmp_path / "in.png"
    with av.open(str(image), "w") as c:
        s = c.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = 16, 12, "rgb24"
        for pk in s.encode(av.VideoFrame.from_ndarray(np.zeros((12, 16, 3), np.uint8), "rgb24")):
            c.mux(pk)
        c.mux(s.encode(None))
    status, err = run_cli("upscale", image, tmp_path / "out.png", *MODEL, "--start", "1")
    assert_user_error(status, err, mentions="it is an image")
