"""Configuration: frozen dataclasses and enums, built by the CLI or the Python API.

The library never sees argparse namespaces or free-form `**options`; every knob is a field
here, with its default, so a run is described completely by three small objects.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import TypeVar

from .channel import Policy
from .errors import UsageError

E = TypeVar("E", bound=enum.Enum)

#: Default input pixel budget: 4096x2160 (DCI 4K) frames, which become 12288x6480 at x3.
DEFAULT_MAX_PIXELS = 4096 * 2160


class Device(enum.Enum):
    """Where the model runs. AUTO prefers CUDA when onnxruntime offers it."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class Engine(enum.Enum):
    """What runs the model. AUTO: on CUDA, onnxruntime; on the CPU, the fastest of onnxruntime
    and OpenVINO (and of their precisions) that this CPU runs exactly enough, measured once
    per model and CPU and cached (`vsr.model.engine_choice`). OPENVINO runs on the CPU only."""

    AUTO = "auto"
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"


class Precision(enum.Enum):
    """The model's float arithmetic. AUTO: float16 on CUDA (tensor cores; within one grey level
    of float32, README "Performance"); on the CPU, bfloat16 where the CPU computes it natively
    (avx512_bf16, AMX), the model keeps the quality bars in it (`engine_choice.guard_verdict`)
    and OpenVINO measured faster, else float32 (`Engine.AUTO`). An int8
    model stays int8 whatever is asked, except that BF16 and FP16 refuse it."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


class OnError(enum.StrEnum):
    """What damaged input does. SKIP: what cannot be decoded is skipped and reported, frames
    with concealed damage are kept (FFmpeg's behaviour). STOP: the first damage ends the run
    with exit 1. (A str enum: "skip"/"stop" from the API or a manifest compare equal.)"""

    SKIP = "skip"
    STOP = "stop"


class ColorPath(enum.StrEnum):
    """How frames get from YUV to the model and back. AUTO: the native planes wherever input
    and output are planar YUV, else the YCrCb path; NATIVE: insist (with a warning when it
    cannot); YCRCB: the model card's OpenCV YCrCb round trip."""

    AUTO = "auto"
    NATIVE = "native"
    YCRCB = "ycrcb"


def as_enum(kind: type[E], value: E | str, what: str) -> E:
    """`value` as a member of `kind`: the member itself, or its string value (what a user of
    the Python API writes, `device="cuda"`).

    Raises:
        UsageError: `value` names no member (the message lists the values there are).
    """
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in kind)
        raise UsageError(f"unknown {what} {value!r}: it is one of {choices}") from None


class Mode(enum.Enum):
    """FILE: lossless and as fast as possible. LIVE: real time, bounded latency, drops frames
    at the input rather than fall behind. `tuning_for()` lists every difference."""

    FILE = "file"
    LIVE = "live"


@dataclass(frozen=True)
class InputPolicy:
    """How the decoder -> model channel holds frames: the one place vsr may drop them.

    Attributes:
        policy: BLOCK (back-pressure, lossless) or LATENCY (never wait; drop the oldest frame
            only when it could no longer be upscaled within `budget`).
        capacity: the most frames held (BLOCK: the producer waits; LATENCY: memory bound).
        budget: LATENCY: seconds a frame may wait plus be upscaled (`--max-latency`).
        trim_audio: LATENCY: audio that ends before the first upscaled frame is trimmed, so
            a recording whose first frames were dropped starts with video and audio together.
    """

    policy: Policy
    capacity: int
    budget: float = 0.0
    trim_audio: bool = False


@dataclass(frozen=True)
class Tuning:
    """The knobs that differ between file and live mode, in one place."""

    input: InputPolicy  # decoder -> model channel
    output_queue: int  # frames between model and encoder
    batch_wait: float | None  # None: wait for full batches; 0: take what is queued now
    decoder_threads: str  # "SLICE": no added delay, and no frames lost around damage
    reorder_depth: int  # frames held back to put timestamps in order
    temp_output: bool  # write a temporary file and rename it on success


