"""The output's video stream: its encoder chosen and opened for what the input is, or a copy
of the input's stream (main thread, when the output is opened).

Everything the picture must keep is decided here, once: the codec (one that keeps the
input's bit depth when the default cannot), the pixel format, the size (padded to even where
the encoder needs it, resampled for --square-pixels), the pixel aspect ratio, the colour tags
and range, HDR10 metadata, rotation, and the encoder's options. The result is a frozen
`EncodeFormat` that the compose stage makes its pictures to; `vsr.media.output_container`
adds the other streams, writes the header and owns the file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from av.codec.context import Flags
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

from ..errors import SinkError, UsageError, reason
from ..frames import MatrixTag, StreamInfo, VideoInfo
from ..options import SinkOptions
from . import encoders, pixfmt
from .captions import A53_OPTION, carries_captions
from .color import sws_colorspace
from .picture_metadata import SAR_IN_BITSTREAM, hdr_codec_options, set_stream_sar
from .streams import STALE_TAGS, copy_tags, default_codec

log = logging.getLogger(__name__)

#: Still-image outputs by extension: (encoder, its pixel format).
IMAGE_CODECS = {
    ".png": ("png", "rgb24"),
    ".jpg": ("mjpeg", "yuvj444p"),
    ".jpeg": ("mjpeg", "yuvj444p"),
    ".bmp": ("bmp", "bgr24"),
    ".tif": ("tiff", "rgb24"),
    ".tiff": ("tiff", "rgb24"),
    ".webp": ("libwebp", "yuv420p"),
}


@dataclass(frozen=True)
class EncodeFormat:
    """What the video encoder takes, decided when the output is opened; the compose stage
    makes its pictures to it.

    Attributes:
        width, height: the encoded size (after padding).
        pix_fmt: the encoder's pixel format.
        colorspace: the swscale matrix of the YUV conversion (None: RGB or grey output).
        color_range: limited (MPEG) or full (JPEG) (None: RGB or grey output).
        padded: the last row/column is repeated to make the size even for the chroma.
        picture_size: (width, height) the compose stage makes before padding; differs from
            the model's output for --square-pixels (luma resampled horizontally) and for
            --width/--height.
        is_image: a still image: one picture, no timestamps.
        captions: the encoder writes closed captions (A53 side data) as SEI
            (`vsr.media.captions`), so the compose stage attaches them to its pictures.
    """

    width: int
    height: int
    pix_fmt: str
    colorspace: Colorspace | None
    color_range: ColorRange | None
    padded: bool
    picture_size: tuple[int, int]
    is_image: bool = False
    captions: bool = False


@dataclass(frozen=True)
class VideoStream:
    """The output's video stream and what its encoder takes."""

    stream: Any
    format: EncodeFormat


def copy_video_stream(container: Any, template: Any, info: StreamInfo, is_image: bool) -> VideoStream:
    """An output video stream that takes the template's packets as they are."""
    try:
        stream = container.add_stream_from_template(template)
    except (ValueError, av.error.FFmpegError) as exc:
        fmt_name = container.format.name.split(",")[0]
        raise SinkError(
            f"cannot put {template.codec_context.name} video into {fmt_name}",
            hint="pick another output extension or --codec",
        ) from exc
    stream.time_base = info.video.time_base
    if template.codec_context.name == "rawvideo" and template.codec_tag.strip("\x00"):
        # PyAV's template copy drops the codec tag; raw video needs its FourCC (I420, ...)
        # to say how the pixels are laid out, or Matroska refuses it.
        stream.codec_tag = template.codec_tag
    if info.video.rotation:
        stream.set_display_rotation(info.video.rotation)
    copy_tags(info.video.metadata, stream.metadata, STALE_TAGS)
    cc = template.codec_context
    return VideoStream(
        stream,
        EncodeFormat(
            cc.width,
            cc.height,
            cc.pix_fmt or "",
            colorspace=None,
            color_range=None,
            padded=False,
            picture_size=(cc.width, cc.height),
            is_image=is_image,
        ),
    )


