"""Which codec each output stream gets: copy when the container takes it, re-encode audio
when it does not, drop what it cannot hold (with a note for the log). Pure decisions over
PyAV containers and streams, used by the sink when it opens the output (main thread).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av

from ..errors import reason

MP4_FAMILY = {"mp4", "mov", "ipod", "3gp", "3g2", "psp", "ismv", "f4v"}
# Codecs a muxer lists as possible but that players do not accept in it.
NOT_PORTABLE = {"mp4": {"vorbis"}, "mov": {"vorbis"}, "ipod": {"vorbis"}}
# Muxers without a codec tag table, for which FFmpeg cannot answer "does it take X?".
ALSO_ACCEPTED = {"mpegts": {"aac", "mp3", "mp2", "ac3", "eac3", "opus", "dts", "truehd", "aac_latm"}}
# FLV's audio header has a 2-bit rate field: codecs other than AAC (whose rate it ignores)
# and Speex (16 kHz only) must be at one of these rates, MP3 also at 48 kHz (stored as
# 44.1). FFmpeg's muxer refuses anything else when the header is written ("Function not
# implemented"), so such audio is re-encoded to AAC instead (which keeps the rate).
FLV_RATES = {44100, 22050, 11025}
# Per-stream metadata that describes the old encoding and would be wrong on the new one.
STALE_TAGS = {
    "encoder",
    "duration",
    "bps",
    "number_of_frames",
    "number_of_bytes",
    "_statistics_writing_app",
    "_statistics_writing_date_utc",
    "_statistics_tags",
    "vendor_id",
    "handler_name",
}


def copy_tags(src: dict[str, str], dst: Any, stale: set[str]) -> None:
    """Carry metadata tags over, except those describing the old encoding (`stale`)."""
    for k, val in src.items():
        if k.lower() not in stale:
            dst[k] = val


#: Muxers that take H.264 although PyAV cannot list it (no codec tag table).
H264_WITHOUT_TABLE = {"mpegts", "rtp_mpegts", "hls"}


def default_codec(container: Any) -> str:
    """libx264 wherever the container takes H.264, else the container's own video codec
    (VP9 for WebM, GIF for .gif, ...)."""
    fmt = container.format.name.split(",")[0]
    if "h264" in container.supported_codecs or fmt in H264_WITHOUT_TABLE:
        return "libx264"
    try:
        return str(av.Codec(container.default_video_codec, "w").name)
    except (av.error.FFmpegError, ValueError, TypeError):
        return "libx264"


def plan_stream(container: Any, s: Any, notes: list[str]) -> tuple[Any, bool] | None:
    """(output stream, re-encode?) for input stream `s`; None when it cannot be carried.

    Copied when the container accepts the codec, audio re-encoded otherwise.
    """
    fmt = container.format.name.split(",")[0]
    codec = s.codec_context.name
    if s.type == "audio" and not (s.codec_context.sample_rate and s.codec_context.channels):
        # The demuxer never saw this stream's parameters (no packets near the start, or a
        # damaged header): a muxer cannot write a header for it.
        notes.append(
            f"audio stream #{s.index} ({codec}) dropped: its sample rate or channel "
            "count could not be read from the input"
        )
        return None
    canonical = s.codec_context.codec.canonical_name
    accepted = (
        codec in container.supported_codecs or canonical in ALSO_ACCEPTED.get(fmt, set())
    ) and codec not in NOT_PORTABLE.get(fmt, set())
    why = f"{fmt} cannot hold {codec}"
    if accepted and s.type == "audio" and not _rate_fits(fmt, canonical, s.codec_context.sample_rate):
        accepted, why = False, f"{fmt} cannot hold {codec} at {s.codec_context.sample_rate} Hz"
    if accepted:
        out = container.add_stream_from_template(s)
        copy_tags(s.metadata, out.metadata, STALE_TAGS)
        return out, False
    if s.type != "audio":
        notes.append(f"{s.type} stream #{s.index} ({codec}) dropped: {fmt} cannot hold it (try .mkv)")
        return None
    target = audio_encoder_for(container, fmt)
    if target is None:
        notes.append(f"audio stream #{s.index} ({codec}) dropped: {fmt} holds no audio")
        return None
    rate = s.codec_context.sample_rate or 48000
    try:
        out = container.add_stream(target, rate=rate)
    except (av.error.FFmpegError, ValueError) as exc:
        notes.append(
            f"audio stream #{s.index} ({codec}) dropped: cannot re-encode it to "
            f"{target} for {fmt} ({reason(exc)})"
        )
        return None
    layout = s.codec_context.layout
    if layout is not None and layout.nb_channels:
        # AVI/WAV give unspecified-order layouts ("2 channels") that encoders reject.
        out.codec_context.layout = "mono" if layout.nb_channels == 1 else "stereo"
    out.time_base = Fraction(1, rate)
    copy_tags(s.metadata, out.metadata, STALE_TAGS)
    notes.append(f"audio stream #{s.index} ({codec}) re-encoded to {target}: {why}")
    return out, True


def _rate_fits(fmt: str, codec: str, rate: int) -> bool:
    """Whether the muxer can write audio of this codec at this sample rate (see FLV_RATES)."""
    if fmt != "flv" or codec == "aac":
        return True
    if codec == "speex":
        return rate == 16000
    return rate in FLV_RATES or (codec == "mp3" and rate == 48000)


def audio_encoder_for(container: Any, fmt: str) -> str | None:
    """The audio encoder to re-encode into for this muxer; None when it holds no audio."""
    if fmt in MP4_FAMILY or fmt in ("matroska", "mpegts", "flv", "adts"):
        return "aac"
    if fmt in ("webm", "ogg", "ogv"):
        return "libopus"  # FFmpeg's Ogg default, FLAC, fails at the first packet
    if fmt == "avi":
        return "libmp3lame"
    codec = container.default_audio_codec
    return None if not codec or codec == "none" else str(codec)
