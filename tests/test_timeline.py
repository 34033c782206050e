"""Behaviour of input timestamps that jump: joined MPEG-TS recordings continue their timeline
with audio in sync, and the MPEG-TS clock's 33-bit wrap goes on smoothly."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from helpers import run_cli

from vsr.lab.media import synth_video
from vsr.media.discontinuity import WRAP_BITS, Discontinuity, Timeline


def _times(path: Path, kind: str) -> list[float]:
    """The presentation times of one stream type's packets, in file order."""
    with av.open(str(path)) as c:
        stream = next(s for s in c.streams if s.type == kind)
        return [float(p.pts * p.time_base) for p in c.demux(stream) if p.pts is not None]


def _done(err: str) -> dict[str, object]:
    return next(json.loads(x) for x in err.splitlines() if x.startswith('{"event": "done"'))


def test_joined_mpegts_recordings_continue_the_timeline_with_audio_in_sync(tmp_path: Path) -> None:
    """`cat a.ts b.ts` (both starting at 1.4 s, as FFmpeg's muxer starts them): the second
    part's frames follow the first's one frame apart at the input's rate, not packed into
    1 ms steps; its audio moves with it, so each part keeps its own A/V offset; one log line
    and one count in the done record say where the jump was."""
    a = synth_video(tmp_path / "a.ts", n=50, size=(64, 36), start=1.4, audio_offset=0.2)
    b = synth_video(tmp_path / "b.ts", n=40, size=(64, 36), start=1.4, audio_offset=0.1)
    joined = tmp_path / "ab.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    out = tmp_path / "ab.mkv"
    status, err = run_cli(
        "upscale", joined, out, "--quality", "fast", "--progress", "json", "--preset", "ultrafast"
    )
    assert status == 0, err
    assert "timestamp discontinuity at 3.400s" in err and "jumped back by 2.000s" in err, err
    assert _done(err)["discontinuities"] == 1
    video = sorted(_times(out, "video"))
    assert len(video) == 90
    assert np.allclose(np.diff(video), 0.04, atol=0.0015), np.diff(video)  # one speed throughout
    audio = sorted(_times(out, "audio"))
    a_audio, b_audio = sorted(_times(a, "audio")), sorted(_times(b, "audio"))
    a_video, b_video = sorted(_times(a, "video")), sorted(_times(b, "video"))
    # Each part's audio moved exactly as far as its video: the first part not at all, the
    # second by where its first frame landed. (The first part's sound runs 0.2 s past its
    # last frame: the second part's first packets overlap it and are left out.)
    moved = video[50] - b_video[0]
    first, second = audio[: len(a_audio)], audio[len(a_audio) :]
    assert np.allclose(first, a_audio, atol=0.001) and np.isclose(video[0], a_video[0], atol=0.001)
    assert len(b_audio) - 8 <= len(second) < len(b_audio)  # 0.1 s overlap: 5 packets or so
    assert np.allclose(second, np.array(b_audio[-len(second) :]) + moved, atol=0.001)
    assert np.all(np.diff(audio) > 0)


def test_single_file_keeps_its_times_and_counts_no_discontinuity(tmp_path: Path) -> None:
    """An ordinary MPEG-TS file is not re-timed: its frames keep the input's times."""
    clip = synth_video(tmp_path / "a.ts", n=20, size=(64, 36), start=1.4)
    out = tmp_path / "a.mkv"
    status, err = run_cli(
        "upscale", clip, out, "--quality", "fast", "--progress", "json", "--preset", "ultrafast"
    )
    assert status == 0, err
    assert _done(err)["discontinuities"] == 0 and "discontinuity" not in err.split("{")[0]
    assert np.allclose(sorted(_times(out, "video")), sorted(_times(clip, "video")), atol=0.0015)


def test_wrapping_mpegts_clock_goes_on_without_a_discontinuity(tmp_path: Path) -> None:
    """Packets whose 33-bit MPEG-TS counters wrap mid-stream (as they do every 26.5 hours,
    past what the demuxer corrects) come out with times that go on in the same steps, audio
    and video alike, and the wrap is not counted as a discontinuity."""
    clip = synth_video(tmp_path / "a.ts", n=50, size=(64, 36), start=1.4)
    period = 1 << WRAP_BITS
    shift = period - 2 * 90000  # the counters wrap 0.6 s into the clip
    with av.open(str(clip)) as c:
        video = c.streams.video[0]
        found: list[Discontinuity] = []
        timeline = Timeline(video.index, rate=video.average_rate, found=found)
        packets = []
        for p in c.demux():
            if p.pts is None:
                continue
            original = (p.stream.type, p.pts, p.dts)
            p.pts = (p.pts + shift) % period
            p.dts = (p.dts + shift) % period if p.dts is not None else None
            assert p.time_base == Fraction(1, 90000)
            packets.append((*original, timeline.push(p)))
        out = [q for *_, got in packets for q in got] + timeline.flush()
        assert not found and timeline.wrapped >= 1
        for kind in ("video", "audio"):
            before = [pts for k, pts, _, _ in packets if k == kind]
            after = [q.pts - shift for q in out if q.stream.type == kind]
            assert after == before  # every time moved by the same whole amount: no wrap left


def test_one_damaged_timestamp_is_retimed_not_taken_for_a_discontinuity(tmp_path: Path) -> None:
    """A single packet whose decode time is damaged (the clock jumps for it alone and comes
    back at the next packet) is timed after the packet before it, keeps its presentation
    time, and starts no new part of the timeline."""
    clip = synth_video(tmp_path / "a.ts", n=30, size=(64, 36), start=1.4, audio=None)
    with av.open(str(clip)) as c:
        video = c.streams.video[0]
        found: list[Discontinuity] = []
        timeline = Timeline(video.index, rate=video.average_rate, found=found)
        before, after = [], []
        for i, p in enumerate(q for q in c.demux(video) if q.pts is not None):
            before.append((p.pts, p.dts))
            if i == 12:
                p.dts = -1073644624  # what a flipped PES header gave in the reliability recipe
            after += [(q.pts, q.dts) for q in timeline.push(p)]
        after += [(q.pts, q.dts) for q in timeline.flush()]
    assert not found and timeline.damaged == 1
    assert after == before  # the damaged dts is back where it was due, its pts untouched
