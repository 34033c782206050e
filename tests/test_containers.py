"""Behaviour across containers and codecs with the real bundled x3 model: generated inputs
(vsr.lab.media.synth_video, 64x48) in mp4, mkv, webm, avi and mpegts, with H.264 (with and
without B-frames), HEVC (8 and 10 bit), VP8, VP9 and MPEG-4, constant and variable frame rate,
go to .mp4, .mkv, standard output and come from standard input, keeping frames, timestamps,
size and audio; a lossless output shows the pixels are exactly what the in-memory API gives.
"""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
from helpers import ROOT, pts_of, time_of

import vsr
from vsr.lab.media import synth_video, tone
from vsr.lab.recording import audible, first_times

X265 = {"x265-params": "log-level=error"}
SIZE = (64, 48)
OUT_SIZE = (192, 144)

#: kind -> (file extension, synth_video arguments)
INPUTS: dict[str, tuple[str, dict[str, Any]]] = {
    "mp4-h264-bframes-aac": ("mp4", {"bframes": True}),
    "mp4-h264-aac": ("mp4", {"bframes": False}),
    "mkv-vp9-opus": ("mkv", {"codec": "libvpx-vp9", "audio": "libopus"}),
    "mkv-hevc-aac": ("mkv", {"codec": "libx265", "options": X265}),
    "webm-vp8-opus": ("webm", {"codec": "libvpx", "audio": "libopus"}),
    "avi-mpeg4-mp3": ("avi", {"codec": "mpeg4", "audio": "libmp3lame"}),
    "mp4-hevc-10bit-aac": ("mp4", {"codec": "libx265", "pix_fmt": "yuv420p10le", "options": X265}),
    "mp4-h264-vfr-aac": ("mp4", {"vfr": True, "bframes": False}),
    "ts-h264-aac": ("ts", {"container_format": "mpegts", "bframes": False}),
    "avi-mpeg4-mulaw": ("avi", {"codec": "mpeg4", "audio": "pcm_mulaw"}),
}


def make(kind: str, folder: Path) -> Path:
    ext, kwargs = INPUTS[kind]
    return synth_video(folder / f"{kind}.{ext}", size=SIZE, **kwargs)


def frames(path: Path) -> tuple[list[float], set[tuple[int, int]]]:
    """Decoded video frame times (s) and the set of frame sizes."""
    with av.open(str(path)) as c:
        times, sizes = [], set()
        for f in c.decode(c.streams.video[0]):
            times.append(float(time_of(f)))
            sizes.add((f.width, f.height))
    return times, sizes


def audio(path: Path) -> tuple[str | None, list[bytes]]:
    """The first audio stream's codec (canonical name) and its packets' bytes."""
    codec, packets = audio_packets(path)
    return codec, [data for _, data in packets]


def audio_packets(path: Path) -> tuple[str | None, list[tuple[float, bytes]]]:
    """The first audio stream's codec (canonical name) and its packets as (end time, bytes)."""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None, []
        s = c.streams.audio[0]
        return s.codec_context.codec.canonical_name, [
            (float(time_of(p) + (p.duration or 0) * p.time_base), bytes(p)) for p in c.demux(s) if p.size
        ]


def assert_copied(src: Path, out_packets: list[bytes]) -> None:
    """The output's audio packets are the input's, byte for byte and in order; a container that
    cannot store negative times may leave out the leading pre-roll packets (AAC priming, which
    end at or before time 0 and are never heard)."""
    _, packets = audio_packets(src)
    preroll = 0
    while preroll < len(packets) and packets[preroll][0] <= 0:
        preroll += 1
    everything = [data for _, data in packets]
    assert len(everything) > 10
    assert out_packets in (everything, everything[preroll:]), (
        f"{len(out_packets)} output packets are not the {len(everything)} input packets "
        f"({preroll} of them pre-roll)"
    )


def bgr_frames(path: Path) -> list[npt.NDArray[np.uint8]]:
    """Decoded frames as BGR, converted the way vsr's decoder stage converts them."""
    from vsr.media.color import frame_to_bgr

    with av.open(str(path)) as c:
        return [frame_to_bgr(f) for f in c.decode(c.streams.video[0])]


def upscale(
    src: Path, dst: Path, model: vsr.ModelOptions | None = None, color: str = "auto", **sink: Any
) -> vsr.Stats:
    sink.setdefault("preset", "ultrafast")
    return vsr.upscale_video(src, vsr.SinkOptions(str(dst), **sink), model=model, color=color)


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """`python -m vsr upscale ARGS` in a child process; stdin, stdout and stderr are real
    (non-seekable) pipes."""
    return subprocess.run(
        [sys.executable, "-m", "vsr", "upscale", *args, "--preset", "ultrafast", "--progress", "none"],
        cwd=ROOT,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=120,
        check=False,
    )