def output_pix_fmt(
    codec_name: str, pix_fmt: str | None, source_layout: pixfmt.Layout | None, notes: list[str]
) -> str:
    """The pixel format encoder `codec_name` gets: `pix_fmt` when one was asked for (checked
    against what the encoder takes), else the input's depth and chroma layout as far as the
    encoder takes them (each step away from them added to `notes`). Shared with `vsr info`,
    so that what it predicts is what `vsr upscale` writes.

    Raises:
        SinkError: the encoder is unknown, not a video encoder, or refuses `pix_fmt`.
    """
    try:
        codec = av.Codec(codec_name, "w")
    except (av.error.FFmpegError, ValueError) as exc:
        raise SinkError(
            f"unknown video encoder {codec_name!r}",
            hint="see 'ffmpeg -encoders'; common: libx264, libx265, libsvtav1, ffv1",
        ) from exc
    if codec.type != "video":
        raise SinkError(f"{codec_name!r} is not a video encoder")
    supported = [f.name for f in codec.video_formats or []]
    if pix_fmt is None:
        choice = pixfmt.choose_output(codec_name, supported, source_layout)
        notes.extend(choice.notes)
        return encoders.preferred_pix_fmt(codec_name, choice.pix_fmt)
    if supported and pix_fmt not in supported:
        raise SinkError(
            f"encoder {codec_name!r} cannot take pixel format {pix_fmt!r}",
            hint=f"it takes: {', '.join(supported)}",
        )
    return pix_fmt


def open_video_stream(
    container: Any,
    opts: SinkOptions,
    info: StreamInfo,
    scale: int,
    *,
    image_suffix: str | None,
    live: bool,
    notes: list[str],
    global_header: bool = False,
) -> VideoStream:
    """The output's video stream with its encoder opened (so bad options fail now); what
    the user should know about it is added to `notes`. `image_suffix`: the output is one
    still image of that type (".png", ...). `global_header`: the codec's parameters go in
    the header (extradata) whatever the container asks (see `open_output`).

    The steps, each its own function below: choose the encoder and the pixel format, the
    picture's size and aspect, add the stream, set its aspect, the encoder's options
    (quality, HDR10, captions), the colour tags, rotation and tags, then open it."""
    v = info.video
    is_image = image_suffix is not None
    codec_name, asked_fmt = choose_encoder(container, opts, v, image_suffix)
    pix_fmt = output_pix_fmt(codec_name, asked_fmt, pixfmt.native_input(v.pix_fmt), notes)
    fmt = av.VideoFormat(pix_fmt)
    deep = max(c.bits for c in fmt.components) > 8
    if asked_fmt is not None:
        _note_hdr_banding(v, pix_fmt, deep, notes)
    size = encoded_geometry(v, scale, opts, pix_fmt, codec_name, is_image, notes)
    stream = _add_stream(container, codec_name, v, is_image)
    stream.width, stream.height = size.width, size.height
    stream.pix_fmt = pix_fmt
    cc = stream.codec_context
    _set_aspect(container, stream, codec_name, size.sar)
    codec_opts, captions = _encoder_options(
        cc, codec_name, opts, v, live=live, is_image=is_image, deep=deep, notes=notes
    )
    cc.options = codec_opts
    if global_header and not is_image:
        # The recording's encoder feeds a network output too: its parameters go in the
        # header (extradata) for both; FLV needs them there, and MPEG-TS repeats them
        # before each keyframe from the extradata.
        cc.flags |= Flags.global_header
    colorspace, color_range = _set_colour_tags(cc, v, fmt)
    if v.rotation and not is_image:
        stream.set_display_rotation(v.rotation)
    copy_tags(v.metadata, stream.metadata, STALE_TAGS)
    if is_image:
        container.options["update"] = "1"  # one file, not a numbered sequence
    _open_encoder(cc, codec_name, size, pix_fmt)
    return VideoStream(
        stream,
        EncodeFormat(
            size.width,
            size.height,
            pix_fmt,
            colorspace,
            color_range,
            size.padded,
            size.picture_size,
            is_image,
            captions,
        ),
    )


