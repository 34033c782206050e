"""The output's video stream: its encoder chosen and opened for what the input is, or a copy
of the input's stream (main thread, when the output is opened).

Everything the picture must keep is decided here, once: the codec (one that keeps the
input's bit depth when the default cannot), the pixel format, the size (padded to even where
the encoder needs it, resampled for --square-pixels), the pixel aspect ratio, the colour tags
and range, HDR10 metadata, rotation, and the encoder's options. The result is a frozen
`EncodeFormat` that the compose stage makes its pictures to; `vsr.media.output` adds the other
streams, writes the header and owns the file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from ..errors import SinkError, UsageError, reason
from ..frames import StreamInfo
from ..options import SinkOptions
from . import encoders, pixfmt
from .captions import A53_OPTION, carries_captions
from .color import sws_colorspace
from .signalling import SAR_IN_BITSTREAM, hdr_codec_options, set_stream_sar
from .streams import STALE_TAGS, copy_tags, default_codec

log = logging.getLogger(__name__)

#: Still-image outputs by extension: (encoder, its pixel format).
IMAGE_CODECS = {".png": ("png", "rgb24"), ".jpg": ("mjpeg", "yuvj444p"),
                ".jpeg": ("mjpeg", "yuvj444p"), ".bmp": ("bmp", "bgr24"),
                ".tif": ("tiff", "rgb24"), ".tiff": ("tiff", "rgb24"), ".webp": ("libwebp", "yuv420p")}

#: AV_CODEC_FLAG_GLOBAL_HEADER: codec parameters in the extradata, not before each keyframe.
GLOBAL_HEADER = 1 << 22


@dataclass(frozen=True)
class EncodeFormat:
    """What the video encoder takes, decided when the output is opened; the compose stage
    makes its pictures to it.

    Attributes:
        width, height: the encoded size (after padding).
        pix_fmt: the encoder's pixel format.
        colorspace: the sws colourspace of the YUV conversion (None: RGB or grey output).
        color_range: 1 limited, 2 full (None: RGB or grey output).
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
    colorspace: int | None
    color_range: int | None
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
        raise SinkError(f"cannot put {template.codec_context.name} video into {fmt_name}",
                        hint="pick another output extension or --codec") from exc
    stream.time_base = info.video.time_base
    if template.codec_context.name == "rawvideo" and template.codec_tag.strip("\x00"):
        # PyAV's template copy drops the codec tag; raw video needs its FourCC (I420, ...)
        # to say how the pixels are laid out, or Matroska refuses it.
        stream.codec_tag = template.codec_tag
    if info.video.rotation:
        stream.set_display_rotation(info.video.rotation)
    copy_tags(info.video.metadata, stream.metadata, STALE_TAGS)
    cc = template.codec_context
    return VideoStream(stream, EncodeFormat(cc.width, cc.height, cc.pix_fmt or "", colorspace=None,
                                       color_range=None, padded=False,
                                       picture_size=(cc.width, cc.height), is_image=is_image))


def output_pix_fmt(codec_name: str, pix_fmt: str | None, source_layout: pixfmt.Layout | None,
                   notes: list[str]) -> str:
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
        raise SinkError(f"unknown video encoder {codec_name!r}",
                        hint="see 'ffmpeg -encoders'; common: libx264, libx265, libsvtav1, ffv1") from exc
    if codec.type != "video":
        raise SinkError(f"{codec_name!r} is not a video encoder")
    supported = [f.name for f in codec.video_formats or []]
    if pix_fmt is None:
        choice = pixfmt.choose_output(codec_name, supported, source_layout)
        notes.extend(choice.notes)
        return encoders.preferred_pix_fmt(codec_name, choice.pix_fmt)
    if supported and pix_fmt not in supported:
        raise SinkError(f"encoder {codec_name!r} cannot take pixel format {pix_fmt!r}",
                        hint=f"it takes: {', '.join(supported)}")
    return pix_fmt


