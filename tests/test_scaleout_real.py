"""Scale-out on footage as it comes: `--segments 3` gives the one-machine run's frames, timestamps
and audio packets, on every clip of ../shared/videos that can be cut and on generated clips of
what real files do (open GOPs, flagged non-IDR frames, B-pyramids, MP4 edit lists, 1/600 and
1001/30000 time bases, 4:4:4 with MP3, HEVC 10-bit, AV1, an x264 version the decoder must know).

Each clip runs twice, once whole and once in segments, in one module-scoped fixture; the
tests then compare what both wrote (FFV1, lossless: the same pixels decode from both).
Generated clips are tiny and go through `vsr upscale` with the fast model; the shared clips
(up to 932 frames of 960x540) go through the same API with a numpy identity model, because
what is under test there is the cutting, seeking and joining of real files, not the model.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from helpers import GOP12, FakeUpscaler, audio_packets, run_cli, run_process, time_of

from vsr import ModelOptions, SinkOptions, SourceOptions
from vsr.lab.media import remux, synth_video
from vsr.media import bitstream
from vsr.media.fingerprint import frame_fingerprint
from vsr.paths import SHARED_VIDEOS
from vsr.pipeline.pipeline import Pipeline
from vsr.scaleout import LocalExecutor, ScaleOutJob, ScaleOutOptions
from vsr.scaleout.executors import Event, SegmentDone
from vsr.scaleout.job import FAULT_ENV
from vsr.scaleout.join import JoinError
from vsr.scaleout.keyframes import scan
from vsr.scaleout.worker import SegmentTask

FAST = ["--quality", "fast", "--codec", "ffv1", "--device", "cpu", "--progress", "none"]
X265 = "keyint=13:min-keyint=13:scenecut=0:log-level=error"  # open GOP (CRA), x265's default


@dataclass(frozen=True)
class Runs:
    """One clip upscaled whole and in segments."""

    src: Path
    one: Path
    split: Path
    log: str  # what the segmented run said (warnings and summary)
    segments: int  # how many segments it ran
    damage: tuple[int, int]  # (frames concealed whole, in segments)
    frames: tuple[list[tuple[Fraction, str]], list[tuple[Fraction, str]]]  # (whole, split)
    audio: tuple[list[Any], list[Any]]  # (whole, split)


def runs(src: Path, one: Path, split: Path, log: str, segments: int, damage: tuple[int, int]) -> Runs:
    return Runs(
        src,
        one,
        split,
        log,
        segments,
        damage,
        (decoded(one), decoded(split)),
        (audio_packets(one), audio_packets(split)),
    )


def decoded(path: Path) -> list[tuple[Fraction, str]]:
    """(time, hash of the pixels) of every frame a file decodes to."""
    with av.open(str(path)) as c:
        return [(time_of(f), hashlib.sha1(f.to_ndarray().tobytes()).hexdigest()) for f in c.decode(video=0)]


# -- generated clips ----------------------------------------------------------------------


def _textured_444(path: Path) -> Path:
    """4:4:4 H.264 (CABAC, mixed 4x4/8x8 transforms) whose first packet says it was made by
    x264 build 150: FFmpeg's decoder then reads it the way x264 before build 151 wrote 4:4:4,
    from the first packet on. A segment's decoder never sees that packet; unless it is given
    it, it decodes every segment but the first differently (the issue's 4:4:4 clip, seen from
    the other side: here the straight decode is the damaged one, concealing from frame 0 and
    at the IDR at 0.48 s)."""
    rng = np.random.default_rng(0)
    w, h = 128, 96
    base = cv2.resize(
        rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), (w * 2, h * 2), interpolation=cv2.INTER_CUBIC
    )
    fine = rng.integers(0, 255, (h * 2, w * 2, 3), dtype=np.uint8)
    mask = cv2.resize(
        rng.integers(0, 2, (6, 8), dtype=np.uint8), (w * 2, h * 2), interpolation=cv2.INTER_NEAREST
    )[..., None]
    texture = np.where(mask > 0, fine // 3 + base // 2, base).astype(np.uint8)
    plain = path.with_name("plain_" + path.name)
    with av.open(str(plain), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv444p"
        s.codec_context.options = {**GOP12, "preset": "medium", "crf": "20"}
        for i in range(24):
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(texture[i * 2 : i * 2 + h, i * 3 : i * 3 + w]), format="rgb24"
            )
            frame.pts = i
            out.mux(s.encode(frame))
        out.mux(s.encode(None))
    return remux(
        plain, path, first_packet=lambda b: re.sub(rb"x264 - core \d+", b"x264 - core 150", b, count=1)
    )


def _x264_version_in_tabs(path: Path) -> Path:
    """Lossless H.264 (High 4:4:4 Predictive: x264 at qp 0) of stripes and checks that x264
    predicts in 8x8 blocks vertically and horizontally, whose first packet's version SEI says
    build 150 with tabs where x264 writes spaces ("x264\\t-\\tcore 150"). FFmpeg's decoder reads
    the build anyway (sscanf's spaces match tabs) and predicts those blocks unfiltered, as x264
    before build 151 did; the keyframe scan looks for the text with spaces, so a segment's
    decoder is not primed with it. Its pictures then differ from a straight decode's in the
    frames with such blocks, with no damage flag and the planned frames and timestamps: what
    only the content check sees."""
    w, h = 64, 48
    rng = np.random.default_rng(0)
    plain = path.with_name("plain_" + path.name)
    with av.open(str(plain), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.options = {**GOP12, "qp": "0", "preset": "medium"}
        for i in range(36):
            cols = np.broadcast_to(rng.integers(0, 255, (1, w * 2, 3), dtype=np.uint8), (h * 2, w * 2, 3))
            rows = np.broadcast_to(rng.integers(0, 255, (h * 2, 1, 3), dtype=np.uint8), (h * 2, w * 2, 3))
            checks = (np.arange(h * 2)[:, None, None] // 8 + np.arange(w * 2)[None, :, None] // 8) % 2
            picture = np.where(checks == 0, cols, rows)[i % 16 : i % 16 + h, i % 16 : i % 16 + w]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
            frame.pts = i
            out.mux(s.encode(frame))
        out.mux(s.encode(None))
    return remux(
        plain, path, first_packet=lambda b: re.sub(rb"x264 - core \d+", b"x264\t-\tcore 150", b, count=1)
    )


def _fake_keyframes(path: Path) -> Path:
    """IDRs every 20 frames, and P-frames at 16 and 32 (where 3 segments would be cut) that
    the container's index calls keyframes too (NUT keeps the flags it is given; FFmpeg's MP4
    and Matroska muxers would drop them)."""
    plain = synth_video(
        path.with_name("plain.mp4"),
        n=48,
        bframes=False,
        options={"g": "20", "keyint_min": "20", "sc_threshold": "0"},
    )
    return remux(plain, path, keyframes=(16, 32))


GENERATED: dict[str, Any] = {
    "open_gop.mp4": lambda p: synth_video(
        p, n=48, options={"x264-params": "open-gop=1:keyint=12:min-keyint=12:scenecut=0"}
    ),
    "b_pyramid.mp4": lambda p: synth_video(
        p, n=48, options={**GOP12, "bf": "3", "x264-params": "b-pyramid=normal"}
    ),
    "fake_keyframes.nut": _fake_keyframes,
    "edit_list_hides_frames.mp4": lambda p: remux(
        synth_video(p.with_name("plain.mp4"), n=48, options=GOP12), p, shift=-0.08
    ),
    "hevc10_tb600_edit_list.mov": lambda p: remux(
        synth_video(
            p.with_name("plain.mov"),
            n=48,
            fps=30,
            codec="libx265",
            pix_fmt="yuv420p10le",
            time_base=Fraction(1, 600),
            container_options={"video_track_timescale": "600"},
            options={"x265-params": X265},
        ),
        p,
        shift=0.05,
    ),
    "ntsc_1001_30000.mp4": lambda p: synth_video(
        p,
        n=48,
        fps=Fraction(30000, 1001),
        time_base=Fraction(1, 30000),
        container_options={"video_track_timescale": "30000"},
        options={**GOP12, "g": "13"},
    ),
    "yuv444_mp3.mp4": lambda p: synth_video(
        p, n=48, pix_fmt="yuv444p", audio="libmp3lame", options={**GOP12, "g": "13"}
    ),
    "x264_build_150_444.mp4": _textured_444,
    "x264_version_in_tabs.mp4": _x264_version_in_tabs,
    "av1.mp4": lambda p: synth_video(
        p, n=48, codec="libsvtav1", options={"g": "13", "svtav1-params": "keyint=13:scd=0"}
    ),
}


@pytest.fixture(scope="module", params=sorted(GENERATED))
def generated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    name = request.param
    if name.startswith("av1") and "libsvtav1" not in av.codecs_available:
        pytest.skip("PyAV's FFmpeg has no AV1 encoder")
    tmp = tmp_path_factory.mktemp(Path(name).stem)
    src = GENERATED[name](tmp / name)
    one, split = tmp / "one.mkv", tmp / "split.mkv"
    status, err = run_cli("upscale", src, one, *FAST)
    assert status == 0, err
    status, log = run_cli("upscale", src, split, *FAST, "--segments", "3", "--executor", "local")
    assert status == 0, log
    summary = re.search(r"(\d+) segments? ->", log.splitlines()[-1])
    assert summary is not None, log
    segments = int(summary.group(1))
    whole, in_segments = (
        int(m.group(1)) if m else 0
        for m in (re.search(r"(\d+) frame\(s\) with concealed damage", e) for e in (err, log))
    )
    return runs(src, one, split, log, segments, (whole, in_segments))


@pytest.mark.slow
def test_generated_segments_give_one_machines_frames(generated: Runs) -> None:
    """Every generated kind of clip upscaled in 3 segments decodes to the one-machine run's
    pictures, frame for frame."""
    whole, split = generated.frames
    assert len(whole) >= 24
    assert [h for _, h in split] == [h for _, h in whole]


@pytest.mark.slow
def test_generated_segments_keep_timestamps_and_audio(generated: Runs) -> None:
    """Every generated clip's segmented output has the one-machine run's frame times and its
    audio packets, byte for byte."""
    whole, split = generated.frames
    assert [t for t, _ in split] == [t for t, _ in whole]
    assert generated.audio[1] == generated.audio[0]


@pytest.mark.slow
def test_generated_clips_are_really_cut(generated: Runs) -> None:
    """Clips a decoder can start in the middle of run as 3 segments with no damage; the one
    that only decodes as it does from its first packet falls back to one segment, saying why,
    since its damage after the cut cannot be concealed as a straight decode conceals it."""
    if generated.src.name.startswith("x264_build"):
        assert generated.segments == 1
        assert "cannot cut" in generated.log and "exactly at 0.480s" in generated.log
        assert generated.damage[1] == generated.damage[0] > 0
    elif generated.src.name.startswith("x264_version_in_tabs"):
        # Both cuts: each later segment's decoder makes other pictures, flagged nowhere.
        assert generated.segments == 1
        assert generated.log.count("cannot cut") == 2, generated.log
        assert (
            "exactly at 0.480s: the pictures its decoder made differ from a straight "
            "decode's in 2 of 12 frame(s), from 0.600s, with no damage flagged"
        ) in generated.log
        assert generated.damage == (0, 0)
    else:
        assert generated.segments == 3, generated.log
        assert generated.damage == (0, 0)
        assert "cannot cut" not in generated.log


def test_flagged_frames_that_are_no_random_access_point_are_not_cuts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """P-frames a container flags as keyframes are refused as cuts, with the reason (which
    `vsr info --keyframes` says too); the IDRs next to them are used instead."""
    src = _fake_keyframes(tmp_path / "fake.nut")
    index = scan(str(src))
    at = index.frames  # frame n's pts
    assert index.keyframes == (at[0], at[20], at[40])
    assert [pts for pts, _ in index.refused] == [at[16], at[32]]
    assert all("not an IDR or recovery point" in why for _, why in index.refused)
    assert run_cli("info", src, "--keyframes")[0] == 0
    assert "not cut at: 2 flagged keyframes (first at 0.64s: not an IDR" in capsys.readouterr().out


def test_nal_units_go_in_front_in_the_streams_own_framing() -> None:
    """Priming units are framed as the stream frames its own (length prefixes or start
    codes) and go after an access unit delimiter, which must stay first."""
    sps, pps, aud, idr = b"\x67\x64\x00\x1f", b"\x68\xee", b"\x09\xf0", b"\x65\x88\x84"
    avcc = bitstream.frame([aud, idr], 4)
    primed = bitstream.prepend("h264", avcc, (sps, pps), 4)
    assert list(bitstream.nal_units(primed, 4)) == [aud, sps, pps, idr]
    annexb = bitstream.frame([idr], 0)
    assert list(bitstream.nal_units(bitstream.prepend("h264", annexb, (sps,), 0), 0)) == [sps, idr]
    assert bitstream.access_unit("h264", primed, 4) == bitstream.AccessUnit("idr", (sps, pps))


def test_a_cut_learns_the_x264_version_of_the_first_packet(tmp_path: Path) -> None:
    """The keyframe scan gives a cut after an x264 stream's first packet that packet's version
    SEI, for the segment's decoder to read first."""
    index = scan(str(_textured_444(tmp_path / "x264.mp4")))
    ((cut, units),) = index.primes
    assert cut == index.keyframes[1]
    assert any(b"x264 - core 150" in u for u in units)