def upscale_to_stdout(src: Path, fmt: str, saved: Path) -> subprocess.CompletedProcess[bytes]:
    """`vsr upscale SRC - --format FMT` through a real pipe; what came out is saved as `saved`."""
    proc = cli(str(src), "-", "--format", fmt)
    assert proc.returncode == 0, proc.stderr.decode()
    saved.write_bytes(proc.stdout)
    return proc


def assert_same_video(src: Path, out: Path) -> None:
    src_times, src_sizes = frames(src)
    out_times, out_sizes = frames(out)
    assert src_sizes == {SIZE}
    assert len(out_times) == len(src_times) == 12
    assert out_times == pytest.approx(src_times, abs=1e-3)
    assert out_sizes == {OUT_SIZE}


VIDEO_KINDS = [k for k in INPUTS if k != "avi-mpeg4-mulaw"]


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
@pytest.mark.parametrize("kind", VIDEO_KINDS)
def test_frames_timestamps_and_size_survive(kind: str, ext: str, tmp_path: Path) -> None:
    """Every frame comes out, at its input time (within 1 ms), exactly 3x larger, whatever the container
    and codec."""
    src = make(kind, tmp_path)
    out = tmp_path / f"out{ext}"
    stats = upscale(src, out)
    assert stats.frames == 12
    assert stats.output_size == OUT_SIZE
    assert_same_video(src, out)


def test_writes_matroska_to_standard_output(tmp_path: Path) -> None:
    """`vsr upscale IN - --format matroska` writes a complete, decodable Matroska stream to stdout."""
    src = make("mkv-vp9-opus", tmp_path)
    out = tmp_path / "stdout.mkv"
    upscale_to_stdout(src, "matroska", out)
    with av.open(str(out)) as c:
        assert c.format.name.startswith("matroska")
    assert_same_video(src, out)
    codec, packets = audio(out)
    assert codec == "opus" and packets


@pytest.mark.parametrize("kind", ["mkv-vp9-opus", "ts-h264-aac"])
def test_reads_standard_input(kind: str, tmp_path: Path) -> None:
    """`vsr upscale - OUT` reads a Matroska or MPEG-TS stream piped into stdin."""
    src = make(kind, tmp_path)
    out = tmp_path / "from_stdin.mp4"
    proc = cli("-", str(out), stdin=src.read_bytes())
    assert proc.returncode == 0, proc.stderr.decode()
    assert_same_video(src, out)
    assert audio(out)[0] == audio(src)[0]


@pytest.mark.parametrize(
    ("kind", "ext"),
    [
        ("mp4-h264-bframes-aac", ".mp4"),
        ("mp4-h264-bframes-aac", ".mkv"),
        ("avi-mpeg4-mp3", ".mp4"),
        ("mkv-vp9-opus", ".mkv"),
        ("webm-vp8-opus", ".mp4"),  # MP4 holds Opus (ISO/IEC 14496-12 Opus mapping): copied
    ],
)
def test_audio_is_copied_bit_exact(kind: str, ext: str, tmp_path: Path) -> None:
    """Audio the output container accepts is copied: the same packets, byte for byte, in the same order."""
    src = make(kind, tmp_path)
    out = tmp_path / f"out{ext}"
    upscale(src, out)
    out_codec, out_packets = audio(out)
    assert out_codec == audio(src)[0]
    assert_copied(src, out_packets)


@pytest.mark.parametrize(
    ("kind", "ext", "codec", "expected"),
    [
        ("avi-mpeg4-mulaw", ".mp4", "libx264", "aac"),  # MP4 cannot hold G.711 mu-law
        ("mp4-h264-aac", ".webm", "libvpx-vp9", "opus"),  # WebM cannot hold AAC
    ],
)
def test_audio_is_reencoded_when_container_refuses_it(
    kind: str, ext: str, codec: str, expected: str, tmp_path: Path
) -> None:
    """Audio the output container cannot hold is re-encoded (AAC for .mp4, Opus for .webm), not dropped."""
    src = make(kind, tmp_path)
    out = tmp_path / f"out{ext}"
    upscale(src, out, codec=codec)
    out_codec, out_packets = audio(out)
    assert audio(src)[0] != expected
    assert out_codec == expected
    assert len(out_packets) > 10
    assert_same_video(src, out)


@pytest.mark.slow
def test_aac_is_copied_into_mpegts_on_standard_output(tmp_path: Path) -> None:
    """AAC goes into MPEG-TS on stdout as a copy: the same payloads, only wrapped in ADTS headers."""
    src = make("mp4-h264-aac", tmp_path)
    out = tmp_path / "stdout.ts"
    proc = upscale_to_stdout(src, "mpegts", out)
    assert b"re-encoded" not in proc.stderr, proc.stderr.decode()
    out_codec, out_packets = audio(out)
    assert out_codec == audio(src)[0] == "aac"

    def payload(adts: bytes) -> bytes:
        assert adts[0] == 0xFF and adts[1] & 0xF0 == 0xF0, "not an ADTS frame"
        return adts[7:] if adts[1] & 1 else adts[9:]  # protection_absent: 7-byte header

    assert_copied(src, [payload(p) for p in out_packets])
    assert frames(out)[1] == {OUT_SIZE}


