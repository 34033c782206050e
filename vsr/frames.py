"""Data passed between the pipeline's stages; nothing here runs in a thread of its own.

One `Frame` type travels from the decoder to the compose stage. Its `y` plane is at source
resolution on the way into the upscaler and at `scale` x resolution on the way out; the chroma
stays at source resolution until the compose stage merges it into a `Picture` for the encoder,
so the model stage's thread only touches luma.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy.typing as npt

if TYPE_CHECKING:  # PyAV is imported by the stages, not by whoever imports this module
    from av.video.reformatter import ColorPrimaries, ColorRange, ColorTrc


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded video frame, split into luma and chroma.

    Attributes:
        index: 0-based decode order.
        pts: presentation timestamp in `time_base` units (repaired if the input had none).
        time_base: unit of `pts`.
        captured: `time.monotonic()` when the frame left the decoder (latency metric).
        y: (H, W) luma before the upscaler, (sH, sW) after it: uint8, or uint16 (0..65535)
            for high bit depth input.
        crcb: chroma at source resolution: (H, W, 2) uint8 Cr/Cb (OpenCV's YCrCb order) on
            the YCrCb path, (cH, cW, 2) Cb/Cr planes at the source's depth on the native path.
        source_y: after the upscaler, the luma it was given (the live preview's bicubic half
            is made from it); None before.
        captions: the frame's closed captions (A53 side data: CEA-608/708), for the encoder
            to write back (`vsr.media.captions`); None when it has none.
        sar: the frame's pixel aspect ratio when its size or aspect is not the first
            frame's (the stream changed size mid-way: `media.resolution`); None when it is.
    """

    index: int
    pts: int
    time_base: Fraction
    captured: float
    y: npt.NDArray[Any]
    crcb: npt.NDArray[Any]
    source_y: npt.NDArray[Any] | None = None
    captions: bytes | None = None
    sar: Fraction | None = None


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """A compressed audio or subtitle packet copied untouched from input to output.

    `stream_index` is the input stream's index; the sink maps it to its output stream.
    """

    stream_index: int
    packet: Any  # av.Packet


@dataclass(frozen=True, slots=True)
class VideoPacket:
    """An already encoded video packet for an output that copies video (the scale-out join)."""

    packet: Any  # av.Packet


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A decoded audio frame, for output containers that cannot take the input's codec.

    Its pts/time_base (1/sample rate) are on the output's clock, the video's, and the encoder
    keeps them (`decode.AudioTimeline` sets them).
    """

    stream_index: int
    frame: Any  # av.AudioFrame


@dataclass(frozen=True, slots=True)
class Picture:
    """An upscaled frame ready for the encoder (made by the compose stage).

    `frame` is an av.VideoFrame in the output's pixel format, carrying its pts/time_base.
    """

    index: int
    captured: float
    frame: Any  # av.VideoFrame


def seconds_of(obj: Any) -> float | None:
    """A PyAV packet's or frame's presentation time in seconds; None when it has none."""
    if obj is None or obj.pts is None or not obj.time_base:
        return None
    return float(obj.pts * obj.time_base)


Item = Frame | Picture | AudioPacket | AudioFrame | VideoPacket


class MatrixTag(IntEnum):
    """FFmpeg's AVColorSpace: the matrix a frame or stream is *tagged* with.

    Why vsr names it: PyAV names the other colour tags (`ColorRange`, `ColorPrimaries`,
    `ColorTrc` in `av.video.reformatter`), but its `Colorspace` is swscale's matrix
    (SWS_CS_*), whose numbers differ (BT.601 is 5 there, 5 and 6 here), not this tag. Here
    beside `VideoInfo`, which it types, rather than in `vsr.media.color`, which converts with
    it (`color.sws_colorspace`): this module imports no stage package."""

    RGB = 0
    BT709 = 1
    UNSPECIFIED = 2
    FCC = 4
    BT470BG = 5
    SMPTE170M = 6
    SMPTE240M = 7
    YCGCO = 8
    BT2020_NCL = 9
    BT2020_CL = 10
    ICTCP = 14


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What the sink must know about the input video before the first frame arrives.

    The colour tags are PyAV's enums (`av.video.reformatter`: `ColorRange`, `ColorPrimaries`,
    `ColorTrc`) and, for the matrix, `MatrixTag` (PyAV's `Colorspace` is swscale's); a tag is
    a plain int only for a number its enum has no name for (FFmpeg's reserved values), kept
    as it is so that the output is tagged as the input was.
    """

    width: int
    height: int
    time_base: Fraction
    rate: Fraction | None  # average frame rate, None when the container does not say
    frames: int  # frame count estimate for progress; 0 when unknown
    duration: float | None  # seconds, None when unknown
    pix_fmt: str
    colorspace: MatrixTag | int  # the matrix the input is tagged with
    color_range: ColorRange | int  # MPEG (limited), JPEG (full) or UNSPECIFIED
    color_primaries: ColorPrimaries | int
    color_trc: ColorTrc | int
    rotation: int  # counter-clockwise degrees from the display matrix (0 if none)
    metadata: dict[str, str] = field(default_factory=dict)
    codec: str = ""
    bit_depth: int = 8
    sar: Fraction = Fraction(1)  # sample (pixel) aspect ratio; 1 when square or unknown
    hdr10: Any = None  # picture_metadata.Hdr10 from the first frame's side data, or None
    dolby_vision: bool = False  # Dolby Vision metadata present (it cannot survive scaling)
    captions: bool = False  # the first frame carries closed captions (A53 side data)