# -- ../shared/videos -------------------------------------------------------------------


def _cuttable(folder: Path) -> list[str]:
    """The clips in `folder` with more than one keyframe (a scan reads packets only: ms)."""
    clips = [p for p in sorted(folder.glob("*")) if p.suffix != ".md"] if folder.is_dir() else []
    return [p.name for p in clips if len(scan(str(p)).keyframes) > 1] or ["(no clips to cut)"]


SHARED_CLIPS = _cuttable(SHARED_VIDEOS)


@pytest.fixture(scope="module", params=SHARED_CLIPS)
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    src = SHARED_VIDEOS / request.param
    if not src.is_file():
        pytest.skip(f"no clip with several keyframes in {SHARED_VIDEOS}")
    tmp = tmp_path_factory.mktemp(src.stem)
    identity = FakeUpscaler(scale=1)
    one, split = tmp / "one.mkv", tmp / "split.mkv"
    whole = Pipeline(
        SourceOptions(str(src)), ModelOptions(), SinkOptions(str(one), codec="ffv1"), upscaler=identity
    ).run()
    job = ScaleOutJob(
        SourceOptions(str(src)),
        ModelOptions(),
        SinkOptions(str(split), codec="ffv1"),
        ScaleOutOptions(segments=3),
        upscaler=identity,
        executor=LocalExecutor(1, identity),
    )
    stats = job.run()
    segments = stats.scale_out.segments if stats.scale_out else 0
    return runs(src, one, split, "", segments, (whole.corrupt_frames, stats.corrupt_frames))


