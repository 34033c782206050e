"""Behaviour of the threaded pipeline: order, timing, back-pressure and failure handling.

These use a numpy fake upscaler to make stage timing controllable; the media path (PyAV
decode/encode) is real, and the real model is covered by test_model/test_containers.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt
import pytest
from helpers import FakeUpscaler, leftovers, video_stats

from vsr import ModelOptions, Pipeline, SinkOptions, SourceOptions
from vsr.errors import SinkError, VsrError
from vsr.lab.media import synth_video
from vsr.paths import ROOT


def _run(src: Path, dst: Path, up: FakeUpscaler, batch: int = 4, **sink: Any) -> Pipeline:
    p = Pipeline(
        SourceOptions(str(src)),
        ModelOptions(batch=batch),
        SinkOptions(str(dst), preset="ultrafast", **sink),
        upscaler=up,
    )
    p.run()
    return p


def test_every_frame_arrives_once_in_order_with_its_timestamp(tmp_path: Path) -> None:
    """File mode keeps every frame, in order, with the input's pts, even with a slow model."""
    src = synth_video(tmp_path / "in.mp4", n=20, bframes=True)
    dst = tmp_path / "out.mp4"
    p = _run(src, dst, FakeUpscaler(2, delay=0.02), batch=3)
    stats = p.stats()
    assert stats.frames == 20 and stats.output_size == (128, 96)
    assert video_stats(dst)["times"] == pytest.approx(video_stats(src)["times"], abs=1e-6)
    assert video_stats(dst)["sizes"] == {(128, 96)}


def test_variable_frame_rate_timing_survives(tmp_path: Path) -> None:
    """A VFR input keeps its uneven frame durations (Matroska shifts the whole file so the
    AAC priming samples are not negative; differences between frames are what must hold)."""
    src = synth_video(tmp_path / "vfr.mp4", n=15, vfr=True)
    dst = tmp_path / "out.mkv"
    _run(src, dst, FakeUpscaler(2))
    t_in, t_out = video_stats(src)["times"], video_stats(dst)["times"]
    assert np.diff(t_out) == pytest.approx(np.diff(t_in), abs=1e-3)
    assert len(set(np.round(np.diff(t_out), 3))) == 2


def test_model_failure_is_reraised_with_its_type_and_stage_and_leaves_no_file(tmp_path: Path) -> None:
    """An exception in the model stage stops everything and surfaces once, output removed."""
    src = synth_video(tmp_path / "in.mp4", n=30)
    dst = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="fake model failure") as info:
        _run(src, dst, FakeUpscaler(2, fail_at=10), batch=2)
    assert any("vsr-upscale" in n for n in info.value.__notes__)
    assert not dst.exists() and leftovers(tmp_path) == []


