"""Broadcast metadata survives an upscale: closed captions (CEA-608/708 as A53 side data)
follow their frames through the model into encoders that carry them, and chapters with their
titles are copied into containers that hold them, moved and cut by --start/--duration."""

from __future__ import annotations

import socket
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from helpers import needs, run_cli, video_stats

from vsr.lab.media import pattern, synth_video
from vsr.media.captions import a53_of, attach_a53
from vsr.paths import SHARED_VIDEOS

CEA608 = SHARED_VIDEOS / "hls_cea608_640x360_h264_aac.ts"
CHAPTERS = SHARED_VIDEOS / "chapters_320x240_h264_yuv444p_aac.mkv"
FAST = ("--quality", "fast", "--preset", "ultrafast", "--device", "cpu", "-y")


def captioned_clip(path: Path, captions: dict[int, bytes], n: int = 16) -> Path:
    """A 64x48 H.264 clip (with B-frames) whose frame i carries `captions[i]` as A53 side data."""
    with av.open(str(path), "w") as out:
        vs: Any = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(pattern(i, 64, 48), format="bgr24").reformat(format="yuv420p")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            if i in captions:
                assert attach_a53(vf, captions[i])
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
    return path


def frame_captions(path: Path) -> list[bytes | None]:
    """Each decoded frame's A53 payload, in presentation order."""
    with av.open(str(path)) as c:
        return [a53_of(f) for f in c.decode(video=0)]


def chapters_of(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, title) of each chapter, in seconds rounded to the millisecond."""
    with av.open(str(path)) as c:
        chapters = c.chapters()
    out = []
    for ch in chapters:
        tb = ch["time_base"]
        assert tb is not None, ch
        out.append(
            (
                round(float(ch["start"] * tb), 3),
                round(float(ch["end"] * tb), 3),
                ch["metadata"].get("title", ""),
            )
        )
    return out


def with_chapters(src: Path, dst: Path, chapters: list[tuple[int, int, str]]) -> Path:
    """`src` remuxed into `dst` with chapters (start ms, end ms, title)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        out.set_chapters(
            [
                {"id": i + 1, "start": a, "end": b, "time_base": Fraction(1, 1000), "metadata": {"title": t}}
                for i, (a, b, t) in enumerate(chapters)
            ]
        )
        for pk in inp.demux():
            if not pk.size:  # the demuxer's end-of-stream packets
                continue
            pk.stream = streams[pk.stream.index]
            out.mux(pk)
    return dst


def cc(i: int) -> bytes:
    """Two CEA-608 byte pairs (cc_valid, field 1), different for each `i`."""
    return bytes([0xFC, 0x94, 0x20 + i, 0xFC, 0xC1 + i, 0xC2])


@pytest.mark.parametrize("suffix,codec", [(".mkv", "libx264"), (".mp4", "libx265")])
def test_captions_follow_their_frames_into_the_encoder(tmp_path: Path, suffix: str, codec: str) -> None:
    """Each frame's closed captions come out on the same frame (B-frames reorder them in the
    bitstream), through libx264 and libx265 (whose a53cc option vsr turns on)."""
    src = captioned_clip(tmp_path / "in.mkv", {0: cc(0), 3: cc(3), 7: cc(7), 8: cc(8), 15: cc(15)})
    assert sum(c is not None for c in frame_captions(src)) == 5
    out = tmp_path / f"out{suffix}"
    status, err = run_cli("upscale", src, out, "--codec", codec, *FAST)
    assert status == 0, err
    assert frame_captions(out) == frame_captions(src)


def test_captions_of_a_trim_are_those_of_its_frames(tmp_path: Path) -> None:
    """--start keeps the captions of the frames it keeps, on those frames."""
    caps = {i: cc(i) for i in (1, 5, 9, 12)}
    src = captioned_clip(tmp_path / "in.mkv", caps)
    out = tmp_path / "out.mkv"
    status, err = run_cli("upscale", src, out, "--start", "0.2", *FAST)  # from frame 5
    assert status == 0, err
    assert frame_captions(out) == frame_captions(src)[5:]


def test_an_encoder_without_captions_says_they_are_dropped(tmp_path: Path) -> None:
    """An encoder that cannot write A53 captions (VP9) gets a note naming them."""
    src = captioned_clip(tmp_path / "in.mkv", {0: cc(0)}, n=4)
    status, err = run_cli("upscale", src, tmp_path / "out.webm", *FAST)
    assert status == 0, err
    assert "closed captions (CEA-608/708) dropped: libvpx-vp9 cannot carry them" in err


