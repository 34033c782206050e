"""Behaviour on damaged input, odd edge cases and faults: keep working, lose nothing, exit clearly."""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import (
    ROOT,
    FakeUpscaler,
    damage_middle,
    leftovers,
    onnx_model,
    rss_kib,
    run_cli,
    run_on_terminal,
    run_process,
    time_of,
    video_stats,
)

from vsr import ModelOptions, Pipeline, SinkOptions, SourceOptions
from vsr.app.cli import main
from vsr.lab.media import synth_video
from vsr.paths import SAMPLE


def upscale(*argv: str) -> tuple[int, str]:
    """`vsr upscale ARGV --preset ultrafast --progress none` in this process."""
    return run_cli("upscale", *argv, "--preset", "ultrafast", "--progress", "none")


@pytest.fixture
def damaged_ts(tmp_path: Path) -> tuple[Path, Path]:
    """(clean, damaged) MPEG-TS pair: 60 frames, bytes flipped in the middle of the file."""
    clean = synth_video(
        tmp_path / "clean.ts", n=60, size=(160, 96), container_format="mpegts", options={"g": "12"}
    )
    return clean, damage_middle(clean, tmp_path / "damaged.ts")


def decoded_times(path: Path) -> list[float]:
    """Frame times a tolerant PyAV decode gets (errors skipped)."""
    times = []
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        for packet in c.demux(v):
            try:
                times += [float(time_of(f)) for f in packet.decode()]
            except av.error.FFmpegError:
                pass
    return times


def test_skip_keeps_every_decodable_frame_at_its_time_and_reports_the_damage(
    damaged_ts: tuple[Path, Path], tmp_path: Path
) -> None:
    """--on-error skip (the default) upscales through damage and says where it was."""
    clean, damaged = damaged_ts
    out = tmp_path / "out.mp4"
    rc, err = upscale(str(damaged), str(out))
    assert rc == 0, err
    assert "input damage:" in err and "Traceback" not in err
    got = video_stats(out)["times"]
    # The frames in the decoder's order with its timestamps, put in increasing order
    # (vsr.media.timestamps: a damaged stream can attach them out of order, as FFmpeg 8's decoder
    # does to one frame here; the frames themselves are never reordered).
    assert got == pytest.approx(sorted(decoded_times(damaged)), abs=1e-3)
    assert got == pytest.approx(video_stats(clean)["times"][: len(got)], abs=1e-3) or len(got) < 60


def test_stop_ends_at_the_first_damage_with_exit_1_and_no_output(
    damaged_ts: tuple[Path, Path], tmp_path: Path
) -> None:
    """--on-error stop gives one line naming the frame and time, exit 1, no file."""
    _, damaged = damaged_ts
    out = tmp_path / "out.mp4"
    rc, err = upscale(str(damaged), str(out), "--on-error", "stop")
    assert rc == 1
    first = err.splitlines()[0]
    assert first.startswith("vsr: ") and "frame" in first and "s in" in first
    assert "Traceback" not in err and not out.exists() and leftovers(tmp_path) == []


def test_zeroed_range_loses_only_the_frames_it_destroyed(tmp_path: Path) -> None:
    """Frames around a zeroed range come through with their own timestamps (no drift)."""
    clean = synth_video(
        tmp_path / "clean.ts", n=60, size=(96, 64), container_format="mpegts", options={"g": "10"}
    )
    data = bytearray(clean.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 3000] = bytes(3000)
    damaged = tmp_path / "zeroed.ts"
    damaged.write_bytes(bytes(data))
    out = tmp_path / "out.mkv"
    rc, err = upscale(str(damaged), str(out))
    assert rc == 0, err
    got = video_stats(out)["times"]
    expected = decoded_times(damaged)
    assert len(got) == len(expected) < 60
    offset = got[0] - expected[0]  # Matroska may shift the whole file (AAC priming)
    assert np.array(got) - offset == pytest.approx(expected, abs=2e-3)