def choose_encoder(
    container: Any, opts: SinkOptions, v: VideoInfo, image_suffix: str | None
) -> tuple[str, str | None]:
    """The encoder and the pixel format asked for (None: follow the input).

    Why a choice at all: --codec wins; an image output's extension names its encoder and
    format; otherwise the container's default encoder, unless the input is deeper than 8
    bits and that encoder cannot keep it (12-bit into MP4: x265), when the user asked for
    neither encoder nor pixel format."""
    codec_name, pix_fmt = opts.codec or default_codec(container), opts.pix_fmt
    if image_suffix is not None:
        image_codec, image_fmt = IMAGE_CODECS[image_suffix]
        return image_codec, pix_fmt or image_fmt
    source_layout = pixfmt.native_input(v.pix_fmt)
    if opts.codec is None and pix_fmt is None and source_layout and source_layout.depth > 8:
        codec_name = _deep_codec(container, codec_name, source_layout)
    return codec_name, pix_fmt


def _note_hdr_banding(v: VideoInfo, pix_fmt: str, deep: bool, notes: list[str]) -> None:
    """Say that an 8-bit pixel format the user asked for will band on HDR input (PQ or
    HLG spread their range over codes 8 bits are too coarse for); vsr itself never picks it."""
    if v.color_trc in (ColorTrc.SMPTE2084, ColorTrc.ARIB_STD_B67) and not deep:
        curve = "PQ" if v.color_trc == ColorTrc.SMPTE2084 else "HLG"
        notes.append(
            f"the input is HDR ({curve}) and --pix-fmt "
            f"{pix_fmt} is 8-bit: expect banding (drop --pix-fmt to keep "
            f"{v.bit_depth}-bit)"
        )


@dataclass(frozen=True)
class Geometry:
    """The encoded picture's size and aspect.

    Attributes:
        width, height: the encoded size (after padding).
        sar: the pixel aspect ratio the stream carries.
        picture_size: (width, height) the compose stage makes, before padding.
        padded: the last row/column is repeated to make the size even for the chroma.
    """

    width: int
    height: int
    sar: Fraction
    picture_size: tuple[int, int]
    padded: bool


def encoded_geometry(
    v: VideoInfo,
    scale: int,
    opts: SinkOptions,
    pix_fmt: str,
    codec_name: str,
    is_image: bool,
    notes: list[str],
) -> Geometry:
    """The picture's size and aspect (`picture_geometry`), then padded to even where the
    encoder needs it: most 4:2:0 / 4:2:2 encoders refuse odd sizes where the chroma is
    subsampled, and a repeated row/column is less surprising than a lost one (said in
    `notes`). An image has square pixels: image formats carry no aspect ratio."""
    out_w, out_h, sar = picture_geometry(
        v.width, v.height, v.sar if not is_image else Fraction(1), scale, opts, pix_fmt, codec_name, notes
    )
    pw, ph = pixfmt.encoded_size(out_w, out_h, pix_fmt, codec_name)
    padded = (pw, ph) != (out_w, out_h)
    if padded:
        notes.append(
            f"{out_w}x{out_h} is odd and {codec_name} in {pix_fmt} needs even sizes: "
            f"padding to {pw}x{ph} (the last row/column repeated)"
        )
    return Geometry(pw, ph, sar, (out_w, out_h), padded)


def _add_stream(container: Any, codec_name: str, v: VideoInfo, is_image: bool) -> Any:
    """The output's video stream on the input's time base, so that every frame keeps its
    own timestamp (variable frame rate stays variable); an image has no clock.

    Raises:
        SinkError: the container cannot hold this encoder's video.
    """
    try:
        stream = container.add_stream(codec_name, rate=(v.rate or Fraction(25)) if not is_image else None)
    except ValueError as exc:
        fmt_name = container.format.name.split(",")[0]
        raise SinkError(
            f"cannot put {codec_name} video into {fmt_name}",
            hint=f"drop --codec to use {fmt_name}'s own ({default_codec(container)}), "
            "or pick another output extension",
        ) from exc
    if not is_image:
        stream.codec_context.time_base = v.time_base
        stream.time_base = v.time_base
    return stream


def _set_aspect(container: Any, stream: Any, codec_name: str, sar: Fraction) -> None:
    """Carry a non-square pixel aspect ratio, so the display aspect stays the input's.

    The encoder's context writes it into H.264/HEVC's VUI and MP4's `pasp` box; Matroska
    and WebM keep it only in the container, which PyAV cannot set (`set_stream_sar`).

    Raises:
        SinkError: neither the bitstream nor the container can carry it here.
    """
    if sar == 1:
        return
    stream.codec_context.sample_aspect_ratio = sar
    fmt_name = container.format.name.split(",")[0]
    if (
        fmt_name in ("matroska", "webm")
        and codec_name not in SAR_IN_BITSTREAM
        and not set_stream_sar(stream, sar)
    ):
        raise SinkError(
            f"cannot carry the pixel aspect ratio {sar} into {fmt_name} with {codec_name}",
            hint="pass --square-pixels, or use libx264/libx265",
        )