def test_chapters_are_copied_moved_and_cut_by_a_trim(tmp_path: Path) -> None:
    """Chapters with their titles go into MKV and MP4 as they were; --start/--duration moves
    them by the start, cuts them to the part kept and leaves out those outside it; MPEG-TS,
    which cannot hold chapters, gets a note."""
    src = with_chapters(
        synth_video(tmp_path / "plain.mkv", n=50),
        tmp_path / "in.mkv",
        [(0, 600, "Intro"), (600, 1400, "Middle"), (1400, 2000, "End")],
    )
    assert chapters_of(src) == [(0.0, 0.6, "Intro"), (0.6, 1.4, "Middle"), (1.4, 2.0, "End")]
    for suffix in (".mkv", ".mp4"):
        out = tmp_path / f"out{suffix}"
        status, err = run_cli("upscale", src, out, *FAST)
        assert status == 0, err
        assert chapters_of(out) == chapters_of(src), suffix
    out = tmp_path / "part.mkv"
    status, err = run_cli("upscale", src, out, "--start", "0.8", "--duration", "0.4", *FAST)
    assert status == 0, err
    assert chapters_of(out) == [(0.0, 0.4, "Middle")]
    status, err = run_cli("upscale", src, tmp_path / "out.ts", *FAST)
    assert status == 0 and "3 chapter(s) dropped: mpegts cannot hold chapters" in err, err
    # --frames 30 (1.2 s at 25 fps): the chapter past the end is dropped, the one across it cut
    out = tmp_path / "first30.mkv"
    status, err = run_cli("upscale", src, out, "--frames", "30", *FAST)
    assert status == 0, err
    assert chapters_of(out) == [(0.0, 0.6, "Intro"), (0.6, 1.2, "Middle")]


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_live_recording_keeps_chapters_on_its_clock_cut_at_its_end(tmp_path: Path, suffix: str) -> None:
    """`vsr live` into a container that holds chapters: the input's chapters on the
    recording's clock (from its first frame), the one across the recording's end cut there and
    the one after it dropped (they are written when the recording ends: only then is its end
    known)."""
    src = with_chapters(
        synth_video(tmp_path / "plain.mkv", n=50),  # 2 s
        tmp_path / "in.mkv",
        [(0, 600, "Intro"), (600, 1400, "Middle"), (1400, 3000, "End"), (3000, 4000, "Later")],
    )
    out = tmp_path / f"rec{suffix}"
    status, err = run_cli("live", src, out, "--quality", "fast", "--device", "cpu")
    assert status == 0, err
    times = video_stats(out)["times"]
    got = chapters_of(out)
    assert [t for *_, t in got] == ["Intro", "Middle", "End"], got
    assert got[:2] == [(0.0, 0.6, "Intro"), (0.6, 1.4, "Middle")]
    assert got[2][0] == 1.4 and times[-1] < got[2][1] <= 2.0 + 0.001, (got, times[-3:])