def test_model_output_of_the_wrong_size_is_an_error_not_a_stretched_video(tmp_path: Path) -> None:
    """A model that returns the wrong size stops the run instead of being rescaled."""

    class WrongSize(FakeUpscaler):
        def __call__(self, y: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
            return np.zeros((len(y), 7, 9), np.uint8)

    src = synth_video(tmp_path / "in.mp4", n=10)
    dst = tmp_path / "out.mp4"
    with pytest.raises(VsrError, match="expected uint8") as info:
        _run(src, dst, WrongSize(2))
    assert any("vsr-upscale" in n for n in info.value.__notes__)
    assert not dst.exists() and leftovers(tmp_path) == []


def test_abort_from_another_thread_stops_promptly_and_removes_the_output(tmp_path: Path) -> None:
    """abort() mid-run ends all stages quickly; the run raises nothing but keeps no file."""
    src = synth_video(tmp_path / "in.mp4", n=60)
    dst = tmp_path / "out.mp4"
    p = Pipeline(
        SourceOptions(str(src)),
        ModelOptions(batch=2),
        SinkOptions(str(dst), preset="ultrafast"),
        upscaler=FakeUpscaler(2, delay=0.05),
    )
    timer = threading.Timer(0.3, p.abort)
    timer.start()
    for _ in p.progress():
        pass
    timer.join()
    assert p.stats().frames < 60
    assert not dst.exists() and leftovers(tmp_path) == []


def test_ctrl_c_as_the_stages_start_joins_the_started_ones_before_closing_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt as the stage threads start (here: right after the third one started,
    where a signal waiting in Thread.start() lands) is re-raised only after every started stage
    has ended; then close() (what a batch calls next) touches nothing a stage still uses: no
    crash, no thread left, no output. (Before: the decode thread went on reading an input
    the main thread had closed - a segfault.)"""
    src = synth_video(tmp_path / "in.mp4", n=120, size=(160, 90), bframes=False)
    dst = tmp_path / "out.mp4"
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        real_start(thread)
        if thread.name == "vsr-compose":
            raise KeyboardInterrupt

    monkeypatch.setattr(threading.Thread, "start", start)
    p = Pipeline(SourceOptions(str(src)), ModelOptions(), SinkOptions(str(dst), preset="ultrafast"))
    try:
        with pytest.raises(KeyboardInterrupt):
            p.run()
        assert [t.name for t in threading.enumerate() if t.name.startswith("vsr-")] == []
    finally:
        p.close()
    assert not dst.exists() and leftovers(tmp_path) == []


def test_stop_finishes_a_valid_shorter_file(tmp_path: Path) -> None:
    """stop() ends the input early but still flushes and keeps a playable output."""
    src = synth_video(tmp_path / "in.mp4", n=60)
    dst = tmp_path / "out.mp4"
    p = Pipeline(
        SourceOptions(str(src)),
        ModelOptions(batch=2),
        SinkOptions(str(dst), preset="ultrafast"),
        upscaler=FakeUpscaler(2, delay=0.03),
    )
    threading.Timer(0.3, p.stop).start()
    stats = p.run()
    assert 0 < stats.frames < 60
    assert len(video_stats(dst)["times"]) == stats.frames


def test_existing_output_is_refused_before_any_work(tmp_path: Path) -> None:
    """Without overwrite an existing output is an error and the file is untouched."""
    src = synth_video(tmp_path / "in.mp4", n=3)
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"keep me")
    with pytest.raises(SinkError, match="already exists"):
        Pipeline(SourceOptions(str(src)), ModelOptions(), SinkOptions(str(dst)), upscaler=FakeUpscaler(2))
    assert dst.read_bytes() == b"keep me"


def test_odd_output_size_is_padded_by_one_pixel_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """x3 of an odd size becomes even for yuv420p by one padded row/column, with a warning;
    a 4:4:4 input keeps 4:4:4 and so needs no padding."""
    src = synth_video(tmp_path / "odd.mkv", n=4, size=(21, 15), codec="ffv1", pix_fmt="yuv444p", audio=None)
    dst = tmp_path / "out.mp4"
    with caplog.at_level("WARNING", logger="vsr"):
        p = _run(src, dst, FakeUpscaler(3), pix_fmt="yuv420p")
    assert p.stats().output_size == (64, 46)
    assert video_stats(dst)["sizes"] == {(64, 46)}
    assert any("padding to 64x46" in r.message for r in caplog.records)
    p = _run(src, tmp_path / "out444.mp4", FakeUpscaler(3))
    assert p.stats().output_size == (63, 45)


def test_max_frames_limits_the_output(tmp_path: Path) -> None:
    """max_frames stops after that many frames."""
    src = synth_video(tmp_path / "in.mp4", n=12)
    dst = tmp_path / "out.mp4"
    p = Pipeline(
        SourceOptions(str(src), max_frames=5),
        ModelOptions(),
        SinkOptions(str(dst), preset="ultrafast"),
        upscaler=FakeUpscaler(2),
    )
    assert p.run().frames == 5
    with av.open(str(dst)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 5


def test_bad_encoder_options_fail_before_any_work(tmp_path: Path) -> None:
    """An encoder option the encoder rejects is reported when the output is opened."""
    src = synth_video(tmp_path / "in.mp4", n=3)
    dst = tmp_path / "out.mp4"
    with pytest.raises(SinkError, match="cannot open video encoder"):
        Pipeline(
            SourceOptions(str(src)),
            ModelOptions(),
            SinkOptions(str(dst), codec_options={"crf": "abc"}),
            upscaler=FakeUpscaler(2),
        )
    assert list(tmp_path.iterdir()) == [src]


@pytest.mark.slow
def test_full_disk_on_the_output_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """Writing into a full device (stdout on /dev/full) fails with ENOSPC text, exit 1."""
    import subprocess

    if not Path("/dev/full").exists():
        pytest.skip("/dev/full not available")
    src = synth_video(tmp_path / "in.mp4", n=30, size=(96, 64))
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "vsr",
                "upscale",
                str(src),
                "-",
                "--format",
                "matroska",
                "--preset",
                "ultrafast",
            ],
            check=False,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
    assert proc.returncode == 1, proc.stderr
    assert "No space left on device" in proc.stderr and "Traceback" not in proc.stderr


def test_native_yuv_path_matches_the_ycrcb_path_and_keeps_colour_tags(tmp_path: Path) -> None:
    """The native 4:2:0 path (default for yuv420p video) gives the same picture as the
    card's YCrCb path within rounding, and keeps the input's colour tags."""
    import cv2

    from vsr.media.color import frame_to_bgr

    # Natural-looking (smooth) content: on synth_video's hard checkerboards the two paths
    # differ by their chroma filters rather than by their colour handling.
    src = tmp_path / "in.mkv"
    rng = np.random.default_rng(7)
    with av.open(str(src), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.colorspace = s.codec_context.color_primaries = s.codec_context.color_trc = 1
        s.codec_context.color_range = 1
        for i in range(6):
            img = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (0, 0), 4)
            img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)
            vf = av.VideoFrame.from_ndarray(cast(npt.NDArray[np.uint8], img), format="bgr24").reformat(
                format="yuv420p", dst_colorspace=1, dst_color_range=1
            )
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    outs = {}
    for color in ("native", "ycrcb"):
        dst = tmp_path / f"{color}.mkv"
        p = Pipeline(
            SourceOptions(str(src)),
            ModelOptions(),
            SinkOptions(str(dst), codec="ffv1", crf=None, preset=None),
            upscaler=FakeUpscaler(3),
            color=color,
        )
        assert p.native == (color == "native")
        p.run()
        with av.open(str(dst)) as c:
            frames = list(c.decode(video=0))
            assert int(frames[0].colorspace) == 1 and int(frames[0].color_primaries) == 1
            outs[color] = np.stack([frame_to_bgr(f) for f in frames]).astype(int)
    diff = np.abs(outs["native"] - outs["ycrcb"])
    assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 8


def test_usage_errors_of_the_pipeline_are_usage_errors(tmp_path: Path) -> None:
    """A negative batch or a missing output are UsageError (exit 2 at the CLI), raised before
    anything is opened."""
    from vsr.errors import UsageError

    src = synth_video(tmp_path / "in.mp4", n=2)
    with pytest.raises(UsageError, match="--batch"):
        Pipeline(
            SourceOptions(str(src)),
            ModelOptions(batch=-1),
            SinkOptions(str(tmp_path / "o.mp4")),
            upscaler=FakeUpscaler(2),
        )
    with pytest.raises(UsageError, match="an output is required"):
        Pipeline(SourceOptions(str(src)), ModelOptions(), None, upscaler=FakeUpscaler(2))
    assert leftovers(tmp_path) == [] and not (tmp_path / "o.mp4").exists()
