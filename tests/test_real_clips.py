"""Behaviour on real camera clips (../shared/videos): every clip goes through the whole
pipeline with the bundled fast x3 model, and frame count, timestamps, size, rotation, audio codec
and audio length come out as the input dictates.

Each clip is upscaled once (module-scoped fixture) into an .mp4; the tests then compare what a
plain PyAV decode of the input and of the output gives. Clips are cut to their first ~10
frames with `max_frames` to keep the run short, except the 25-frame VFR phone clip, which runs
whole. The fast tier (fast_x3, a seventh of espcn_x3's arithmetic) is used because the model
does not change what these tests check, and the 1280x720 phone clip becomes 4K: with the
default model its 25 frames took a minute of the suite on 2 cores.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest
from helpers import time_of

import vsr
from vsr.paths import SHARED_VIDEOS

VIDEOS = SHARED_VIDEOS
# Every test reads a clip's one upscaled run, which the first of them pays for (5 s for the
# phone clip on 2 cores): the whole module is in the slow set.
pytestmark = pytest.mark.slow

if not VIDEOS.is_dir():
    pytest.skip(f"{VIDEOS} not present", allow_module_level=True)


@dataclass(frozen=True)
class Clip:
    file: str
    frames: int | None  # frames to upscale; None: the whole clip
    size: tuple[int, int]  # expected output (width, height)
    audio: str | None  # expected output audio codec (canonical FFmpeg name); None: no audio
    copied: bool = False  # audio carried packet for packet (else re-encoded)


CLIPS = [
    # 161x121 -> 483x363 is odd: padded by one to even for yuv420p.
    Clip("bear_161x121_odd_vp9.webm", 12, (484, 364), None),
    # Vorbis cannot go into .mp4 portably: re-encoded to AAC. First video pts is 3 ms.
    Clip("mdn_flower_960x540_vp8_vorbis.webm", 10, (2880, 1620), "aac"),
    Clip("mdn_stream_of_water_480x360_h264_aac.mp4", 10, (1440, 1080), "aac", copied=True),
    # VFR (80-100 ms per frame), rotation 180; the whole clip.
    Clip("phone_fire2_1280x720_vfr_rot180_h264_aac.mp4", None, (3840, 2160), "aac", copied=True),
    Clip("roadtrip_426x240_vp9_profile2_10bit.webm", 12, (1278, 720), None),
    # MPEG-4 ASP with packed B-frames in AVI, first pts 0.04 s; MP3 audio is copied into .mp4.
    Clip("ucf101_eyemakeup_320x240_mpeg4asp_mp3.avi", 10, (960, 720), "mp3", copied=True),
]


@dataclass
class Media:
    """What a plain PyAV read of a file gives."""

    times: list[float]  # decoded video frame pts in seconds (the first `frames` only)
    sizes: set[tuple[int, int]]
    rotation: int
    first_bgr: npt.NDArray[np.uint8]
    frame_step: float  # median distance between frames (s)
    longest_step: float  # longest distance between frames (s)
    video_end: float  # last video pts + one median frame step (s), whole file
    audio_codec: str | None
    audio_packets: list[bytes]
    audio_end: float | None  # end of the last audio packet (s), whole file


def probe(path: Path, frames: int | None = None) -> Media:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times: list[float] = []
        sizes: set[tuple[int, int]] = set()
        first: Any = None
        for f in c.decode(v):
            if first is None:
                first = f
                first_bgr = cast(npt.NDArray[np.uint8], f.to_ndarray(format="bgr24"))
            assert f.pts is not None, f"{path.name}: a decoded frame has no pts"
            times.append(float(time_of(f)))
            sizes.add((f.width, f.height))
            if frames is not None and len(times) >= frames:
                break
        rotation = round(first.rotation or 0)
    with av.open(str(path)) as c:
        audio = c.streams.audio[0] if c.streams.audio else None
        codec = audio.codec_context.codec.canonical_name if audio is not None else None
        vpts: list[float] = []
        packets: list[bytes] = []
        audio_end: float | None = None
        for pk in c.demux():
            if pk.pts is None or not pk.size:
                continue
            if pk.stream.type == "video":
                vpts.append(float(pk.pts * pk.time_base))
            elif audio is not None and pk.stream.index == audio.index:
                packets.append(bytes(pk))
                end = float((pk.pts + (pk.duration or 0)) * pk.time_base)
                audio_end = end if audio_end is None else max(audio_end, end)
    vpts.sort()
    steps = [b - a for a, b in itertools.pairwise(vpts)] or [0.0]
    step = statistics.median(steps)
    ordered = sorted(times)
    own = [b - a for a, b in itertools.pairwise(ordered)] or [step]
    return Media(
        times, sizes, rotation, first_bgr, step, max(own), vpts[-1] + step, codec, packets, audio_end
    )


@dataclass
class Run:
    clip: Clip
    stats: vsr.Stats
    src: Media  # times/sizes/rotation for the first `clip.frames` decoded frames
    out: Media


@pytest.fixture(scope="module", params=CLIPS, ids=[c.file.rsplit(".", 1)[0] for c in CLIPS])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    clip: Clip = request.param
    src = VIDEOS / clip.file
    if not src.exists():
        pytest.skip(f"{src} not present")
    out = tmp_path_factory.mktemp("real") / f"{src.stem}_x3.mp4"
    stats = vsr.upscale_video(
        vsr.SourceOptions(str(src), max_frames=clip.frames),
        vsr.SinkOptions(str(out), preset="ultrafast"),
        model=vsr.ModelOptions(quality="fast"),
    )
    return Run(clip, stats, probe(src, clip.frames), probe(out))


def test_frame_count(run: Run) -> None:
    """The output has exactly as many frames as a plain PyAV decode of the same first N input frames."""
    assert len(run.src.times) == (run.clip.frames or len(run.src.times))
    assert len(run.out.times) == len(run.src.times)
    assert run.stats.frames == len(run.src.times)


def test_timestamps(run: Run) -> None:
    """Output frames keep the input frames' presentation times within 1 ms, non-zero start and VFR
    included."""
    # Sorted: AVI with packed B-frames attaches timestamps out of order (1, 2, 4, 3, ...);
    # frames are shown in order, so the set of times is what must survive.
    expected = sorted(run.src.times)
    assert run.out.times == pytest.approx(expected, abs=1e-3)


def test_size(run: Run) -> None:
    """Every output frame is 3x the input, padded by one pixel to even where 3x is odd."""
    ((w, h),) = run.src.sizes
    assert run.out.sizes == {run.clip.size}
    assert run.clip.size == (3 * w + (3 * w) % 2, 3 * h + (3 * h) % 2)
    assert run.stats.output_size == run.clip.size


def test_rotation(run: Run) -> None:
    """The output's first decoded frame carries the input's display rotation (180 for the phone clip)."""
    assert run.out.rotation == run.src.rotation
    if "rot180" in run.clip.file:
        assert abs(run.out.rotation) == 180


def test_audio_codec(run: Run) -> None:
    """Audio is copied packet for packet when .mp4 accepts its codec and re-encoded to AAC when it does
    not."""
    assert run.out.audio_codec == run.clip.audio
    if run.clip.audio is None:
        return
    assert run.out.audio_packets, "the output has an audio stream but no audio packets"
    if run.clip.copied:
        assert run.out.audio_packets == run.src.audio_packets[: len(run.out.audio_packets)]
    else:
        assert run.src.audio_codec != run.clip.audio


def test_audio_ends_with_video(run: Run) -> None:
    """The output's audio ends where its video ends, give or take the input's own offset and one frame."""
    if run.clip.audio is None:
        pytest.skip("clip has no audio")
    assert run.out.audio_end is not None, "no audio in the output"
    assert run.src.audio_end is not None
    in_diff = run.src.audio_end - run.src.video_end  # whole input file
    out_diff = run.out.audio_end - run.out.video_end
    allowed = abs(in_diff) + run.src.longest_step
    assert abs(out_diff) <= allowed, (
        f"output audio ends {out_diff:+.3f}s from its video end (input: {in_diff:+.3f}s); "
        f"allowed {allowed:.3f}s"
    )


def test_picture_resembles_input(run: Run) -> None:
    """The first output frame scaled back down matches the first input frame (10-bit and odd sizes too)."""
    src = run.src.first_bgr
    h, w = src.shape[:2]
    out = run.out.first_bgr[: 3 * h, : 3 * w]  # drop the even-size padding
    small = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)
    mad = float(np.abs(small.astype(np.int16) - src.astype(np.int16)).mean())
    assert mad < 6.0, f"mean absolute difference {mad:.2f} levels"
