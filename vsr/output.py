"""Opening the output (main thread): the container, its streams, and finishing it.

`open_output()` runs before any work, so an existing output, an unwritable folder or an
unknown codec fails fast. It writes to a hidden temporary file beside the target; the sink
thread (`sink.run_sink`) owns the container from then on, and `finish()` renames the file into
place only when everything was flushed. On any failure (`discard()`) the temporary file is
removed: a half-written output never appears under the final name. What the encoder takes
(size, pixel format, colour tags, padding) is decided here once, as a frozen `EncodeFormat`
that the compose stage reads.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from . import encoders, pixfmt
from .color import sws_colorspace
from .errors import EncodeError, SinkError, reason
from .frames import StreamInfo
from .options import SinkOptions
from .signalling import SAR_IN_BITSTREAM, hdr_codec_options, set_stream_sar
from .streams import STALE_TAGS, copy_tags, default_codec, plan_stream

log = logging.getLogger(__name__)

IMAGE_CODECS = {".png": ("png", "rgb24"), ".jpg": ("mjpeg", "yuvj444p"),
                ".jpeg": ("mjpeg", "yuvj444p"), ".bmp": ("bmp", "bgr24"),
                ".tif": ("tiff", "rgb24"), ".tiff": ("tiff", "rgb24"), ".webp": ("libwebp", "yuv420p")}
#: Input extensions read as still images: their default output is a .png.
IMAGE_INPUTS = frozenset(IMAGE_CODECS) | {".gif", ".jpe", ".jfif"}
STALE_CONTAINER_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration"}


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
            the model's output only for --square-pixels (luma resampled horizontally).
        is_image: a still image: one picture, no timestamps.
    """

    width: int
    height: int
    pix_fmt: str
    colorspace: int | None
    color_range: int | None
    padded: bool
    picture_size: tuple[int, int]
    is_image: bool = False


@dataclass(frozen=True)
class OpenedOutput:
    """An output container with its streams set up and its header written, not yet fed.

    Attributes:
        container: the av.container.OutputContainer (owned by the sink thread once running).
        video: its video stream.
        format: what the video encoder takes.
        stream_map: input stream index -> output stream, for the passthrough streams kept.
        decode_audio: input streams the output re-encodes (the source decodes them).
        notes: what the user should know (padding, streams dropped or re-encoded).
        url: the output as given (a path, "-" or a URL).
        final_path: the file it becomes (None for standard output or a URL).
        temp_path: the hidden file `finish()` renames (None when written in place).
        negative_ts: the muxer stores negative timestamps (AVFMT_TS_NEGATIVE).
        copy_video: video arrives encoded (VideoPacket): no encoder to feed or flush.
    """

    container: Any
    video: Any
    format: EncodeFormat
    stream_map: dict[int, Any]
    decode_audio: frozenset[int]
    notes: tuple[str, ...]
    url: str
    final_path: Path | None
    temp_path: Path | None
    negative_ts: bool = True
    copy_video: bool = False

    @property
    def is_image(self) -> bool:
        return self.format.is_image


@dataclass(frozen=True)
class _Target:
    """Where an output goes: `final` (None for standard output or a URL), through `temp`
    (None when written in place), as a still image or not."""

    final: Path | None
    temp: Path | None
    is_image: bool


@dataclass(frozen=True)
class _Video:
    """The output's video stream and what its encoder takes."""

    stream: Any
    format: EncodeFormat


def default_output(input_url: str, scale: int) -> str:
    """`photo.jpg` -> `photo_x3.png`; `clip.webm` -> `clip_x3.webm`; a URL -> `<name>_x3.mp4`."""
    p = Path(input_url.split("?")[0].rstrip("/") or "output")
    is_image = p.suffix.lower() in IMAGE_INPUTS
    suffix = ".png" if is_image else (p.suffix if p.suffix and "://" not in input_url else ".mp4")
    return str(Path(p.name if "://" in input_url else p).with_name(f"{p.stem}_x{scale}{suffix}"))


#: Muxers for network outputs, chosen by URL scheme when --format is not given.
URL_FORMATS = {"rtmp": "flv", "rtmps": "flv", "udp": "mpegts", "tcp": "mpegts", "srt": "mpegts",
               "rtp": "rtp_mpegts", "rtsp": "rtsp", "http": "mpegts", "https": "mpegts"}