@dataclass(frozen=True, slots=True)
class Chapter:
    """A chapter of the input, on the output's clock (a trim's shift applied, cut to its span).

    `start`/`end` count in `time_base` units; `metadata` holds its title (and any other tag).
    """

    start: int
    end: int
    time_base: Fraction
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """Everything known about an opened input.

    `passthrough` holds the input's audio and subtitle streams (PyAV stream objects) that the
    sink may copy or re-encode; `container_metadata` is the input's global metadata.
    """

    url: str
    format_name: str
    video: VideoInfo
    passthrough: tuple[Any, ...]
    container_metadata: dict[str, str]
    is_image: bool
    dropped_streams: tuple[str, ...] = ()  # "#2 data (tmcd)": streams no output carries
    chapters: tuple[Chapter, ...] = ()


@dataclass(frozen=True, slots=True)
class StageTimes:
    """Seconds each stage spent working (not waiting on its queues)."""

    decode: float = 0.0
    color: float = 0.0
    model: float = 0.0
    encode: float = 0.0
    wait_in: float = 0.0  # upscaler waiting for frames (the decoder is the limit)
    wait_out: float = 0.0  # upscaler waiting for room (the encoder is the limit)


@dataclass(frozen=True, slots=True)
class Steady:
    """A live run after its start-up: from `STEADY_AFTER` seconds after its first upscaled
    frame to its end.

    Why: every live run drops the frames that queued up while the stream was probed and the
    first frames went through, so its whole-run drop count mixes start-up with keeping up;
    these figures are only the latter (whether the model keeps up with the input here)."""

    seconds: float
    frames_in: int  # decoded in that span
    dropped: int  # of those, dropped at the input to keep up

    @property
    def dropped_share(self) -> float:
        return self.dropped / self.frames_in if self.frames_in > 0 else 0.0


#: Seconds after a live run's first upscaled frame at which its steady state (`Steady`) begins.
STEADY_AFTER = 2.0


@dataclass(frozen=True, slots=True)
class LiveStats:
    """What only a live run (`vsr live`, `Mode.LIVE`) reports; in `Stats.live`."""

    dropped: int = 0  # frames dropped at the input because the model could not keep up
    steady: Steady | None = None  # after start-up (None: the run ended before it began)
    reconnects: int = 0  # times a lost network input was reopened
    output_reconnects: int = 0  # times a network output was reopened (--output-reconnect)
    input_lost: str = ""  # why the input ended early, if it did


@dataclass(frozen=True, slots=True)
class ScaleOutStats:
    """What only a scale-out job (`--segments` and friends) reports; in `Stats.scale_out`."""

    segments: int = 0  # segments the job was split into


@dataclass(frozen=True, slots=True)
class Stats:
    """What a finished run did, returned by `upscale_video()` and printed by the CLI.

    The fields every run has come first; `live` holds what only a live run reports, and
    `scale_out` what only a scale-out job does (None for the other kinds). The CLI's `done`
    record and the service's job figures are flat: the parts' keys sit beside the others,
    at their defaults when the part is None.
    """

    frames: int
    seconds: float
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    scale: int
    provider: str
    batch: int
    stages: StageTimes
    audio_streams: int = 0
    decode_errors: int = 0  # packets that could not be decoded (their frames are missing)
    corrupt_frames: int = 0  # frames decoded with concealed damage (kept)
    damage_times: tuple[float, ...] = ()  # input times (s) of both kinds, sorted
    repaired_timestamps: int = 0
    discontinuities: int = 0  # jumps of the input's clock, mended so the timeline goes on
    size_changes: int = 0  # times the input's picture changed size (or pixel aspect) mid-stream
    output: str = ""
    frames_in: int = 0  # frames decoded (live: frames_in - frames = live.dropped); 0 when not counted
    latency: dict[str, float] = field(default_factory=dict)  # decode to output, seconds: p50, p95, p99, max
    precision: str = ""  # the model's arithmetic: "fp32", "bf16", "fp16" or "int8" ("" for custom upscalers)
    model: str = ""  # the model file that ran, without .onnx (e.g. "fast_x3_video"; "" for custom upscalers)
    engine: str = ""  # what ran it: "onnxruntime" or "openvino" ("" for custom upscalers)
    live: LiveStats | None = None  # a live run's own figures (None: not a live run)
    scale_out: ScaleOutStats | None = None  # a scale-out job's own figures (None: not split)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0