def _encoder_options(
    cc: Any,
    codec_name: str,
    opts: SinkOptions,
    v: VideoInfo,
    *,
    live: bool,
    is_image: bool,
    deep: bool,
    notes: list[str],
) -> tuple[dict[str, str], bool]:
    """The encoder's private options, and whether it writes closed captions.

    In order, each overriding the one before: the family's meaning of --crf/--preset
    (`encoders.mapping`, which also sets codec-context fields), HDR10 metadata as the
    encoder's SEI (only into a deep format: 8-bit HDR is not HDR10), captions, and last the
    user's own --codec-option. What is dropped (Dolby Vision, HDR10 or captions the encoder
    cannot carry) is said in `notes`."""
    private = {o.name for o in cc.supported_options.private}
    verbose = logging.getLogger("vsr").isEnabledFor(logging.INFO)
    for name, value in encoders.quiet_environment(codec_name, verbose).items():
        os.environ.setdefault(name, value)
    m = encoders.mapping(codec_name, private, opts.crf, opts.preset, live, v.rate, verbose)
    if m.note:
        notes.append(m.note)
    encoders.apply(cc, m)
    codec_opts = dict(m.options)
    if v.hdr10 is not None and not is_image and deep:
        why = hdr_codec_options(codec_name, v.hdr10, codec_opts)
        if why:
            notes.append(f"HDR10 metadata ({v.hdr10.describe()}) dropped: {why}")
    if v.dolby_vision:
        notes.append(
            "Dolby Vision metadata dropped: it cannot stay valid after scaling "
            "(the HDR10/HLG base layer and its tags are kept)"
        )
    captions = not is_image and carries_captions(cc)
    if captions:
        codec_opts[A53_OPTION] = "1"  # libx265's default is off
    elif v.captions and not is_image:
        notes.append(
            f"closed captions (CEA-608/708) dropped: {codec_name} cannot carry them (libx264 and libx265 can)"
        )
    codec_opts.update(opts.codec_options)
    return codec_opts, captions


def _set_colour_tags(cc: Any, v: VideoInfo, fmt: Any) -> tuple[Colorspace | None, ColorRange | None]:
    """Tag the encoder with the input's colour: matrix, range, primaries, transfer; return
    the swscale matrix and range the compose stage converts with (None, None for RGB or
    grey output, which have neither).

    Why: the output's samples are in the input's colour space (the model only sharpens
    luma), so the input's tags describe them; an unspecified one stays unspecified rather
    than guessed. The range is the input's, limited when it was unspecified (what decoding
    assumed), full for the yuvj formats."""
    if fmt.is_rgb or fmt.name.startswith("gray"):
        return None, None
    colorspace = sws_colorspace(v.colorspace)
    color_range = ColorRange.MPEG
    if v.color_range == ColorRange.JPEG or fmt.name.startswith("yuvj"):
        color_range = ColorRange.JPEG
    cc.color_range = color_range
    if v.colorspace not in (MatrixTag.RGB, MatrixTag.UNSPECIFIED):
        cc.colorspace = v.colorspace
    if v.color_primaries != ColorPrimaries.UNSPECIFIED:
        cc.color_primaries = v.color_primaries
    if v.color_trc != ColorTrc.UNSPECIFIED:
        cc.color_trc = v.color_trc
    return colorspace, color_range


def _open_encoder(cc: Any, codec_name: str, size: Geometry, pix_fmt: str) -> None:
    """Open the encoder now, not at the first frame, so bad options fail before any work
    is done, in one line that says why: the hardware a hardware encoder needs, DNxHR's
    minimum width, or which options to check.

    Raises:
        SinkError: the encoder refused to open.
    """
    try:
        cc.open()
    except (av.error.FFmpegError, ValueError) as exc:
        need = encoders.hardware_of(codec_name)
        if need is not None:
            raise SinkError(
                f"cannot use the hardware encoder {codec_name!r}: it needs {need}, and "
                f"none is usable here ({reason(exc)})",
                hint="use a software encoder: libx264, libx265 or libsvtav1",
            ) from exc
        hint = (
            "DNxHR takes frames at least 256 pixels wide"
            if codec_name == "dnxhd" and size.width < 256
            else "check --codec, --pix-fmt, --crf, --preset and --codec-option values"
        )
        raise SinkError(
            f"cannot open video encoder {codec_name!r} for {size.width}x{size.height} "
            f"{pix_fmt}: {reason(exc)}",
            hint=hint,
        ) from exc