@pytest.mark.slow
def test_real_clips_in_segments_give_one_machines_frames(shared: Runs) -> None:
    """Every real clip with more than one keyframe (H.264 MP4s with 3 and 4 keyframes, VP9
    10-bit, VP8, ...) decodes, cut in segments, to the one-machine run's pictures."""
    whole, split = shared.frames
    assert len(whole) > 24
    assert [h for _, h in split] == [h for _, h in whole]
    assert shared.segments >= 2
    assert shared.damage == (0, 0)


@pytest.mark.slow
def test_real_clips_in_segments_keep_timestamps_and_audio(shared: Runs) -> None:
    """Every real clip's segmented output has the one-machine run's frame times and audio
    packets."""
    whole, split = shared.frames
    assert [t for t, _ in split] == [t for t, _ in whole]
    assert shared.audio[1] == shared.audio[0]


@pytest.mark.slow
def test_a_resumed_job_plans_without_the_cuts_it_dropped(tmp_path: Path) -> None:
    """A job that dropped a cut records it: --resume with the same --segments plans without
    it, finds its work done and joins the same frames again, running no segment."""
    src = _textured_444(tmp_path / "x264.mp4")
    out = tmp_path / "out.mkv"
    args = ["upscale", src, out, *FAST, "--segments", "3", "--executor", "local"]
    status, err = run_cli(*args, "--keep-work")
    assert status == 0 and "cannot cut" in err, err
    manifest = json.loads((tmp_path / "out.mkv.vsr-work" / "manifest.json").read_text())
    assert [pts for pts, _ in manifest["dropped_cuts"]] == [list(scan(str(src)).keyframes)[1]]
    first = decoded(out)
    status, err = run_cli(*args, "--resume", "--overwrite", "--progress", "json")
    assert status == 0, err
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert not [e for e in events if e.get("event") == "segment"]
    assert decoded(out) == first