#: Live: the input channel holds at most the frames a 60 fps source sends within the latency
#: budget (bursts fit: MPEG-TS delivers frames in pairs around audio, and a stream's first
#: ~0.8 s arrive at once after probing), and never more than this many (memory).
LIVE_MAX_HELD = 64


def tuning_for(mode: Mode, batch: int, max_latency: float = 0.5) -> Tuning:
    """The single table of every file/live difference; `max_latency` (seconds) is live's
    budget from a frame's arrival to its output."""
    if mode is Mode.FILE:
        # Decoding is a few ms against the model's tens to hundreds: frame threading would
        # gain little, and FFmpeg's frame-threaded VP9 decoder drops every frame that depends
        # on a damaged one (41 of 72 frames in one fuzz case; slice threading kept all 72).
        return Tuning(InputPolicy(Policy.BLOCK, max(2, 2 * batch)), max(2, 2 * batch), None, "SLICE", 4, True)
    held = max(2 * batch, min(LIVE_MAX_HELD, math.ceil(60 * max_latency)))
    return Tuning(InputPolicy(Policy.LATENCY, held, max_latency, trim_audio=True), 1, 0.0, "SLICE", 0, False)


@dataclass(frozen=True)
class LiveOptions:
    """Live-mode settings (ignored in file mode).

    Attributes:
        max_latency: target seconds from a frame's arrival to its output; the batch size
            adapts to stay under it.
        duration: stop (gracefully) after this many seconds; None: until the input ends.
        reconnect: seconds to keep retrying, with back-off, when a network input stalls or
            drops; 0: end at the first loss.
        preview: serve an MJPEG preview page over HTTP.
        preview_host, preview_port: where the preview listens (loopback by default).
    """

    max_latency: float = 0.5
    duration: float | None = None
    reconnect: float = 10.0
    preview: bool = False
    preview_host: str = "127.0.0.1"
    preview_port: int = 8080


class ProgressStyle(enum.Enum):
    """How progress is shown (--progress). AUTO: a bar on a terminal, nothing in pipes."""

    AUTO = "auto"
    BAR = "bar"
    JSON = "json"
    NONE = "none"


@dataclass(frozen=True)
class SourceOptions:
    """What to read.

    Attributes:
        url: a path, a URL FFmpeg can open, or "-" for standard input.
        format: force a demuxer (e.g. "mpegts"), as FFmpeg's `-f` before `-i`.
        options: demuxer/protocol options, as FFmpeg's `-key value` before `-i`.
        max_frames: stop after this many video frames (None: all).
        max_pixels: refuse inputs whose frames have more pixels than this (0: no limit); a
            damaged or hostile header can declare any size.
        decoder_threads: the decoder's threading (see `tuning_for`).
        timeout: seconds a read may block before it fails (a stalled network input).
        start_pts, end_pts: read only frames with start_pts <= pts < end_pts (a scale-out
            segment; start_pts is a keyframe's pts, end_pts None means to the end).
        video_only: ignore audio and subtitle streams.
        video_prime: NAL units (H.264/HEVC) put in front of a segment's first packet: what a
            straight decode learnt before start_pts (`scaleout.keyframes.KeyframeIndex.prime`).
        fingerprints: record a content fingerprint of every decoded frame kept
            (`media.fingerprint`; a scale-out segment's, for the check against a straight decode).
        start: seconds after the first video frame where the output begins (`--start`): a
            trim, which moves every output time that much earlier (`input.Span`).
        duration: seconds of input from `start` to read (`--duration`; None: to the end).
    """

    url: str
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    max_frames: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    decoder_threads: str = "SLICE"  # set from tuning_for(mode)
    timeout: float = 30.0  # seconds a read may block (network inputs) before it fails
    open_timeout: float = 30.0  # seconds opening may take (a live stream may start later)
    # A segment of a scale-out job: frames with start_pts <= pts < end_pts (video time base),
    # read by seeking to the keyframe at start_pts; video only (the join copies the audio).
    start_pts: int | None = None
    end_pts: int | None = None
    video_only: bool = False
    video_prime: tuple[bytes, ...] = ()
    fingerprints: bool = False
    start: float = 0.0
    duration: float | None = None