def test_mid_stream_resolution_change_is_fitted_into_the_first_geometry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An MPEG-TS whose size changes mid-stream (two recordings joined, the second's clock
    from 0 again) is upscaled whole into the first frame's output size, the change said
    once and the clock's jump mended (tests/test_resolution.py and test_timeline.py check
    the pictures and times)."""
    a = synth_video(tmp_path / "a.ts", n=10, size=(64, 48), container_format="mpegts", audio=None)
    b = synth_video(tmp_path / "b.ts", n=10, size=(80, 64), container_format="mpegts", audio=None)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    out = tmp_path / "out.mp4"
    with caplog.at_level("WARNING", logger="vsr"):
        stats = Pipeline(
            SourceOptions(str(joined)),
            ModelOptions(),
            SinkOptions(str(out), preset="ultrafast"),
            upscaler=FakeUpscaler(2),
        ).run()
    assert stats.frames >= 19  # the join may cost the frame at the seam
    assert video_stats(out)["sizes"] == {(128, 96)}
    assert sum("picture changes from 64x48 to 80x64" in r.getMessage() for r in caplog.records) == 1
    assert stats.discontinuities == 1 and stats.size_changes == 1


@pytest.mark.parametrize("size,n", [((64, 48), 1), ((2, 2), 5)])
def test_one_frame_and_two_by_two_videos_are_upscaled(size: tuple[int, int], n: int, tmp_path: Path) -> None:
    """A one-frame video and a 2x2 video both come out at 3x with every frame."""
    src = synth_video(tmp_path / "in.mkv", n=n, size=size, codec="ffv1", pix_fmt="yuv444p", audio=None)
    out = tmp_path / "out.mkv"
    rc, err = upscale(str(src), str(out))
    assert rc == 0, err
    stats = video_stats(out)
    assert len(stats["times"]) == n
    assert stats["sizes"] == {(size[0] * 3, size[1] * 3)}


def test_frames_beyond_the_pixel_budget_are_refused_before_any_work(tmp_path: Path) -> None:
    """--max-pixels refuses a larger input with exit 2 and a hint, before allocating for it."""
    src = synth_video(tmp_path / "in.mp4", n=2, size=(64, 48))
    out = tmp_path / "out.mp4"
    rc, err = upscale(str(src), str(out), "--max-pixels", "1000")
    assert rc == 2
    assert "64x48" in err and "--max-pixels" in err and not out.exists()
    assert leftovers(tmp_path) == []


def _identity_model(path: Path, fail_unless: tuple[int, int] | None = None) -> Path:
    """An x1 model; with `fail_unless`, it adds a constant of that size, so onnxruntime fails
    on every other frame size (after the loader's probe at that size succeeded)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Identity", ["input"], ["output" if not fail_unless else "mid"])]
    inits = []
    if fail_unless:
        h, w = fail_unless
        inits.append(numpy_helper.from_array(np.zeros((1, 1, h, w), np.float32), "zero"))
        nodes.append(helper.make_node("Add", ["mid", "zero"], ["output"]))
    g = helper.make_graph(
        nodes,
        "x1",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        inits,
    )
    onnx.save(onnx_model(g), str(path))
    return path


def test_model_failing_mid_run_is_one_line_exit_1_and_no_output(tmp_path: Path) -> None:
    """An onnxruntime error on real frames (the probe passed) is a clear error, not a traceback."""
    model = _identity_model(tmp_path / "fails.onnx", fail_unless=(24, 20))
    src = synth_video(tmp_path / "in.mp4", n=8)
    out = tmp_path / "out.mp4"
    rc, err = upscale(str(src), str(out), "--model", str(model))
    assert rc == 1, err
    assert err.startswith("vsr: model 'fails.onnx' failed on a [") and "Traceback" not in err
    assert not out.exists() and leftovers(tmp_path) == []


def test_model_files_must_be_onnx(tmp_path: Path) -> None:
    """A model path without the .onnx suffix is refused (exit 2): vsr loads ONNX only."""
    model = _identity_model(tmp_path / "x1.onnx")
    renamed = model.rename(tmp_path / "x1.ort")
    src = synth_video(tmp_path / "in.mp4", n=2)
    rc, err = upscale(str(src), str(tmp_path / "out.mp4"), "--model", str(renamed))
    assert rc == 2 and ".onnx" in err


def test_runs_leave_no_open_file_descriptors(tmp_path: Path) -> None:
    """Successful and failed runs close every file they opened."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc")
    src = synth_video(tmp_path / "in.mp4", n=6)
    upscale(str(src), str(tmp_path / "warm.mp4"))  # first-use imports may open files for good
    before = set(os.listdir("/proc/self/fd"))
    rc, _ = upscale(str(src), str(tmp_path / "ok.mp4"))
    assert rc == 0
    rc, _ = upscale(str(src), str(tmp_path / "ok.mp4"))  # exists: fails after opening the input
    assert rc == 2
    rc, _ = upscale(
        str(src),
        str(tmp_path / "bad.mp4"),
        "--model",
        str(_identity_model(tmp_path / "f.onnx", fail_unless=(24, 20))),
    )
    assert rc == 1
    assert set(os.listdir("/proc/self/fd")) - before == set()


def test_full_disk_during_the_run_removes_the_partial_file(tmp_path: Path) -> None:
    """ENOSPC on a tiny tmpfs: exit 1, 'No space left on device', nothing left on the disk."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=False, capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here")
    try:
        src = synth_video(tmp_path / "in.mp4", n=40, size=(160, 96))
        proc = run_process("upscale", src, mnt / "out.mp4", "--preset", "ultrafast", "--crf", "0")
        assert proc.returncode == 1, proc.stderr
        assert "No space left on device" in proc.stderr and "Traceback" not in proc.stderr
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=False, capture_output=True)