# -- the content check ------------------------------------------------------------------


@pytest.mark.slow
def test_a_resumed_job_remakes_the_parts_it_cannot_compare_frame_by_frame(tmp_path: Path) -> None:
    """A driver killed after two segments leaves only a digest of their fingerprints: --resume
    accepts the part whose digest is the straight decode's, makes the other one again to see
    which of its frames differ, drops the cuts, and joins one machine's frames."""
    src = _x264_version_in_tabs(tmp_path / "tabs.mp4")
    one, out = tmp_path / "one.mkv", tmp_path / "out.mkv"
    assert run_cli("upscale", src, one, *FAST)[0] == 0
    args = ["upscale", src, out, *FAST, "--segments", "3", "--executor", "local"]
    assert run_process(*args, env={FAULT_ENV: "2"}).returncode == 75
    manifest = json.loads((tmp_path / "out.mkv.vsr-work" / "manifest.json").read_text())
    assert [s["status"] for s in manifest["segments"]] == ["done", "done", "pending"]
    assert all(len(s["content"]) == 64 for s in manifest["segments"][:2])
    resumed = run_process(*args, "--resume", "--verbose")
    assert resumed.returncode == 0, resumed.stderr
    assert "segment 1: made before this run" in resumed.stderr
    assert "segment 0: made before" not in resumed.stderr
    assert resumed.stderr.count("cannot cut") == 2 and "with no damage flagged" in resumed.stderr
    assert decoded(out) == decoded(one)