def open_video_stream(container: Any, opts: SinkOptions, info: StreamInfo, scale: int, *,
                      image_suffix: str | None, live: bool, notes: list[str],
                      global_header: bool = False) -> VideoStream:
    """The output's video stream with its encoder opened (so bad options fail now); what
    the user should know about it is added to `notes`. `image_suffix`: the output is one
    still image of that type (".png", ...). `global_header`: the codec's parameters go in
    the header (extradata) whatever the container asks (see `open_output`)."""
    v = info.video
    is_image = image_suffix is not None
    codec_name, pix_fmt = opts.codec or default_codec(container), opts.pix_fmt
    source_layout = pixfmt.native_input(v.pix_fmt)
    if not is_image and opts.codec is None and pix_fmt is None and source_layout and source_layout.depth > 8:
        codec_name = _deep_codec(container, codec_name, source_layout)
    if image_suffix is not None:
        codec_name, image_fmt = IMAGE_CODECS[image_suffix]
        pix_fmt = pix_fmt or image_fmt
    asked = pix_fmt is not None  # by --pix-fmt, or an image format's own
    pix_fmt = output_pix_fmt(codec_name, pix_fmt, source_layout, notes)
    fmt = av.VideoFormat(pix_fmt)
    deep = max(c.bits for c in fmt.components) > 8
    if asked and v.color_trc in (16, 18) and not deep:
        notes.append(f"the input is HDR ({'PQ' if v.color_trc == 16 else 'HLG'}) and --pix-fmt "
                     f"{pix_fmt} is 8-bit: expect banding (drop --pix-fmt to keep "
                     f"{v.bit_depth}-bit)")
    out_w, out_h, sar = picture_geometry(v.width, v.height, v.sar if not is_image else Fraction(1),
                                         scale, opts, pix_fmt, codec_name, notes)
    picture_size = (out_w, out_h)
    # Most 4:2:0 / 4:2:2 encoders need even sizes where the chroma is subsampled.
    pw, ph = pixfmt.encoded_size(out_w, out_h, pix_fmt, codec_name)
    padded = (pw, ph) != (out_w, out_h)
    if padded:
        notes.append(f"{out_w}x{out_h} is odd and {codec_name} in {pix_fmt} needs even sizes: "
                     f"padding to {pw}x{ph} (the last row/column repeated)")
        out_w, out_h = pw, ph

    rate = v.rate or Fraction(25)
    try:
        stream = container.add_stream(codec_name, rate=rate if not is_image else None)
    except ValueError as exc:
        fmt_name = container.format.name.split(",")[0]
        raise SinkError(f"cannot put {codec_name} video into {fmt_name}",
                        hint=f"drop --codec to use {fmt_name}'s own ({default_codec(container)}), "
                             "or pick another output extension") from exc
    stream.width, stream.height = out_w, out_h
    stream.pix_fmt = pix_fmt
    cc = stream.codec_context
    if not is_image:
        cc.time_base = v.time_base
        stream.time_base = v.time_base
    if sar != 1:
        cc.sample_aspect_ratio = sar  # the bitstream (H.264/HEVC VUI) and MP4's pasp box
        matroska = container.format.name.split(",")[0] in ("matroska", "webm")
        if matroska and codec_name not in SAR_IN_BITSTREAM and not set_stream_sar(stream, sar):
            raise SinkError(f"cannot carry the pixel aspect ratio {sar} into "
                            f"{container.format.name.split(',')[0]} with {codec_name}",
                            hint="pass --square-pixels, or use libx264/libx265")
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
        notes.append("Dolby Vision metadata dropped: it cannot stay valid after scaling "
                     "(the HDR10/HLG base layer and its tags are kept)")
    captions = not is_image and carries_captions(cc)
    if captions:
        codec_opts[A53_OPTION] = "1"  # libx265's default is off
    elif v.captions and not is_image:
        notes.append(f"closed captions (CEA-608/708) dropped: {codec_name} cannot carry them "
                     "(libx264 and libx265 can)")
    codec_opts.update(opts.codec_options)
    cc.options = codec_opts
    if global_header and not is_image:
        # The recording's encoder feeds a network output too: its parameters go in the
        # header (extradata) for both; FLV needs them there, and MPEG-TS repeats them
        # before each keyframe from the extradata.
        cc.flags |= GLOBAL_HEADER
    colorspace = color_range = None
    if not fmt.is_rgb and not fmt.name.startswith("gray"):
        colorspace = sws_colorspace(v.colorspace)
        # Keep the input's range; for an unspecified one, decoding assumed limited range.
        color_range = v.color_range if v.color_range in (1, 2) else 1
        if pix_fmt.startswith("yuvj"):
            color_range = 2
        cc.color_range = color_range
        if v.colorspace not in (0, 2):
            cc.colorspace = v.colorspace
        if v.color_primaries != 2:
            cc.color_primaries = v.color_primaries
        if v.color_trc != 2:
            cc.color_trc = v.color_trc
    if v.rotation and not is_image:
        stream.set_display_rotation(v.rotation)
    copy_tags(v.metadata, stream.metadata, STALE_TAGS)
    if is_image:
        container.options["update"] = "1"  # one file, not a numbered sequence
    try:
        cc.open()  # now, not at the first frame: bad options fail before any work is done
    except (av.error.FFmpegError, ValueError) as exc:
        need = encoders.hardware_of(codec_name)
        if need is not None:
            raise SinkError(f"cannot use the hardware encoder {codec_name!r}: it needs {need}, and "
                            f"none is usable here ({reason(exc)})",
                            hint="use a software encoder: libx264, libx265 or libsvtav1") from exc
        hint = ("DNxHR takes frames at least 256 pixels wide" if codec_name == "dnxhd" and out_w < 256
                else "check --codec, --pix-fmt, --crf, --preset and --codec-option values")
        raise SinkError(f"cannot open video encoder {codec_name!r} for {out_w}x{out_h} {pix_fmt}: "
                        f"{reason(exc)}", hint=hint) from exc
    return VideoStream(stream, EncodeFormat(out_w, out_h, pix_fmt, colorspace, color_range, padded,
                                       picture_size, is_image, captions))


def picture_geometry(width: int, height: int, sar: Fraction, scale: int, opts: SinkOptions,
                     pix_fmt: str, codec_name: str, notes: list[str]) -> tuple[int, int, Fraction]:
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
        out_w, out_h = target_size(opts.width, opts.height, (width, height), (out_w, out_h),
                                   scale, even, notes)
    return out_w, out_h, sar


def target_size(width: int | None, height: int | None, source: tuple[int, int],
                upscaled: tuple[int, int], scale: int, even: tuple[bool, bool],
                notes: list[str]) -> tuple[int, int]:
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
        raise UsageError(f"an output of {w}x{h} is smaller than the input's {sw}x{sh} frames: "
                         "vsr upscales", hint="ask for a size at least the input's, or leave out "
                                              "--width/--height")
    ratio = max(w / sw, h / sh)
    if ratio > scale + 1e-9:
        more = " (--scale 4 gives more)" if scale < 4 else ""
        notes.append(f"{w}x{h} is x{ratio:.2f} the input and the model x{scale}: the rest is "
                     f"bicubic{more}")
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