@pytest.mark.slow
def test_memory_stays_flat_over_a_6000_frame_stream(tmp_path: Path) -> None:
    """RSS after 6 000 frames is what it was after the first 1 000 (bounded queues, no leaks:
    a leak of 2 KB a frame would show; 6 000 rather than 10 000 frames keeps that power at
    half the suite time)."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc")
    src = synth_video(
        tmp_path / "long.ts", n=6_000, size=(32, 32), container_format="mpegts", audio="aac", bframes=False
    )
    out = tmp_path / "out.ts"
    p = Pipeline(
        SourceOptions(str(src)),
        ModelOptions(batch=4),
        SinkOptions(str(out), preset="ultrafast"),
        upscaler=FakeUpscaler(2),
    )
    samples: list[tuple[int, int]] = []
    for snap in p.progress(interval=0.05):
        samples.append((snap.frames, rss_kib()))
    assert p.stats().frames == 6_000
    early = max(r for f, r in samples if 500 <= f <= 1500)
    late = max(r for f, r in samples if f >= 5000)
    assert late <= early * 1.05 + 8 * 1024, (early, late)  # KiB


@pytest.mark.parametrize(
    "given,expected",
    [
        ([0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5]),  # clean: untouched
        ([1, 2, 4, 3, 5, 7, 6, 8], [1, 2, 3, 4, 5, 6, 7, 8]),  # packed B-frames (AVI): reordered
        ([0, None, 2, None, None, 5], [0, 1, 2, 3, 4, 5]),  # missing: extrapolated
        ([0, 1, 1, 1, 4, 5], [0, 1, 2, 3, 4, 5]),  # duplicates: nudged forward
        ([10, 11, 3, 4, 14, 15], [3, 4, 10, 11, 14, 15]),  # a jump back: sorted within the window
    ],
)
def test_timestamp_repair_gives_strictly_increasing_pts(given: list[int | None], expected: list[int]) -> None:
    """Missing, repeated and out-of-order pts come out strictly increasing, frames unmoved."""
    from fractions import Fraction

    from vsr.media.timestamps import Pending, TimestampRepair

    repair = TimestampRepair(Fraction(1, 25), Fraction(25), depth=4)
    out = []
    for i, pts in enumerate(given):
        out += repair.push(Pending(i, 0.0, None, None), pts)
    out += repair.flush()
    assert [f.index for f in out] == list(range(len(given)))
    got = [f.pts for f in out]
    assert all(b > a for a, b in itertools.pairwise(got))
    assert got == expected


def test_progress_works_when_the_container_does_not_say_how_many_frames(tmp_path: Path) -> None:
    """Matroska headers carry no frame count: JSON progress reports frames with total null."""
    import json

    src = synth_video(tmp_path / "in.mkv", n=40, size=(96, 64))
    with av.open(str(src)) as c:
        assert c.streams.video[0].frames == 0
    err = io.StringIO()
    rc = main(
        ["upscale", str(src), str(tmp_path / "out.mkv"), "--preset", "ultrafast", "--progress", "json"],
        stderr=err,
    )
    assert rc == 0
    records = [json.loads(x) for x in err.getvalue().splitlines() if x.startswith("{")]
    assert records[-1]["event"] == "done" and records[-1]["frames"] == 40
    assert all(r["frames"] <= 40 for r in records)


def test_progress_total_respects_frames_and_the_bar_draws_on_a_terminal(tmp_path: Path) -> None:
    """--frames N makes N the progress total; on a terminal a tqdm bar reaches N/N."""
    import json

    src = synth_video(tmp_path / "in.mp4", n=30)
    err = io.StringIO()
    assert (
        main(
            [
                "upscale",
                str(src),
                str(tmp_path / "a.mp4"),
                "--preset",
                "ultrafast",
                "--progress",
                "json",
                "--frames",
                "10",
            ],
            stderr=err,
        )
        == 0
    )
    records = [json.loads(x) for x in err.getvalue().splitlines() if x.startswith('{"event": "progress"')]
    assert records and all(r["total"] == 10 for r in records)

    status, out = run_on_terminal(
        "upscale", src, tmp_path / "b.mp4", "--preset", "ultrafast", "--frames", "10"
    )
    assert status == 0
    assert b"10/10" in out and b"frame/s" in out


def test_unseekable_mp4_on_a_pipe_says_what_to_send_instead(tmp_path: Path) -> None:
    """An MP4 with its index at the end cannot be read from a pipe: exit 2 with a hint.
    (Tiny files work: FFmpeg buffers them whole. The 140 kB sample does not fit.)"""
    src = SAMPLE
    with open(src, "rb") as f:
        data = f.read()
    proc = subprocess.run(
        [sys.executable, "-m", "vsr", "upscale", "-", str(tmp_path / "o.mp4")],
        check=False,
        input=data,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "hint: a pipe cannot be rewound" in err and not (tmp_path / "o.mp4").exists()


@pytest.mark.slow
def test_listing_into_a_closed_pipe_is_not_an_error() -> None:
    """`vsr models | head -1` exits 0 without a word on stderr: here the reader of vsr's
    standard output is gone before vsr writes a byte, so the write fails every time (with
    `| head -1` it failed only when vsr was still writing as head exited). The listing is
    the same with or without timing (test_cli's test_models_json_gives_names_and_scales
    times the models): `--no-timing` leaves the 15 CPU seconds of measuring out."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "vsr", "models", "--no-timing"],
            check=False,
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