def open_output(opts: SinkOptions, info: StreamInfo, scale: int, *, live: bool = False,
                video_template: Any = None) -> OpenedOutput:
    """Create the output container and its streams.

    In file mode the output goes to a hidden temporary file that `finish()` renames; in live
    mode it is written in place (a recording must exist while it grows) or sent to a URL.
    With `video_template` (an input stream of already upscaled video: the scale-out join) the
    video is copied from it, not encoded; everything else (audio, tags, rotation) is the same.

    Raises:
        SinkError: output exists (without overwrite), folder missing or unwritable, unknown
            format or codec, or a pipe output without a format.
    """
    if "://" in opts.url:
        return _open_url(opts, info, scale, live)
    to_stdout = opts.url == "-"
    final: Path | None = None if to_stdout else Path(opts.url)
    suffix = final.suffix.lower() if final else ""
    is_image = suffix in IMAGE_CODECS and opts.format is None
    if to_stdout and not opts.format:
        raise SinkError("cannot write to standard output without a container format",
                        hint="add --format matroska (or mpegts, nut)")
    temp: Path | None = None
    if final is not None:
        if final.is_dir():  # first: --overwrite must not suggest a folder could be replaced
            raise SinkError(f"output '{final}' is a directory")
        if final.exists() and not opts.overwrite:
            raise SinkError(f"output '{final}' already exists", hint="pass --overwrite to replace it")
        if info.url != "-" and Path(info.url).exists() and final.resolve() == Path(info.url).resolve():
            raise SinkError(f"output '{final}' is the input file", hint="choose another output name")
        folder = final.parent if str(final.parent) else Path(".")
        if not folder.is_dir():
            raise SinkError(f"cannot write output '{final}': folder '{folder}' does not exist")
        temp = final if live else folder / f".{final.stem}.vsr-{secrets.token_hex(4)}.partial{final.suffix}"
    fmt = opts.format or ("image2" if is_image else None)
    # FFmpeg picks the muxer from the temporary name, which keeps the final suffix; an
    # explicit --format covers odd suffixes. (Outside the try below: its SinkError carries
    # its own hint.)
    if fmt is None and final is not None:
        _require_extension(final)
    try:
        target: Any = sys.stdout.buffer if to_stdout else str(temp)
        if temp is not None:
            # PyAV creates the file only at the first mux: create it now, so an unwritable
            # folder fails here (exit 2) and not after the model ran (exit 1).
            with open(temp, "wb" if live else "xb"):
                pass
        container = av.open(target, "w", format=fmt, options=dict(opts.container_options))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        if temp is not None:
            _remove(temp)
        where = "standard output" if to_stdout else f"'{final}'"
        raise SinkError(f"cannot write output {where}: {reason(exc)}") from exc
    # Live: written in place, so there is nothing to rename or delete.
    target_ = _Target(final, None if live else temp, is_image)
    try:
        return _add_streams(container, opts, info, scale, target_, live=live,
                            video_template=video_template)
    except BaseException:
        container.close()
        if temp is not None:
            _remove(temp)
        raise


def _open_url(opts: SinkOptions, info: StreamInfo, scale: int, live: bool) -> OpenedOutput:
    """A network output (udp://, tcp://, rtmp://, srt://, ...): the muxer connects now."""
    scheme = opts.url.split("://", 1)[0].lower()
    fmt = opts.format or URL_FORMATS.get(scheme)
    try:
        container = av.open(opts.url, "w", format=fmt, options=dict(opts.container_options),
                            timeout=(10.0, 30.0))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise SinkError(f"cannot open output {opts.url!r}: {reason(exc)}",
                        hint="check that the receiver is listening (tcp://, rtmp://) and the "
                             "URL; pass --format if the protocol needs another muxer") from exc
    try:
        return _add_streams(container, opts, info, scale, _Target(None, None, False), live=live)
    except BaseException:
        container.close()
        raise


def _require_extension(path: Path) -> None:
    """FFmpeg picks the muxer from the (temporary) name's suffix: without one it cannot."""
    if not path.suffix:
        raise SinkError(f"cannot tell the container format of '{path}' (no file extension)",
                        hint="add an extension such as .mp4 or .mkv, or pass --format")


