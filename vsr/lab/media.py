"""Test media made by code: one source of pictures and sound for the tests' generated clips,
the live test stream (scripts/media/send_test_stream.py), the fuzz corpus and the scale-out
benchmark; and gradient clips that carry pixel aspect ratio, bit depth and colour tags for
the fidelity tests. Deterministic: the same arguments give the same pixels and samples.
Runs in the caller's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
import numpy.typing as npt


def pattern(i: int, w: int, h: int) -> npt.NDArray[np.uint8]:
    """Frame `i` of the test pattern: gradients, a checkerboard that flips each frame and a
    moving white square; BGR, shape (h, w, 3)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (xx * 255 // max(1, w - 1)).astype(np.uint8)
    img[..., 1] = (yy * 255 // max(1, h - 1)).astype(np.uint8)
    img[..., 2] = ((xx // 4 + yy // 4 + i) % 2 * 200 + 20).astype(np.uint8)
    s = max(2, min(w, h) // 4)
    x0 = (i * 3) % max(1, w - s)
    img[2 : 2 + s, x0 : x0 + s] = (255, 255, 255)
    return img


def tone(start: int, samples: int, channels: int = 2, rate: int = 48000) -> av.AudioFrame:
    """`samples` of a 440 Hz sine from sample `start`, float planar, timed in samples."""
    t = np.arange(start, start + samples) / rate
    chunk = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(
        np.tile(chunk, (channels, 1)), format="fltp", layout="stereo" if channels == 2 else "mono"
    )
    frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
    return frame


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """Write a real media file without any video stream: `seconds` of stereo AAC tone.

    Returns:
        `path`.
    """
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=48000, layout="stereo")
        total = int(seconds * 48000)
        for start in range(0, total, 1024):
            out.mux(stream.encode(tone(start, min(1024, total - start))))
        out.mux(stream.encode(None))
    return path


def synth_video(
    path: Path,
    n: int = 12,
    size: tuple[int, int] = (64, 48),
    fps: int | Fraction = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: str | None = "aac",
    container_format: str | None = None,
    vfr: bool = False,
    bframes: bool = True,
    options: dict[str, str] | None = None,
    bt709: bool = False,
    start: float = 0.0,
    audio_offset: float = 0.0,
    time_base: Fraction | None = None,
    container_options: dict[str, str] | None = None,
    sar: Fraction | None = None,
) -> Path:
    """Write a small real video with PyAV: `n` frames of `pattern()`, optional audio.

    Args:
        path: the file to write; its suffix picks the container unless `container_format`.
        n: frames.
        size: (width, height).
        fps: frame rate (30000/1001 as a Fraction).
        codec, pix_fmt: the video encoder and its pixel format.
        audio: the audio encoder (a tone as long as the video), or None for none.
        container_format: FFmpeg's name of the container, when not the suffix's.
        vfr: frame durations alternate between 1 and 2 ticks of 1/(2*fps), so the clip has
            genuinely variable frame timing.
        bframes: libx264 with B-frames (preset medium) or without (ultrafast, bf 0).
        options: more encoder options.
        bt709: tag the video BT.709, limited range.
        start: the first frame's time in seconds (FFmpeg's MPEG-TS muxer starts at 1.4).
        audio_offset: seconds the audio starts after the first frame (a camera's audio
            often starts later; negative: before).
        time_base: the video's time base (default 1/rate: one tick a frame); the muxer may
            store a finer one (MP4 raises timescales below 10000 unless
            `video_track_timescale` is set).
        container_options: muxer options (`video_track_timescale`, `movflags`, ...).
        sar: the pixel aspect ratio written into the bitstream (None: square).

    Returns:
        `path`.
    """
    w, h = size
    with av.open(str(path), "w", format=container_format, options=dict(container_options or {})) as out:
        rate = Fraction(fps) * 2 if vfr else Fraction(fps)
        vs = cast(av.VideoStream, out.add_stream(codec, rate=rate))
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        opts = dict(options or {})
        if codec == "libx264":
            opts.setdefault("preset", "ultrafast" if not bframes else "medium")
            if not bframes:
                opts.setdefault("bf", "0")
        vs.codec_context.options = opts
        if sar is not None:
            vs.codec_context.sample_aspect_ratio = sar
        if bt709:
            cc = vs.codec_context
            cc.colorspace = cc.color_primaries = cc.color_trc = 1
            cc.color_range = 1
        tb = time_base or 1 / rate
        step = 1 / (rate * tb)
        if step.denominator != 1:
            raise ValueError(f"a frame at {rate} fps is not a whole number of ticks of {tb}")
        vs.codec_context.time_base = tb
        if time_base is not None:
            vs.time_base = tb
        aus: av.AudioStream | None = None
        if audio:
            aus = cast(
                av.AudioStream,
                out.add_stream(audio, rate=48000, layout="stereo" if audio != "pcm_s16le" else "mono"),
            )
            if audio == "vorbis":  # FFmpeg's own Vorbis encoder (no libvorbis in PyAV's build)
                aus.codec_context.options = {"strict": "experimental"}
        first = pts = round(start / tb)
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(pattern(i, w, h), format="bgr24")
            vf.pts = pts
            vf.time_base = tb
            pts += int(step) * ((1 + i % 2) if vfr else 1)
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
        if aus is not None:
            total = int((pts - first) * tb * 48000)
            channels = 2 if audio != "pcm_s16le" else 1
            delay = round((first * tb + audio_offset) * 48000)
            for at in range(0, total, 1024):
                af = tone(at, min(1024, total - at), channels)
                af.pts = at + delay
                out.mux(aus.encode(af))
            out.mux(aus.encode(None))
    return path


def gradient_clip(
    path: Path,
    codec: str,
    pix_fmt: str,
    size: tuple[int, int] = (64, 48),
    n: int = 4,
    sar: Fraction | None = None,
    tags: dict[str, int] | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Write a small clip of a smooth colour gradient (so 10-bit precision shows), `n` frames
    at 25 fps, carrying what real footage carries besides its pixels.

    Args:
        path: the file to write; its suffix picks the container.
        codec, pix_fmt: the video encoder and its pixel format (any bit depth, any chroma layout).
        size: (width, height).
        n: frames.
        sar: sample aspect ratio, written at codec and stream level (Matroska keeps the latter).
        tags: colour properties (color_primaries, color_trc, colorspace, color_range) for the
            codec context and every frame.
        options: encoder options (libx264 always gets preset ultrafast instead).

    Returns:
        `path`.
    """
    from vsr.media.picture_metadata import set_stream_sar

    w, h = size
    with av.open(str(path), "w") as out:
        s = cast(av.VideoStream, out.add_stream(codec, rate=25))
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        cc = s.codec_context
        for k, v in (tags or {}).items():
            setattr(cc, k, v)
        s.time_base = Fraction(1, 25)
        if sar is not None:
            cc.sample_aspect_ratio = sar
            if not set_stream_sar(s, sar):  # Matroska stores it only at the stream level
                raise RuntimeError(f"cannot set the stream's sample aspect ratio in {path}")
        cc.options = {"preset": "ultrafast"} if codec == "libx264" else dict(options or {})
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        for i in range(n):
            rgb = np.stack([xx / w, yy / h, (xx + yy + i) / (w + h)], -1)
            frame = av.VideoFrame.from_ndarray((rgb * 65535).astype(np.uint16), format="rgb48le")
            frame = frame.reformat(format=pix_fmt)
            for k, v in (tags or {}).items():
                setattr(frame, k, v)
            frame.pts = i
            out.mux(s.encode(frame))
        out.mux(s.encode(None))
    return path


def remux(
    src: Path,
    dst: Path,
    *,
    shift: float = 0.0,
    keyframes: tuple[int, ...] = (),
    first_packet: Callable[[bytes], bytes] | None = None,
    format: str | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Copy `src`'s video and audio packets into `dst`, changing what real files get wrong
    or do differently, without re-encoding.

    Args:
        src, dst: the files; `dst`'s suffix picks its container unless `format`.
        shift: seconds added to every timestamp; negative moves the first frames before 0,
            which MP4 hides behind an edit list (its demuxer then marks them to be discarded).
        keyframes: decode positions of video packets to flag as keyframes although they are
            not (muxers that flag every I-frame, or a damaged index).
        first_packet: rewrites the bytes of the first video packet (an SEI saying another
            encoder version, ...).
        container_options: muxer options for `dst`.

    Returns:
        `dst`.
    """
    with (
        av.open(str(src)) as inp,
        av.open(str(dst), "w", format=format, options=dict(container_options or {})) as out,
    ):
        streams = [s for s in inp.streams if s.type in ("video", "audio")]
        mapping = {}
        for s in streams:
            o = out.add_stream_from_template(s)
            o.time_base = s.time_base
            mapping[s.index] = o
        position = 0
        for packet in inp.demux(streams):
            if not packet.size:
                continue
            target = mapping[packet.stream.index]
            if packet.stream.type == "video":
                if position == 0 and first_packet is not None:
                    new = av.Packet(first_packet(bytes(packet)))
                    new.pts, new.dts, new.duration = packet.pts, packet.dts, packet.duration
                    new.time_base, new.is_keyframe = packet.time_base, packet.is_keyframe
                    packet = new
                if position in keyframes:
                    packet.is_keyframe = True
                position += 1
            ticks = round(Fraction(shift) / packet.time_base) if packet.time_base else 0
            if packet.pts is not None:
                packet.pts += ticks
            if packet.dts is not None:
                packet.dts += ticks
            packet.stream = target
            out.mux(packet)
    return dst


def joined_ts(
    path: Path,
    parts: list[tuple[tuple[int, int], int]],
    fps: int = 25,
    start: float = 1.4,
    audio: str | None = "aac",
    restart: bool = False,
    sar: list[Fraction | None] | None = None,
) -> Path:
    """Write an MPEG-TS made of parts encoded one by one and joined byte for byte (as `cat`
    joins recordings, and as a stream that switches resolution or restarts looks on the
    wire): part i is `parts[i] = ((width, height), frames)` of `pattern()`.

    Args:
        path: the .ts to write (the parts are written beside it, then removed).
        fps: frame rate of every part.
        start: the first part's first time (FFmpeg's MPEG-TS muxer starts at 1.4 s).
        audio: each part's audio encoder (a tone as long as the part), or None.
        restart: every part's clock starts at `start` again (a restarted encoder), instead of
            going on from the part before.
        sar: each part's pixel aspect ratio (None: square).

    Returns:
        `path`.
    """
    at = start
    data = b""
    for i, (size, n) in enumerate(parts):
        piece = path.with_name(f"{path.stem}.part{i}.ts")
        synth_video(
            piece, n=n, size=size, fps=fps, audio=audio, start=at, bframes=False, sar=sar[i] if sar else None
        )
        data += piece.read_bytes()
        piece.unlink()
        if not restart:
            at += n / fps
    path.write_bytes(data)
    return path