def serve_each_once(files: list[Path]) -> tuple[int, threading.Thread]:
    """A TCP server on loopback that sends each of `files` to one connection, in order, then
    stops listening: a live source that restarts with a new stream, then goes away."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(30)

    def run() -> None:
        with listener:
            for f in files:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with conn:
                    conn.sendall(f.read_bytes())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return int(listener.getsockname()[1]), thread


@pytest.mark.slow
def test_live_chapters_follow_each_connection_of_a_restarted_source(tmp_path: Path) -> None:
    """A live source that restarts with a new stream brings its own chapters: the recording
    has the first connection's chapters from its start, cut where the second connection's
    part begins, and the second's moved to where that part begins, cut at the recording's
    end."""
    plain = synth_video(tmp_path / "plain.mkv", n=50)  # 2 s
    first = with_chapters(plain, tmp_path / "a.mkv", [(0, 1000, "A1"), (1000, 2000, "A2")])
    second = with_chapters(plain, tmp_path / "b.mkv", [(0, 800, "B1"), (800, 1600, "B2"), (1600, 2000, "B3")])
    port, server = serve_each_once([first, second])
    out = tmp_path / "rec.mkv"
    status, err = run_cli(
        "live", f"tcp://127.0.0.1:{port}", out, "--reconnect", "1", "--stall-timeout", "1", *FAST
    )
    server.join(30)
    assert status == 1 and "did not come back" in err and "Traceback" not in err, err
    assert "is back after" in err, err  # the second connection was taken
    got = chapters_of(out)
    assert [t for *_, t in got] == ["A1", "A2", "B1", "B2", "B3"], got
    (a1s, a1e, _), (a2s, a2e, _), (b1s, b1e, _), (b2s, b2e, _), (b3s, b3e, _) = got
    assert (a1s, a1e) == (0.0, 1.0) and a2s == 1.0
    assert a2e == b1s and 1.9 <= b1s <= 2.1, got  # the second part follows the first
    assert abs(b1e - (b1s + 0.8)) <= 0.002 and b2s == b1e and abs(b2e - (b1s + 1.6)) <= 0.002, got
    assert b3s == b2e and b3e == round(b3e, 3) and b3e <= b1s + 2.0 + 0.001, got
    assert video_stats(out)["times"][-1] < b3e, got


@pytest.mark.slow
@needs(CEA608)
def test_hls_segment_keeps_its_cea608_captions(tmp_path: Path) -> None:
    """The HLS segment's CEA-608 captions (frames 0, 19 and 26) survive an upscale, frame
    for frame."""
    out = tmp_path / "out.mkv"
    status, err = run_cli("upscale", CEA608, out, "--frames", "30", "--scale", "2", *FAST)
    assert status == 0, err
    expected = frame_captions(CEA608)[:30]
    assert sum(c is not None for c in expected) == 3
    assert frame_captions(out) == expected


@pytest.mark.slow
@needs(CHAPTERS)
def test_real_chapters_survive_and_move_with_start(tmp_path: Path) -> None:
    """The clip's 2 chapters (0-2 s, 2-5 s, at 30 fps) keep their titles and times in MKV and
    MP4 output, cut where --frames ends it (90 frames: the second ends at 3 s; 45: only the
    first is left, to 1.5 s); with --start 2.5 only the second is left, starting at 0; live,
    both are on the recording."""
    for suffix in (".mkv", ".mp4"):
        out = tmp_path / f"out{suffix}"
        status, err = run_cli("upscale", CHAPTERS, out, "--frames", "90", "--scale", "2", *FAST)
        assert status == 0, err
        # (MP4 ends a chapter where the next starts: 1.999 becomes 2.0)
        got = [(round(a, 2), round(b, 2), t) for a, b, t in chapters_of(out)]
        assert got == [(0.0, 2.0, "Chapter 1"), (2.0, 3.0, "Chapter 2")], (suffix, got)
    out = tmp_path / "short.mkv"
    status, err = run_cli("upscale", CHAPTERS, out, "--frames", "45", "--scale", "2", *FAST)
    assert status == 0, err
    assert chapters_of(out) == [(0.0, 1.5, "Chapter 1")]
    out = tmp_path / "late.mkv"
    status, err = run_cli("upscale", CHAPTERS, out, "--start", "2.5", "--scale", "2", *FAST)
    assert status == 0, err
    assert chapters_of(out) == [(0.0, 2.499, "Chapter 2")]
    out = tmp_path / "live.mkv"
    status, err = run_cli("live", CHAPTERS, out, "--scale", "2", "--quality", "fast", "--device", "cpu")
    assert status == 0, err
    got = chapters_of(out)
    assert got[0] == (0.0, 1.999, "Chapter 1") and got[1][:1] == (2.0,) and got[1][2] == "Chapter 2", got
    assert got[1][1] <= 5.0, got


def test_live_mode_carries_captions_too(tmp_path: Path) -> None:
    """`vsr live` puts each upscaled frame's captions on it as well (frames dropped to keep
    up take theirs with them)."""
    caps = {i: cc(i) for i in (0, 4, 9, 13)}
    src = captioned_clip(tmp_path / "in.mkv", caps)
    out = tmp_path / "out.mkv"
    status, err = run_cli("live", src, out, "--quality", "fast", "--device", "cpu")
    assert status == 0, err
    got = frame_captions(out)
    assert [c for c in got if c] and {c for c in got if c} <= set(caps.values())
    if len(got) != 16:
        pytest.skip(f"{16 - len(got)} frame(s) dropped to keep up: no frame-for-frame comparison")
    assert got == frame_captions(src)  # nothing dropped: frame for frame


def test_a_live_recordings_end_is_its_last_frame_plus_one_frame_not_plus_a_gap() -> None:
    """Where the video of a recording ends (live mode cuts the chapters there): the last
    frame's time plus one frame's duration, also after frames were dropped before it (a CI
    run cut a chapter at 2.84 s on a recording whose last frame was at 1.96 s)."""
    from vsr.pipeline.sink import SinkCounters, _note_end

    counters = SinkCounters()
    for t in (0.0, 0.04, 0.08, 1.96):
        _note_end(counters, t)
    assert counters.video_end is not None and abs(counters.video_end - 2.0) < 1e-9