def _add_streams(container: Any, opts: SinkOptions, info: StreamInfo, scale: int,
                 target: _Target, *, live: bool, video_template: Any = None) -> OpenedOutput:
    """The video stream, the passthrough streams, the tags and the header."""
    notes: list[str] = []
    if video_template is not None:
        video = _copied_video(container, video_template, info, target.is_image)
    else:
        video = _video_encoder(container, opts, info, scale, target, live=live, notes=notes)
    if info.dropped_streams and not target.is_image:
        notes.append(f"dropped {len(info.dropped_streams)} stream(s) no output carries: "
                     + ", ".join(info.dropped_streams))
    if (container.format.name.split(",")[0] in ("mov", "mp4") and video.format.color_range in (1, 2)
            and "movflags" not in opts.container_options):
        # MP4 writes the range in its `colr` box only when a primaries/transfer/matrix tag is
        # set, and x264 leaves limited range out of the bitstream: an untagged "tv" clip
        # came out with no range at all. write_colr writes the box always.
        container.options["movflags"] = "+write_colr"
    if not target.is_image:
        copy_tags(info.container_metadata, container.metadata, STALE_CONTAINER_TAGS)
    stream_map, decode_audio = _passthrough_streams(container, opts, info, target.is_image, notes)
    _write_header(container, opts.url, target.final)
    return OpenedOutput(
        container=container, video=video.stream, format=video.format, stream_map=stream_map,
        decode_audio=decode_audio, notes=tuple(notes), url=opts.url,
        final_path=target.final, temp_path=target.temp,
        negative_ts=bool(container.format.flags & 0x40000),
        copy_video=video_template is not None)


def _copied_video(container: Any, template: Any, info: StreamInfo, is_image: bool) -> _Video:
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
    return _Video(stream, EncodeFormat(cc.width, cc.height, cc.pix_fmt or "", colorspace=None,
                                       color_range=None, padded=False,
                                       picture_size=(cc.width, cc.height), is_image=is_image))