@pytest.mark.parametrize(("pix_fmt", "tolerance"), [("bgr0", 2), ("yuv444p", 2)])
def test_lossless_output_matches_in_memory_upscaler(pix_fmt: str, tolerance: int, tmp_path: Path) -> None:
    """With lossless FFV1 and the card's YCrCb path, the output frames equal
    `Upscaler().upscale(input frame)` up to colour rounding."""
    # Measured with onnxruntime on CPU: bgr0 max 0 (identical), yuv444p max 2 (mean ~0.4).
    # (By the native path a yuv444p output upscales the 4:2:0 chroma planes themselves, which
    # differs from upscaling the decoder's RGB at sharp colour edges.)
    src = synth_video(tmp_path / "in.mp4", n=10, audio=None, bframes=False)
    out = tmp_path / "out.mkv"
    upscale(src, out, codec="ffv1", pix_fmt=pix_fmt, crf=None, preset=None, color="ycrcb")
    up = vsr.Upscaler()
    expected = [up.upscale(f) for f in bgr_frames(src)]
    got = bgr_frames(out)
    assert len(got) == len(expected) == 10
    worst = max(int(np.abs(g.astype(np.int16) - e).max()) for g, e in zip(got, expected, strict=True))
    assert worst <= tolerance, f"max abs difference {worst}"


def test_batch_size_does_not_change_pixels(tmp_path: Path) -> None:
    """Upscaling one frame per model call or eight per call gives bit-identical lossless output
    (on the CPU: float16 on a GPU picks its kernels per batch shape, within one grey level)."""
    src = synth_video(tmp_path / "in.mp4", n=10, audio=None, bframes=False)
    outs = {}
    for batch in (1, 8):
        out = tmp_path / f"batch{batch}.mkv"
        upscale(
            src,
            out,
            vsr.ModelOptions(batch=batch, device=vsr.Device.CPU),
            codec="ffv1",
            pix_fmt="bgr0",
            crf=None,
            preset=None,
        )
        outs[batch] = bgr_frames(out)
    assert len(outs[1]) == len(outs[8]) == 10
    for a, b in zip(outs[1], outs[8], strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "ext,video,audio",
    [
        (".webm", "vp9", "opus"),  # WebM cannot hold H.264 or AAC: its own codecs are chosen
        (".ogv", "vp8", "opus"),
        (".gif", "gif", None),  # no audio at all in a GIF: the stream is dropped with a note
        (".ts", "h264", "aac"),  # MPEG-TS takes H.264 although FFmpeg lists no codec table
    ],
)
def test_output_container_gets_codecs_it_can_hold(
    ext: str, video: str, audio: str | None, tmp_path: Path
) -> None:
    """Without --codec, every output extension gets a video (and audio) codec it accepts."""
    src = synth_video(tmp_path / "in.mp4", n=4)
    out = tmp_path / f"out{ext}"
    upscale(src, out)
    with av.open(str(out)) as c:
        kinds = {s.type: s.codec_context.name for s in c.streams}
        assert kinds.get("video") == video and kinds.get("audio") == audio
        assert sum(1 for _ in c.decode(video=0)) == 4


def test_explicit_codec_the_container_cannot_hold_is_a_usage_error(tmp_path: Path) -> None:
    """--codec libx264 into .webm is refused before any work, with a hint."""
    import io

    from vsr.app.cli import main

    src = synth_video(tmp_path / "in.mp4", n=2)
    err = io.StringIO()
    assert main(["upscale", str(src), str(tmp_path / "o.webm"), "--codec", "libx264"], stderr=err) == 2
    assert "cannot put libx264 video into webm" in err.getvalue() and "Traceback" not in err.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == ["in.mp4"]