@dataclass(frozen=True)
class ModelOptions:
    """Which model runs, where, and how frames are grouped.

    Attributes:
        model: a path to an .onnx file or the name of a bundled model; None picks the
            bundled model for `scale` (default x3).
        scale: 2, 3 or 4 to pick a bundled model; checked against `model` when both given.
        device: execution provider choice.
        batch: frames per model call; 0 chooses by measurement (`batching.auto_batch`).
        tile: tile edge in input pixels for dynamic models (0: whole frames). Fixed-size
            models always tile at their own size.
        threads: the model engine's threads (0: its default, all cores).
        precision: the float arithmetic (see `Precision`).
        engine: onnxruntime, OpenVINO, or the measured choice (see `Engine`).
            (`device`, `precision` and `engine` also take their enum's string values:
            "cuda", "bf16", "openvino".)
        quality: the bundled model's tier with `scale`: "fast", "balanced" (None: the
            default) or "quality" (`registry.TIERS`); not together with `model`.
        degrade: what the bundled model was trained to undo: "clean" (None: the default)
            or "video", for input already damaged by an encoder (`registry.DEGRADATIONS`);
            not together with `model`.
    """

    model: str | None = None
    scale: int | None = None
    device: Device = Device.AUTO
    batch: int = 0
    tile: int = 0
    threads: int = 0
    precision: Precision = Precision.AUTO
    quality: str | None = None
    degrade: str | None = None
    engine: Engine = Engine.AUTO

    def __post_init__(self) -> None:
        # The enums' string values are taken too (`device="cuda"`), as the Python API always
        # took them; a string that names none fails here, at once, with the choices.
        object.__setattr__(self, "device", as_enum(Device, self.device, "device"))
        object.__setattr__(self, "precision", as_enum(Precision, self.precision, "precision"))
        object.__setattr__(self, "engine", as_enum(Engine, self.engine, "engine"))


@dataclass(frozen=True)
class SinkOptions:
    """What to write and how to encode it.

    Attributes:
        url: output path, or "-" for standard output (then `format` is required).
        format: force a muxer (e.g. "matroska", "mpegts", "nut").
        codec: video encoder; None picks libx264 where the container takes H.264, else the
            container's own (VP9 for WebM).
        crf: constant rate factor (for encoders that have one; ignored by others).
        preset: encoder speed preset (libx264/libx265/...).
        pix_fmt: output pixel format; None chooses yuv420p (or the encoder's first).
        codec_options: extra encoder options, as FFmpeg's `-x264-params`-style `key=value`.
        container_options: muxer options (e.g. movflags=+faststart).
        overwrite: replace an existing output file.
        audio: copy or re-encode the input's audio ("auto"), or drop it ("none").
        square_pixels: resample non-square pixels to square ones (width = scale x width x
            SAR) instead of carrying the sample aspect ratio, for players that ignore it.
        width, height: the output picture's size (`--width`, `--height`): the model's output
            resampled to it; one alone keeps the picture's aspect (None, None: the model's
            size).
        record: with a network `url`: also write the encoded stream to this local file
            (`--record`), which is kept, finished, if the network output goes away.
        reconnect: with a network `url`: seconds to keep reopening it when its receiver
            goes away (`--output-reconnect`; 0: the run ends at once, with one line).
        stall: with a stream-based network `url` (tcp://, rtmp://): seconds a write may wait
            for a receiver that is connected but stopped reading before it counts as gone
            (`--stall-timeout`, as for a silent input).
    """

    url: str
    format: str | None = None
    codec: str | None = None
    crf: int | None = 18
    preset: str | None = "medium"
    pix_fmt: str | None = None
    codec_options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)
    overwrite: bool = False
    audio: str = "auto"
    square_pixels: bool = False
    width: int | None = None
    height: int | None = None
    record: str | None = None
    reconnect: float = 0.0
    stall: float = 5.0