def _video_encoder(container: Any, opts: SinkOptions, info: StreamInfo, scale: int,
                   target: _Target, *, live: bool, notes: list[str]) -> _Video:
    """The output's video stream with its encoder opened (so bad options fail now); what
    the user should know about it is added to `notes`."""
    v = info.video
    final, is_image = target.final, target.is_image
    codec_name, pix_fmt = opts.codec or default_codec(container), opts.pix_fmt
    source_layout = pixfmt.native_input(v.pix_fmt)
    if not is_image and opts.codec is None and pix_fmt is None and source_layout and source_layout.depth > 8:
        codec_name = _deep_codec(container, codec_name, source_layout)
    if is_image:
        assert final is not None
        codec_name, image_fmt = IMAGE_CODECS[final.suffix.lower()]
        pix_fmt = pix_fmt or image_fmt
    try:
        codec = av.Codec(codec_name, "w")
    except (av.error.FFmpegError, ValueError) as exc:
        raise SinkError(f"unknown video encoder {codec_name!r}",
                        hint="see 'ffmpeg -encoders'; common: libx264, libx265, libsvtav1, ffv1") from exc
    if codec.type != "video":
        raise SinkError(f"{codec_name!r} is not a video encoder")
    supported = [f.name for f in codec.video_formats or []]
    asked = pix_fmt is not None  # by --pix-fmt, or an image format's own
    if pix_fmt is None:
        choice = pixfmt.choose_output(codec_name, supported, source_layout)
        pix_fmt = encoders.preferred_pix_fmt(codec_name, choice.pix_fmt)
        notes.extend(choice.notes)
    elif supported and pix_fmt not in supported:
        raise SinkError(f"encoder {codec_name!r} cannot take pixel format {pix_fmt!r}",
                        hint=f"it takes: {', '.join(supported)}")
    fmt = av.VideoFormat(pix_fmt)
    deep = max(c.bits for c in fmt.components) > 8
    if asked and v.color_trc in (16, 18) and not deep:
        notes.append(f"the input is HDR ({'PQ' if v.color_trc == 16 else 'HLG'}) and --pix-fmt "
                     f"{pix_fmt} is 8-bit: expect banding (drop --pix-fmt to keep "
                     f"{v.bit_depth}-bit)")
    out_w, out_h = v.width * scale, v.height * scale
    sar = v.sar if not is_image else Fraction(1)
    if sar != 1 and opts.square_pixels:
        step = 2 if fmt.chroma_width(2) == 1 else 1  # 4:2:x: an even width
        out_w = max(2, round(out_w * sar / step) * step)
        log.info("non-square pixels (SAR %s) resampled to square: %dx%d", sar, out_w, out_h)
        sar = Fraction(1)
    picture_size = (out_w, out_h)
    # 4:2:0 / 4:2:2 encoders need even sizes where the chroma is subsampled.
    pw, ph = pixfmt.encoded_size(out_w, out_h, pix_fmt)
    padded = (pw, ph) != (out_w, out_h)
    if padded:
        notes.append(f"{out_w}x{out_h} is odd and {pix_fmt} needs even sizes: "
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
    if codec_name == "libsvtav1":
        # SVT-AV1 logs through its own printf before any option applies ("Svt[warn]: Failed
        # to set thread priority"); its level comes from the environment.
        os.environ.setdefault("SVT_LOG", "3" if verbose else "1")
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
    codec_opts.update(opts.codec_options)
    cc.options = codec_opts
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
    return _Video(stream, EncodeFormat(out_w, out_h, pix_fmt, colorspace, color_range, padded,
                                       picture_size, is_image))


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


def _passthrough_streams(container: Any, opts: SinkOptions, info: StreamInfo, is_image: bool,
                         notes: list[str]) -> tuple[dict[int, Any], frozenset[int]]:
    """The output streams of the input's audio and subtitles (input index -> stream), and
    which of them are re-encoded (their packets must arrive decoded)."""
    stream_map: dict[int, Any] = {}
    decode_audio: set[int] = set()
    if opts.audio != "none" and not is_image:
        for s in info.passthrough:
            planned = plan_stream(container, s, notes)
            if planned is None:
                continue
            stream_map[s.index], reencode = planned
            if reencode:
                decode_audio.add(s.index)
    return stream_map, frozenset(decode_audio)


def _write_header(container: Any, url: str, final: Path | None) -> None:
    """Write the header now: a stream the muxer refuses fails before any work."""
    try:
        container.start_encoding()
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        if getattr(exc, "errno", None) in _WRITE_FAILURES:
            raise write_error(final, exc) from exc
        raise SinkError(f"cannot open output '{url}': {reason(exc)}",
                        hint="check that the receiver is listening" if "://" in url else None) from exc


#: errno values that mean "the disk or pipe failed", not "the request was wrong" (exit 1).
_WRITE_FAILURES = {errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EPIPE, errno.EFBIG}


def write_error(final: Path | None, exc: BaseException) -> EncodeError:
    """The error for a failed write to the output (the disk, the pipe or the network)."""
    where = "standard output" if final is None else f"'{final}'"
    return EncodeError(f"cannot write output {where}: {reason(exc)}")


def finish(out: OpenedOutput) -> None:
    """Close the container and move the temporary file to its final name."""
    try:
        out.container.close()
    except (av.error.FFmpegError, OSError) as exc:
        discard(out)
        raise EncodeError(f"cannot finish output '{out.final_path}': {reason(exc)}") from exc
    if out.temp_path is not None and out.final_path is not None:
        try:
            os.replace(out.temp_path, out.final_path)
        except OSError as exc:
            _remove(out.temp_path)
            raise EncodeError(f"cannot move output into place at '{out.final_path}': "
                              f"{exc.strerror or exc}") from exc


def close_in_place(out: OpenedOutput) -> None:
    """Live mode: close the output where it is (it was written in place or to a URL)."""
    try:
        out.container.close()
    except (av.error.FFmpegError, OSError) as exc:
        log.warning("closing the output %s: %s", out.final_path or out.url, reason(exc))


def discard(out: OpenedOutput) -> None:
    """Close without caring about errors and delete the temporary file."""
    try:
        out.container.close()
    except Exception:  # noqa: BLE001, S110 - the run already failed; this only cleans up
        pass
    if out.temp_path is not None:
        _remove(out.temp_path)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove temporary file '%s': %s", path, exc)