def picture_geometry(
    width: int,
    height: int,
    sar: Fraction,
    scale: int,
    opts: SinkOptions,
    pix_fmt: str,
    codec_name: str,
    notes: list[str],
) -> tuple[int, int, Fraction]:
    """The picture the compose stage makes from a `width` x `height` input with pixel aspect
    `sar`: its (width, height) before any padding, and the pixel aspect ratio it carries.
    The model's size, resampled to square pixels for --square-pixels, then to --width /
    --height (`target_size`). `vsr info` predicts the output with it too.

    Raises:
        UsageError: --width/--height below the input's size.
    """
    out_w, out_h = width * scale, height * scale
    even = pixfmt.needs_even(pix_fmt, codec_name)
    if sar != 1 and opts.square_pixels:
        # an even width where the encoder needs one (4:2:x; else it would pad a column)
        step = 2 if even[0] else 1
        out_w = max(2, round(out_w * sar / step) * step)
        log.info("non-square pixels (SAR %s) resampled to square: %dx%d", sar, out_w, out_h)
        sar = Fraction(1)
    if opts.width or opts.height:
        out_w, out_h = target_size(
            opts.width, opts.height, (width, height), (out_w, out_h), scale, even, notes
        )
    return out_w, out_h, sar


def target_size(
    width: int | None,
    height: int | None,
    source: tuple[int, int],
    upscaled: tuple[int, int],
    scale: int,
    even: tuple[bool, bool],
    notes: list[str],
) -> tuple[int, int]:
    """The picture size `--width`/`--height` ask for: both as given; one alone with the other
    from the upscaled picture's aspect (its pixel aspect ratio is carried, or was resampled
    away by --square-pixels), rounded to even where the encoder's chroma needs it. What the
    model cannot give is said in `notes`: beyond its scale the rest is bicubic.

    Raises:
        UsageError: a size below the input's: vsr upscales, it does not shrink.
    """
    uw, uh = upscaled

    def side(exact: float, needs_even: bool) -> int:  # one rounding, to a step of 1 or 2
        step = 2 if needs_even else 1
        return max(step, round(exact / step) * step)

    if width and height:
        w, h = width, height
    elif width:
        w, h = width, side(width * uh / uw, even[1])
    elif height:
        w, h = side(height * uw / uh, even[0]), height
    else:
        return upscaled
    sw, sh = source
    if w < sw or h < sh:
        raise UsageError(
            f"an output of {w}x{h} is smaller than the input's {sw}x{sh} frames: vsr upscales",
            hint="ask for a size at least the input's, or leave out --width/--height",
        )
    ratio = max(w / sw, h / sh)
    if ratio > scale + 1e-9:
        more = " (--scale 4 gives more)" if scale < 4 else ""
        notes.append(f"{w}x{h} is x{ratio:.2f} the input and the model x{scale}: the rest is bicubic{more}")
    return w, h


def _deep_codec(container: Any, codec_name: str, layout: pixfmt.Layout) -> str:
    """`codec_name`, or the first encoder the container takes that keeps the input's bit
    depth when it cannot (10-bit into WebM: SVT-AV1, VP9 being 8-bit in this build)."""

    def depth_ok(name: str) -> bool:
        try:
            formats = {f.name for f in av.Codec(name, "w").video_formats or []}
        except (av.error.FFmpegError, ValueError):
            return False
        return pixfmt.planar_name(layout.depth, 1, 1) in formats

    if depth_ok(codec_name):
        return codec_name
    accepted = container.supported_codecs
    for name, family in (("libx265", "hevc"), ("libsvtav1", "av1")):
        if (family in accepted or name in accepted) and depth_ok(name):
            log.info("%s cannot encode %d-bit video: using %s to keep it", codec_name, layout.depth, name)
            return name
    return codec_name
