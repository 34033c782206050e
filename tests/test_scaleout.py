"""Scale-out: segments cut at keyframes, run on local threads, joined frame-exact, resumable.

Frames are compared after a lossless encode (libx264 CRF 0), so "the same frames" means
bit-identical pictures; timestamps are compared exactly, in seconds, with the source's.
The Ray executor has its own file (test_scaleout_ray.py), skipped without Ray.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from helpers import (
    GOP12,
    LOSSLESS,
    FakeUpscaler,
    audio_packets,
    damage_middle,
    frame_hashes,
    needs,
    run_cli,
    run_process,
    upscale_lossless,
    video_pts,
)

from vsr import ModelOptions, ScaleOutStats, SinkOptions, SourceOptions
from vsr.errors import VsrError
from vsr.lab.media import synth_video
from vsr.paths import ROOT, SHARED_VIDEOS
from vsr.scaleout import LocalExecutor, ScaleOutJob, ScaleOutOptions
from vsr.scaleout.job import FAULT_ENV
from vsr.scaleout.keyframes import KeyframeIndex, plan, scan
from vsr.scaleout.worker import SegmentWorker

OPEN_GOP = {"x264-params": "open-gop=1:keyint=12:min-keyint=12:scenecut=0"}


CLIPS: dict[str, dict[str, Any]] = {
    "cfr.mp4": {"options": GOP12},
    "vfr.mp4": {"options": GOP12, "vfr": True},
    "open_gop.mp4": {"options": OPEN_GOP},
    "source.mkv": {"options": GOP12},
    "vfr_open_gop.mkv": {"options": OPEN_GOP, "vfr": True},
    "source.ts": {"options": GOP12},  # MPEG-TS seeks by decode time, without an index
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CLIPS))
def test_segments_equal_one_machine(tmp_path: Path, name: str) -> None:
    src = synth_video(tmp_path / name, n=48, **CLIPS[name])
    ext = Path(name).suffix
    one, four, single = tmp_path / f"one{ext}", tmp_path / f"four{ext}", tmp_path / f"single{ext}"
    upscale_lossless(src, single)
    upscale_lossless(src, one, "--segments", "1", "--executor", "local")
    upscale_lossless(src, four, "--segments", "4", "--executor", "local", "--workers", "2", "--keep-work")
    # Frames: bit-identical whichever way the work was split.
    assert frame_hashes(four) == frame_hashes(one) == frame_hashes(single)
    assert len(frame_hashes(four)) == 48
    # Timestamps: exactly the source's, no duplicates.
    assert video_pts(four) == video_pts(src) == video_pts(single)
    # Audio: the original's packets (as the single-machine path writes them), once.
    assert audio_packets(four) == audio_packets(single)
    if ext == ".mp4":
        assert audio_packets(four) == audio_packets(src)
    # The parts partition the source's frames: union = all, no overlap.
    work = tmp_path / f"four{ext}.vsr-work"
    manifest = json.loads((work / "manifest.json").read_text())
    parts = [video_pts(work / s["file"]) for s in manifest["segments"]]
    assert len(parts) == 4 and all(parts)
    assert sorted(t for p in parts for t in p) == video_pts(src)
    assert sum(len(p) for p in parts) == len({t for p in parts for t in p})


def test_segments_make_the_picture_one_machine_makes(tmp_path: Path) -> None:
    """--height and --square-pixels reach every segment: the joined file has the size, pixel
    aspect and pixels of the one-machine run (both were once left out of the parts)."""
    from fractions import Fraction

    from vsr.lab.media import gradient_clip

    def picture(path: Path) -> tuple[int, int, object]:
        with av.open(str(path)) as c:
            f = next(c.decode(video=0))
            return f.width, f.height, c.streams.video[0].sample_aspect_ratio or 1

    src = gradient_clip(
        tmp_path / "sar.mp4",
        "mpeg4",
        "yuv420p",
        size=(34, 26),
        n=24,
        sar=Fraction(64, 51),
        options={"g": "12"},
    )
    for extra, expected in (
        (["--height", "60"], (78, 60, Fraction(64, 51))),
        (["--square-pixels"], (128, 78, 1)),
    ):
        one, split = tmp_path / "one.mp4", tmp_path / "split.mp4"
        upscale_lossless(src, one, "-y", *extra)
        upscale_lossless(src, split, "-y", "--segments", "2", "--executor", "local", *extra)
        assert picture(split) == picture(one) == expected, extra
        assert frame_hashes(split) == frame_hashes(one) and len(frame_hashes(one)) == 24


def test_keyframes_found_from_packets_and_plan(tmp_path: Path) -> None:
    src = synth_video(tmp_path / "in.mp4", n=48, options=GOP12)
    index = scan(str(src))
    assert index.problem is None
    assert index.keyframes == (0, 6144, 12288, 18432)  # every 12 frames at 25 fps, 1/12800
    assert index.packets == 48
    segments = plan(index, 2)
    assert [(s.start_pts, s.end_pts) for s in segments] == [(0, 12288), (12288, None)]
    assert [round(s.seconds, 3) for s in segments] == [0.96, 0.96]
    # More segments than keyframes: one per keyframe.
    assert len(plan(index, 10)) == 4


def test_plan_uses_nearest_keyframes() -> None:
    from fractions import Fraction

    index = KeyframeIndex(Fraction(1, 10), (0, 10, 30, 35, 90), 0, 100, 100)
    assert [(s.start_pts, s.end_pts) for s in plan(index, 2)] == [(0, 35), (35, None)]
    assert [s.start_pts for s in plan(index, 3)] == [0, 35, 90]  # ideal cuts at 33.3, 66.7


def test_few_keyframes_report_the_effective_count(tmp_path: Path) -> None:
    src = synth_video(tmp_path / "in.mp4", n=24, options={"g": "12", "sc_threshold": "0"})
    out = tmp_path / "out.mp4"
    status, err = run_cli("upscale", src, out, "--segments", "5", "--executor", "local", "-q")
    assert status == 0, err
    status, err = run_cli(
        "upscale", src, tmp_path / "o2.mp4", "--segments", "5", "--executor", "local", "--progress", "none"
    )
    assert status == 0
    assert "asked for 5 segments" in err and "2 segment(s)" in err
    assert "2 segments" in err.splitlines()[-1]
    assert video_pts(out) == video_pts(src)


def test_non_monotonic_timestamps_are_refused_for_segments(tmp_path: Path) -> None:
    # Two MPEG-TS clips back to back: the second one's timestamps start again from zero.
    a = synth_video(tmp_path / "a.ts", n=24, options=GOP12, audio=None)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() * 2)
    status, err = run_cli("upscale", joined, tmp_path / "o.mp4", "--segments", "2", "--executor", "local")
    assert status == 2
    assert "cannot split" in err and "backwards" in err and "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.mp4.vsr-work").exists()


@pytest.mark.slow
def test_resume_after_the_driver_is_killed(tmp_path: Path) -> None:
    src = synth_video(tmp_path / "in.mp4", n=60, options=GOP12)
    whole, out = tmp_path / "whole.mp4", tmp_path / "out.mp4"
    upscale_lossless(src, whole, "--segments", "5", "--executor", "local")
    args = ["upscale", src, out, *LOSSLESS, "--segments", "5", "--executor", "local"]
    killed = run_process(*args, env={FAULT_ENV: "2"})
    assert killed.returncode == 75, killed.stderr
    assert not out.exists()
    work = tmp_path / "out.mp4.vsr-work"
    manifest = json.loads((work / "manifest.json").read_text())
    assert [s["status"] for s in manifest["segments"]].count("done") == 2

    # Without --resume or --restart the unfinished job is not touched.
    refused = run_process(*args)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    # --resume alone: the recorded plan is reused.
    resumed = run_process(
        "upscale", src, out, *LOSSLESS, "--executor", "local", "--resume", "--progress", "json"
    )
    assert resumed.returncode == 0, resumed.stderr
    events = [json.loads(line) for line in resumed.stderr.splitlines() if line.startswith("{")]
    ran = [e["index"] for e in events if e["event"] == "segment"]
    assert len(ran) == 3  # only the rest
    assert frame_hashes(out) == frame_hashes(whole)
    assert video_pts(out) == video_pts(src)
    assert audio_packets(out) == audio_packets(src)
    assert not work.exists()  # removed after a successful join


@pytest.mark.slow
def test_truncated_part_is_redone_and_corrupt_manifest_is_a_clear_error(tmp_path: Path) -> None:
    src = synth_video(tmp_path / "in.mp4", n=48, options=GOP12)
    out = tmp_path / "out.mp4"
    args = ["upscale", src, out, *LOSSLESS, "--segments", "4", "--executor", "local"]
    assert run_process(*args, env={FAULT_ENV: "2"}).returncode == 75
    work = tmp_path / "out.mp4.vsr-work"
    manifest = json.loads((work / "manifest.json").read_text())
    done = [s for s in manifest["segments"] if s["status"] == "done"]
    part = work / done[0]["file"]
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    resumed = run_process(*args, "--resume", "--progress", "json")
    assert resumed.returncode == 0, resumed.stderr
    assert f"segment {done[0]['index']}: its part is missing or damaged" in resumed.stderr
    ran = [
        json.loads(line)["index"]
        for line in resumed.stderr.splitlines()
        if line.startswith('{"event": "segment"')
    ]
    assert sorted(ran) == sorted({0, 1, 2, 3} - {done[1]["index"]})
    assert video_pts(out) == video_pts(src)

    # A damaged manifest: one line, exit 2, a hint; --restart clears it.
    out2 = tmp_path / "out2.mp4"
    args2 = ["upscale", src, out2, *LOSSLESS, "--segments", "4", "--executor", "local"]
    assert run_process(*args2, env={FAULT_ENV: "1"}).returncode == 75
    manifest_path = tmp_path / "out2.mp4.vsr-work" / "manifest.json"
    manifest_path.write_text(manifest_path.read_text()[:40])
    status, err = run_cli(*args2, "--resume")
    assert status == 2 and "manifest" in err and "damaged" in err and "--restart" in err
    status, err = run_cli(*args2, "--restart", "-q")
    assert status == 0, err
    assert video_pts(out2) == video_pts(src)


@pytest.mark.slow
def test_resume_refuses_a_changed_input_or_settings(tmp_path: Path) -> None:
    src = synth_video(tmp_path / "in.mp4", n=48, options=GOP12)
    out = tmp_path / "out.mp4"
    args = ["upscale", src, out, *LOSSLESS, "--segments", "4", "--executor", "local"]
    assert run_process(*args, env={FAULT_ENV: "1"}).returncode == 75
    status, err = run_cli(
        "upscale",
        src,
        out,
        "--crf",
        "10",
        "--preset",
        "ultrafast",
        "--segments",
        "4",
        "--executor",
        "local",
        "--resume",
    )
    assert status == 2 and "settings differ" in err and "crf" in err
    status, err = run_cli(*args[:-2], "--segments", "3", "--executor", "local", "--resume")
    assert status == 2 and "segments" in err
    synth_video(src, n=48, options=GOP12, size=(64, 32))  # the input is replaced
    status, err = run_cli(*args, "--resume")
    assert status == 2 and "input changed" in err
    assert not out.exists()


def test_usage_errors(tmp_path: Path) -> None:
    src = synth_video(tmp_path / "in.mp4", n=12, options=GOP12)
    out = tmp_path / "out.mp4"
    for extra, words in [
        (["--frames", "5"], "--frames"),
        (["--resume"], "nothing to resume"),
    ]:
        status, err = run_cli("upscale", src, out, "--segments", "2", "--executor", "local", *extra)
        assert status == 2 and words in err, err
    status, err = run_cli("upscale", src, "-", "--format", "matroska", "--segments", "2")
    assert status == 2 and "writes a file" in err
    status, err = run_cli("upscale", tmp_path / "missing.mp4", out, "--segments", "2")
    assert status == 2 and "no such file" in err
    status, err = run_cli("upscale", src, out, "--segments", "2", "--resume", "--restart")
    assert status == 2
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("mine")
    status, err = run_cli(
        "upscale",
        src,
        out,
        "--segments",
        "2",
        "--executor",
        "local",
        "--work-dir",
        tmp_path / "foreign",
        "--restart",
    )
    assert status == 2 and "not a vsr work directory" in err
    assert (tmp_path / "foreign" / "keep.txt").exists()
    assert not out.exists()


def test_api_with_the_local_executor_and_a_fake_model(tmp_path: Path) -> None:

    src = synth_video(tmp_path / "in.mp4", n=36, options=GOP12)
    fake = FakeUpscaler(scale=2)
    job = ScaleOutJob(
        SourceOptions(str(src)),
        ModelOptions(),
        SinkOptions(str(tmp_path / "out.mkv"), crf=0, preset="ultrafast"),
        ScaleOutOptions(segments=3),
        upscaler=fake,
        executor=LocalExecutor(workers=2, upscaler=fake),
    )
    snapshots = list(job.progress())
    stats = job.stats()
    assert stats.frames == 36 and stats.scale_out == ScaleOutStats(segments=3)
    assert stats.output_size == (128, 96) and stats.live is None
    assert stats.audio_streams == 1  # the AAC track, copied by the join
    assert snapshots[-1].segments_done == 3
    events = [e for s in snapshots for e in s.events]
    assert sorted(e["index"] for e in events) == [0, 1, 2]
    assert fake.frames == 36
    assert video_pts(tmp_path / "out.mkv") == video_pts(src)


def test_odd_sizes_report_the_padded_size_that_is_encoded(tmp_path: Path) -> None:
    """33x25 at x3 is 99x75, encoded as 100x76 (yuv420p needs even sizes): with --segments 2
    and without, the summary line and the JSON "done" record give the size the file has."""
    src = synth_video(tmp_path / "odd.mkv", n=24, size=(33, 25), codec="ffv1", audio=None)
    for name, extra in (("seg.mp4", ["--segments", "2", "--executor", "local"]), ("one.mp4", [])):
        out = tmp_path / name
        status, err = run_cli("upscale", src, out, "--preset", "ultrafast", *extra)
        assert status == 0, err
        assert "33x25 -> 100x76 in " in err.splitlines()[-1], err
        with av.open(str(out)) as c:
            assert {(f.width, f.height) for f in c.decode(video=0)} == {(100, 76)}
        status, err = run_cli(
            "upscale", src, out, "--preset", "ultrafast", *extra, "--overwrite", "--progress", "json"
        )
        assert status == 0, err
        assert json.loads(err.splitlines()[-1])["output_size"] == [100, 76], err


def test_failed_segment_keeps_the_others_for_resume(tmp_path: Path) -> None:
    """A segment whose model fails ends the job with vsr's one-line error naming the failed
    segment(s) and a --resume hint; the done segments are kept, and --resume redoes only the
    rest."""
    src = synth_video(tmp_path / "in.mp4", n=36, options=GOP12)
    failing = FakeUpscaler(scale=2, fail_at=20)  # the model breaks partway
    opts = (
        SourceOptions(str(src)),
        ModelOptions(),
        SinkOptions(str(tmp_path / "out.mp4"), crf=0, preset="ultrafast"),
    )
    job = ScaleOutJob(
        *opts,
        ScaleOutOptions(segments=3),
        upscaler=failing,
        executor=LocalExecutor(workers=1, upscaler=failing),
    )
    with pytest.raises(VsrError, match=r"of 3 segment\(s\) failed; segment ") as info:
        job.run()
    assert "--resume" in (info.value.hint or "")
    manifest = json.loads((tmp_path / "out.mp4.vsr-work" / "manifest.json").read_text())
    statuses = sorted(s["status"] for s in manifest["segments"])
    assert "done" in statuses and "failed" in statuses
    assert not (tmp_path / "out.mp4").exists()
    fine = FakeUpscaler(scale=2)
    job = ScaleOutJob(
        *opts,
        ScaleOutOptions(segments=3, resume=True),
        upscaler=fine,
        executor=LocalExecutor(workers=1, upscaler=fine),
    )
    job.run()
    assert video_pts(tmp_path / "out.mp4") == video_pts(src)
    assert fine.frames < 36  # only what had not been done


def test_storage_probe_names_what_a_worker_cannot_see(tmp_path: Path) -> None:
    worker = SegmentWorker.__new__(SegmentWorker)  # no model needed for the probe
    src = synth_video(tmp_path / "in.mp4", n=2)
    marker = tmp_path / ".probe"
    assert "does not see the work directory" in worker.probe(str(src), str(marker))
    marker.write_text("x")
    assert worker.probe(str(src), str(marker)) == ""
    assert "cannot read the input" in worker.probe(str(tmp_path / "nope.mp4"), str(marker))


def test_single_machine_path_does_not_import_ray(tmp_path: Path) -> None:
    src = synth_video(tmp_path / "in.mp4", n=4)
    code = (
        "import sys; from vsr.app.cli import main; "
        f"s = main(['upscale', {str(src)!r}, {str(tmp_path / 'o.mp4')!r}, '-q']); "
        "print(s, 'ray' in sys.modules)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.stdout.split() == ["0", "False"], r.stderr


@pytest.mark.slow
def test_ctrl_c_keeps_finished_segments_for_resume(tmp_path: Path) -> None:
    import signal

    src = synth_video(tmp_path / "in.mp4", n=96, size=(160, 96), options=GOP12, bframes=False)
    out = tmp_path / "out.mp4"
    args = [
        sys.executable,
        "-m",
        "vsr",
        "upscale",
        src,
        out,
        *LOSSLESS,
        "--segments",
        "8",
        "--executor",
        "local",
        "--progress",
        "json",
    ]
    proc = subprocess.Popen([str(a) for a in args], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith('{"event": "segment"'):
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, rest
    assert "segments are done and kept" in rest and "--resume" in rest
    work = tmp_path / "out.mp4.vsr-work"
    assert not out.exists() and not list(work.glob(".*partial*"))
    status, err = run_cli(
        "upscale", src, out, *LOSSLESS, "--segments", "8", "--executor", "local", "--resume", "-q"
    )
    assert status == 0, err
    assert video_pts(out) == video_pts(src) and len(frame_hashes(out)) == 96


def test_without_ray_the_cli_says_what_to_install(tmp_path: Path) -> None:
    src = synth_video(tmp_path / "in.mp4", n=24, options=GOP12)
    code = (
        "import sys; sys.modules['ray'] = None; from vsr.app.cli import main; "  # import ray fails
        f"sys.exit(main(['upscale', {str(src)!r}, {str(tmp_path / 'o.mp4')!r}, '--segments', '2']))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 2, r.stderr
    assert "pip install 'vsr[ray]'" in r.stderr and "--executor local" in r.stderr
    assert "Traceback" not in r.stderr
    assert not list(tmp_path.glob("o.mp4*")) and not list(tmp_path.glob(".o*"))


def test_input_format_reaches_the_keyframe_scan(tmp_path: Path) -> None:
    src = synth_video(tmp_path / "in.ts", n=24, options=GOP12, audio=None)
    odd = tmp_path / "in.bin"  # no extension FFmpeg can guess from
    odd.write_bytes(src.read_bytes())
    status, err = run_cli(
        "upscale",
        odd,
        tmp_path / "o.mp4",
        "--input-format",
        "mpegts",
        "--segments",
        "2",
        "--executor",
        "local",
        "-q",
    )
    assert status == 0, err
    assert video_pts(tmp_path / "o.mp4") == video_pts(src)


ROADTRIP = SHARED_VIDEOS / "roadtrip_426x240_vp9_profile2_10bit.webm"


@pytest.mark.slow
@needs(ROADTRIP)
def test_vp9_hidden_frames_sharing_a_timestamp_still_split(tmp_path: Path) -> None:
    """VP9 alt-ref frames are packets without a picture of their own, sharing a pts with the
    next one: a clean cut all the same. 10-bit in, 10-bit out."""
    single, split = tmp_path / "single.mkv", tmp_path / "split.mkv"
    ten_bit = [
        "--scale",
        "2",
        "--quality",
        "fast",  # the cut is tested, not the model
        "--pix-fmt",
        "yuv420p10le",
        "--codec-option",
        "x264-params=qp=0",
    ]
    upscale_lossless(ROADTRIP, single, *ten_bit)  # (crf 0 is lossless only at 8 bits; qp 0 at any)
    upscale_lossless(ROADTRIP, split, *ten_bit, "--segments", "3", "--executor", "local")
    assert frame_hashes(split) == frame_hashes(single)
    assert video_pts(split) == video_pts(single)


def test_codecs_mp4_cannot_hold_use_matroska_parts_when_exact(tmp_path: Path) -> None:
    """Raw video: parts in Matroska (exact for a millisecond time base), else a clear error."""
    src = synth_video(tmp_path / "in.mkv", n=24, options=GOP12, audio=None)
    single, split = tmp_path / "single.mkv", tmp_path / "split.mkv"
    upscale_lossless(src, single, "--codec", "rawvideo")
    upscale_lossless(src, split, "--codec", "rawvideo", "--segments", "2", "--executor", "local")
    assert frame_hashes(split) == frame_hashes(single) and video_pts(split) == video_pts(src)
    mp4_src = synth_video(tmp_path / "in.mp4", n=24, options=GOP12, audio=None)  # 1/12800
    status, err = run_cli(
        "upscale",
        mp4_src,
        tmp_path / "o.mkv",
        "--codec",
        "rawvideo",
        "--segments",
        "2",
        "--executor",
        "local",
    )
    assert status == 2 and "cannot hold rawvideo" in err and "Traceback" not in err


@pytest.mark.slow
def test_notes_are_said_once_and_damage_is_reported_with_times(tmp_path: Path) -> None:
    # 65x49 -> 195x147: odd, padded for yuv420p (4:4:4 input would stay 4:4:4 and need no
    # padding: asked for explicitly); the note comes once, not once per segment.
    src = synth_video(tmp_path / "odd.mp4", n=36, size=(66, 50), options=GOP12, audio=None)
    odd = tmp_path / "odd.mkv"
    with av.open(str(src)) as i, av.open(str(odd), "w") as o:
        s = o.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 65, 49, "yuv444p"
        s.codec_context.options = GOP12
        for f in i.decode(video=0):
            o.mux(s.encode(f.reformat(65, 49, "yuv444p")))
        o.mux(s.encode(None))
    status, err = run_cli(
        "upscale", odd, tmp_path / "o.mkv", "--segments", "3", "--executor", "local", "--pix-fmt", "yuv420p"
    )
    assert status == 0, err
    assert err.count("padding to 196x148") == 1, err

    # Damage in the middle of an MPEG-TS clip (the reliability tests' recipe): reported once
    # for the job, with input times, and the same frames kept as on one machine.
    clip = synth_video(tmp_path / "in.ts", n=60, size=(160, 96), options=GOP12, audio=None)
    damaged = damage_middle(clip, tmp_path / "damaged.ts")
    status, single_err = run_cli("upscale", damaged, tmp_path / "s.mp4")
    assert status == 0 and "input damage:" in single_err
    status, err = run_cli("upscale", damaged, tmp_path / "d.mp4", "--segments", "3", "--executor", "local")
    assert status == 0, err
    assert err.count("input damage:") == 1 and " at " in err.split("input damage:")[1], err
    assert video_pts(tmp_path / "d.mp4") == video_pts(tmp_path / "s.mp4")


def test_join_keeps_decode_timestamps_increasing_across_parts(tmp_path: Path) -> None:
    """Parts whose encoders start decode timestamps early enough to touch the previous part's
    last ones (here: a deeper B-frame delay in the second part) still join in order."""
    from fractions import Fraction

    from vsr.frames import VideoPacket
    from vsr.scaleout.join import _video_packets

    def part(path: Path, first: int, n: int, bframes: int) -> Path:
        with av.open(str(path), "w") as o:
            s = o.add_stream("libx264", rate=25)
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
            s.codec_context.time_base = Fraction(1, 25)
            s.codec_context.options = {"bf": str(bframes), "preset": "medium", "b-pyramid": "none"}
            for i in range(first, first + n):
                f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 9 % 256, np.uint8), format="rgb24")
                f.pts, f.time_base = i, Fraction(1, 25)
                o.mux(s.encode(f))
            o.mux(s.encode(None))
        return path

    a = part(tmp_path / "a.mp4", 0, 12, 0)
    b = part(tmp_path / "b.mp4", 12, 12, 3)
    raw = [[p.dts for p in av.open(str(x)).demux(video=0) if p.size] for x in (a, b)]
    first_b, last_a = raw[1][0], raw[0][-1]
    assert first_b is not None and last_a is not None
    assert first_b <= last_a  # the collision this guards against is really there
    packets = []
    for item in _video_packets([a, b]):
        assert isinstance(item, VideoPacket)
        packets.append(item.packet)
    dts = [p.dts for p in packets]
    assert dts == sorted(dts) and len(set(dts)) == len(dts)
    assert all(p.dts <= p.pts for p in packets)
    tb = packets[0].time_base
    assert sorted(float(p.pts * tb) for p in packets) == [i / 25 for i in range(24)]


def test_join_times_reencoded_audio_on_the_video_clock(tmp_path: Path) -> None:
    """The join re-encodes audio the output cannot hold (MP2 into FLV) on the video's clock:
    an MPEG-TS input starting at 1.4 s, its audio 0.5 s after its video, keeps both (the video
    to the millisecond, the heard audio within one AAC frame). Before, the encoder timed the
    audio from 0, 1.4 s ahead of the video."""
    from vsr.lab.recording import audible, first_times

    src = synth_video(
        tmp_path / "in.ts",
        n=24,
        options=GOP12,
        bframes=False,
        audio="mp2",
        container_format="mpegts",
        start=1.4,
        audio_offset=0.5,
    )
    out = tmp_path / "out.flv"
    upscale_lossless(src, out, "--segments", "2", "--executor", "local")
    first_in, first_out = first_times(src), first_times(out)
    assert first_in["video"] == pytest.approx(1.4)
    assert first_out["video"] == pytest.approx(first_in["video"], abs=1e-3)
    heard_in, heard_out = audible(src), audible(out)
    assert heard_in is not None and heard_out is not None
    assert heard_out[0] == pytest.approx(heard_in[0], abs=1024 / 48000)
    assert heard_out[1] == pytest.approx(heard_in[1], abs=1024 / 48000)


def test_a_segment_damage_left_without_frames_is_empty_not_failed(tmp_path: Path) -> None:
    from vsr.scaleout.join import verify
    from vsr.scaleout.manifest import SegmentRecord
    from vsr.scaleout.worker import SegmentTask, run_segment

    src = synth_video(tmp_path / "in.mp4", n=36, options=GOP12, audio=None)
    index = scan(str(src))
    k = index.keyframes[1]
    sink = SinkOptions(str(tmp_path / "seg-00001.mp4"), preset="ultrafast", audio="none")
    # A range holding no decodable frame (as when damage took all of them).
    empty = SegmentTask(
        1, SourceOptions(str(src), start_pts=k, end_pts=k, video_only=True), sink, ModelOptions()
    )
    result = run_segment(empty)
    assert result.frames == 0 and not Path(sink.url).exists()
    whole = SegmentTask(
        0,
        SourceOptions(str(src), end_pts=k, video_only=True),
        SinkOptions(str(tmp_path / "seg-00000.mp4"), preset="ultrafast", audio="none"),
        ModelOptions(),
    )
    first = run_segment(whole)
    assert first.frames == 12
    records = [
        SegmentRecord(
            0, index.first_pts, k, "seg-00000.mp4", "done", 1, None, 12, first.first_pts, first.last_pts
        ),
        SegmentRecord(1, k, k, "seg-00001.mp4", "done", 1, None, 0),
    ]
    assert verify(tmp_path, records, index.time_base) == [tmp_path / "seg-00000.mp4"]


def test_no_sliver_segments_next_to_a_stray_keyframe() -> None:
    from fractions import Fraction

    index = KeyframeIndex(Fraction(1, 25), (1, 2), 1, 161, 160)  # a damaged AVI's keyframes
    assert len(plan(index, 3)) == 1


def test_info_shows_where_a_file_can_be_cut(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = synth_video(tmp_path / "in.mp4", n=48, options=GOP12)
    assert run_cli("info", src, "--keyframes")[0] == 0
    assert "3 clean keyframe cuts, every 0.48s on average" in capsys.readouterr().out
    a = synth_video(tmp_path / "a.ts", n=24, options=GOP12, audio=None)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() * 2)
    assert run_cli("info", joined, "--keyframes", "--json")[0] == 0
    rec = json.loads(capsys.readouterr().out)
    assert "backwards" in rec["keyframes"]["problem"]


def test_cut_analysis_of_packet_orders() -> None:
    from fractions import Fraction

    from vsr.scaleout.keyframes import index_from_packets

    tb = Fraction(1, 25)
    # Open GOP: the leading B-frames of the second GOP (pts 6, 7) come after its keyframe (8).
    open_gop = index_from_packets(tb, [0, 3, 1, 2, 5, 4, 8, 6, 7, 11, 9, 10], [0, 6])
    assert open_gop.keyframes == (0, 8) and open_gop.problem is None
    # A hidden frame sharing its pts with a frame after the keyframe: that keyframe is no cut,
    # and nothing is wrong with the input.
    shared = index_from_packets(tb, [0, 1, 2, 3, 3, 4, 5], [0, 4])
    assert shared.keyframes == (0,) and shared.problem is None
    # Timestamps starting again from 0 (two streams back to back): refused.
    restart = index_from_packets(tb, [0, 1, 2, 3, 0, 1, 2, 3], [0, 4])
    assert restart.problem is not None and "backwards" in restart.problem