#: (name, input extension, synth_video arguments, output extension, the output's audio codec)
OFFSET_CLIPS = [
    # FFmpeg's MPEG-TS muxer starts at 1.4 s; FLV cannot hold MP2: re-encoded to AAC.
    ("ts-1.4s-mp2-to-flv", "ts", {"container_format": "mpegts", "audio": "mp2", "start": 1.4}, ".flv", "aac"),
    # A camera's audio starting 0.5 s after its video.
    (
        "ts-1.4s-mp2-late-to-flv",
        "ts",
        {"container_format": "mpegts", "audio": "mp2", "start": 1.4, "audio_offset": 0.5},
        ".flv",
        "aac",
    ),
    ("mkv-vorbis-late-to-mp4", "mkv", {"audio": "vorbis", "audio_offset": 0.5}, ".mp4", "aac"),
    # From 0 into a muxer that cannot store negative times: the AAC encoder's priming packet
    # (before 0) must not shift the video off its times.
    ("mkv-vorbis-to-flv", "mkv", {"audio": "vorbis"}, ".flv", "aac"),
    ("mkv-pcm-late-to-ts", "mkv", {"audio": "pcm_s16le", "audio_offset": 0.3}, ".ts", "aac"),
    # FLV takes PCM, but not at 48 kHz (its header's rate field): the muxer refused it
    # ("cannot open output: Function not implemented"); now re-encoded to AAC.
    ("mkv-pcm-48k-to-flv", "mkv", {"audio": "pcm_s16le"}, ".flv", "aac"),
]


@pytest.mark.parametrize(
    ("name", "ext", "kwargs", "out_ext", "out_codec"), OFFSET_CLIPS, ids=[c[0] for c in OFFSET_CLIPS]
)
def test_reencoded_audio_keeps_its_place_next_to_the_video(
    name: str, ext: str, kwargs: dict[str, Any], out_ext: str, out_codec: str, tmp_path: Path
) -> None:
    """Audio the output re-encodes keeps the input's timing against the video: the video
    keeps its input times, the audio starts where it started relative to the video (its
    packets within one video frame, the encoder's priming included; the tone heard within
    one audio frame), and it lasts as long (within one audio frame). Before, the encoder
    timed it from 0: an MPEG-TS input starting at 1.4 s came out with its audio 1.4 s before
    its video."""
    src = synth_video(tmp_path / f"{name}.{ext}", n=25, size=SIZE, bframes=False, **kwargs)
    out = tmp_path / f"out{out_ext}"
    upscale(src, out)
    assert audio(out)[0] == out_codec != audio(src)[0]
    frame = 1 / 25
    first_in, first_out = first_times(src), first_times(out)
    assert first_out["video"] == pytest.approx(first_in["video"], abs=1e-3)
    offset_in = first_in["audio"] - first_in["video"]
    assert abs((first_out["audio"] - first_out["video"]) - offset_in) <= frame, (first_in, first_out)
    heard_in, heard_out = audible(src), audible(out)
    assert heard_in is not None and heard_out is not None
    assert heard_in[0] - first_in["video"] == pytest.approx(kwargs.get("audio_offset", 0.0), abs=1e-3)
    audio_frame = 1024 / 48000  # AAC's
    assert heard_out[0] - first_out["video"] == pytest.approx(
        heard_in[0] - first_in["video"], abs=audio_frame
    )
    assert heard_out[1] - heard_out[0] == pytest.approx(heard_in[1] - heard_in[0], abs=audio_frame)


def test_reencoded_audio_times_are_increasing_keep_gaps_and_close_rounding() -> None:
    """Decoded MP2 frames (1152 samples) timed in MPEG-TS ticks go to the AAC encoder (1024)
    with times in samples: rounding to the input's tick is closed up, a real gap (lost
    packets) is kept so that what follows stays in place, and a frame that overlaps the one
    before it starts where that one ended; the encoder's packets strictly increase."""
    from vsr.media.decode import AudioTimeline

    def mp2_frame(ticks: int) -> av.AudioFrame:
        frame = tone(0, 1152)
        frame.pts, frame.time_base = ticks, Fraction(1, 90000)
        return frame

    start, step = 126_000, 2160  # 1.4 s; 1152 samples in 1/90000 ticks
    ticks = [start + step * i for i in range(3)]
    ticks += [start + step * 3 + 1]  # rounded a tick late
    ticks += [start + step * 8, start + step * 9]  # after 4 lost frames
    ticks += [start + step * 10 - 900]  # overlapping the frame before it by 10 ms
    timeline = AudioTimeline()
    placed = [timeline.place(1, mp2_frame(t)) for t in ticks]
    assert all(item is not None and item.frame.time_base == Fraction(1, 48000) for item in placed)
    pts = [item.frame.pts for item in placed if item is not None]
    assert pts == [67_200 + 1152 * i for i in (0, 1, 2, 3, 8, 9, 10)]
    aac = av.CodecContext.create("aac", "w")
    aac.sample_rate, aac.layout, aac.format = 48000, "stereo", "fltp"
    aac.time_base = Fraction(1, 48000)
    aac.open()
    packets = [p for item in placed if item is not None for p in aac.encode(item.frame)]
    packets += aac.encode(None)
    times = [pts_of(p) for p in packets]
    assert times == sorted(set(times))
    after_gap = next(t for t in times if t > 67_200 + 1152 * 4)
    assert 67_200 + 1152 * 8 <= after_gap < 67_200 + 1152 * 8 + 1024  # within one AAC frame