class _Tampering(LocalExecutor):
    """A local executor whose segment 0 reports its first frame's fingerprint changed: a first
    segment that differs from a straight decode, which no clip makes (it would be a bug)."""

    def run(self, tasks: Sequence[SegmentTask]) -> Iterator[Event]:
        for event in super().run(tasks):
            if isinstance(event, SegmentDone) and event.result.index == 0:
                changed = bytes([event.result.fingerprints[0] ^ 1]) + event.result.fingerprints[1:]
                event = SegmentDone(replace(event.result, fingerprints=changed))
            yield event


def test_a_first_segment_whose_pictures_differ_is_never_joined(tmp_path: Path) -> None:
    """The first segment starts where a straight decode starts, so pictures of its that differ
    are no inexact cut to drop: the job stops (exit 1) and writes no output."""
    src = synth_video(tmp_path / "in.mp4", n=36, options=GOP12, audio=None)
    out = tmp_path / "out.mkv"
    identity = FakeUpscaler(scale=1)
    job = ScaleOutJob(
        SourceOptions(str(src)),
        ModelOptions(),
        SinkOptions(str(out), codec="ffv1"),
        ScaleOutOptions(segments=3),
        upscaler=identity,
        executor=_Tampering(1, identity),
    )
    with pytest.raises(
        JoinError,
        match=r"segment 0 of .* differs from a straight decode: the "
        r"pictures its decoder made differ .* in 1 of 12 frame",
    ):
        job.run()
    assert not out.exists()


def test_a_fingerprint_is_of_the_visible_picture_only() -> None:
    """Two frames of one picture with other row padding have one fingerprint; one sample or
    the range tag changed gives another."""
    rgb = np.random.default_rng(0).integers(0, 255, (18, 34, 3), dtype=np.uint8)
    for fmt in ("yuv420p", "yuv420p10le", "nv12", "gbrp", "rgb24"):
        padded = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=fmt)
        tight = av.VideoFrame.from_ndarray(padded.to_ndarray(), format=fmt)
        # Whether the two differ in padding depends on FFmpeg's alignment for this CPU's SIMD
        # (equal on some machines): the fingerprints must be equal either way.
        assert frame_fingerprint(padded) == frame_fingerprint(tight), fmt
    one = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    other = rgb.copy()
    other[17, 33, 0] ^= 0x80
    assert frame_fingerprint(
        av.VideoFrame.from_ndarray(other, format="rgb24").reformat(format="yuv420p")
    ) != frame_fingerprint(one)
    full = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p", dst_color_range=2)
    assert frame_fingerprint(full) != frame_fingerprint(one)
