"""The output container (main thread): opening it with its streams, and finishing it.

`open_output()` runs before any work, so an existing output, an unwritable folder or an
unknown codec fails fast. It writes to a hidden temporary file beside the target; the sink
thread (`sink.run_sink`) owns the container from then on, and `finish()` renames the file into
place only when everything was flushed. On any failure (`discard()`) the temporary file is
removed: a half-written output never appears under the final name. The video stream and
what its encoder takes (`EncodeFormat`, read by the compose stage) come from
`vsr.media.video_stream`; the audio and subtitle streams from `vsr.media.streams`.
"""

from __future__ import annotations

import contextlib
import dataclasses
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

from ..errors import EncodeError, SinkError, UsageError, reason
from ..frames import Chapter, StreamInfo
from ..options import SinkOptions
from .network_output import LinkSpec, NetworkLink, open_fds, with_write_timeout
from .streams import copy_tags, plan_stream
from .video_stream import IMAGE_CODECS, EncodeFormat, copy_video_stream, open_video_stream

log = logging.getLogger(__name__)

#: Input extensions read as still images: their default output is a .png.
IMAGE_INPUTS = frozenset(IMAGE_CODECS) | {".gif", ".jpe", ".jfif"}
STALE_CONTAINER_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration"}


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
        link: a network output's side (`network_output.NetworkLink`): the sink relays every
            packet through it, so a receiver that goes away is reconnected or reported; with
            a recording (`SinkOptions.record`) the container here is the recording's.
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
    link: NetworkLink | None = None

    @property
    def is_image(self) -> bool:
        return self.format.is_image

    @property
    def name(self) -> str:
        """The output as the user named it: the file, the URL, or standard output."""
        if self.link is not None and self.link.mirror:
            return f"{self.url} (recording {self.final_path})"
        if self.final_path is not None:
            return str(self.final_path)
        return "standard output" if self.url == "-" else self.url


@dataclass(frozen=True)
class _Target:
    """Where an output goes: `final` (None for standard output or a URL), through `temp`
    (None when written in place), as a still image or not."""

    final: Path | None
    temp: Path | None
    is_image: bool


def default_output(input_url: str, scale: int) -> str:
    """`photo.jpg` -> `photo_x3.png`; `clip.webm` -> `clip_x3.webm`; a URL -> `<name>_x3.mp4`."""
    p = Path(input_url.split("?")[0].rstrip("/") or "output")
    is_image = p.suffix.lower() in IMAGE_INPUTS
    suffix = ".png" if is_image else (p.suffix if p.suffix and "://" not in input_url else ".mp4")
    return str(Path(p.name if "://" in input_url else p).with_name(f"{p.stem}_x{scale}{suffix}"))


#: Muxers for network outputs, chosen by URL scheme when --format is not given.
URL_FORMATS = {
    "rtmp": "flv",
    "rtmps": "flv",
    "udp": "mpegts",
    "tcp": "mpegts",
    "srt": "mpegts",
    "rtp": "rtp_mpegts",
    "rtsp": "rtsp",
    "http": "mpegts",
    "https": "mpegts",
}


def partial_path(final: Path, token: str) -> Path:
    """The hidden temporary file an output is written to before it is renamed to `final`."""
    return final.with_name(f".{final.stem}.vsr-{token}.partial{final.suffix}")


def partials_of(final: Path) -> list[Path]:
    """The temporary files of `final` that runs stopped by force (SIGKILL) left behind."""
    return sorted(final.parent.glob(partial_path(final, "*").name))


def open_output(
    opts: SinkOptions,
    info: StreamInfo,
    scale: int,
    *,
    live: bool = False,
    video_template: Any = None,
    global_header: bool = False,
) -> OpenedOutput:
    """Create the output container and its streams.

    In file mode the output goes to a hidden temporary file that `finish()` renames; in live
    mode it is written in place (a recording must exist while it grows) or sent to a URL.
    With `video_template` (an input stream of already upscaled video: the scale-out join) the
    video is copied from it, not encoded; everything else (audio, tags, rotation) is the same.
    `global_header`: the encoder puts its parameters in the header even where this container
    would not ask for it (a recording whose stream a network output mirrors).

    Raises:
        SinkError: output exists (without overwrite), folder missing or unwritable, unknown
            format or codec, or a pipe output without a format.
    """
    if "://" in opts.url:
        return _open_url(opts, info, scale, live)
    if opts.record:
        raise UsageError(
            f"--record is for a network output, not {opts.url!r}",
            hint="give the file as OUTPUT, or a udp://, tcp://, rtmp:// or srt:// URL",
        )
    to_stdout = opts.url == "-"
    final: Path | None = None if to_stdout else Path(opts.url)
    suffix = final.suffix.lower() if final else ""
    is_image = suffix in IMAGE_CODECS and opts.format is None
    if to_stdout and not opts.format:
        raise SinkError(
            "cannot write to standard output without a container format",
            hint="add --format matroska (or mpegts, nut)",
        )
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
        temp = final if live else partial_path(final, secrets.token_hex(4))
    fmt = opts.format or ("image2" if is_image else None)
    # FFmpeg picks the muxer from the temporary name, which keeps the final suffix; an
    # explicit --format covers odd suffixes. (Outside the try below: its SinkError carries
    # its own hint.)
    if fmt is None and final is not None:
        _require_extension(final)
    # One handler from the file's creation to the streams' end: a Ctrl-C lands anywhere (it
    # raises where the main thread is), and one between two handlers left a hidden temporary
    # file behind in a batch interrupted as its next file opened.
    container: Any = None
    try:
        try:
            target: Any = sys.stdout.buffer if to_stdout else str(temp)
            if temp is not None:
                # PyAV creates the file only at the first mux: create it now, so an unwritable
                # folder fails here (exit 2) and not after the model ran (exit 1).
                with open(temp, "wb" if live else "xb"):
                    pass
            container = av.open(target, "w", format=fmt, options=dict(opts.container_options))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            where = "standard output" if to_stdout else f"'{final}'"
            raise SinkError(f"cannot write output {where}: {reason(exc)}") from exc
        # Live: written in place, so there is nothing to rename or delete.
        target_ = _Target(final, None if live else temp, is_image)
        return _add_streams(
            container,
            opts,
            info,
            scale,
            target_,
            live=live,
            video_template=video_template,
            global_header=global_header,
        )
    except BaseException:
        if container is not None:
            container.close()
        if temp is not None:
            _remove(temp)
        raise


_URL_HINT = (
    "check that the receiver is listening (tcp://, rtmp://) and the URL; pass --format "
    "if the protocol needs another muxer"
)


def _url_hint(exc: BaseException, url: str) -> str:
    """The hint for a network output that cannot be opened: a protocol this FFmpeg lacks
    (PyAV's wheels have no libsrt, so no srt://) is said as such."""
    if isinstance(exc, av.error.ProtocolNotFoundError):
        scheme = url.split("://", 1)[0]
        return (
            f"the FFmpeg in this PyAV was built without {scheme}://; send MPEG-TS over udp:// or "
            "tcp://, or FLV over rtmp://, instead (or relay with a tool that has it)"
        )
    return _URL_HINT


def _open_url(opts: SinkOptions, info: StreamInfo, scale: int, live: bool) -> OpenedOutput:
    """A network output (udp://, tcp://, rtmp://, srt://, ...): the muxer connects now.

    With `opts.record`, the recording is opened first and owns the encoder (its header
    flags: global, so that both containers get the codec's parameters); the network
    output mirrors its streams (`NetworkLink`)."""
    scheme = opts.url.split("://", 1)[0].lower()
    fmt = opts.format or URL_FORMATS.get(scheme)
    spec = LinkSpec(opts.url, fmt, dict(opts.container_options), opts.reconnect, opts.record, opts.stall)
    if opts.record:
        rec = open_output(
            dataclasses.replace(opts, url=opts.record, format=None, container_options={}, record=None),
            info,
            scale,
            live=True,
            global_header=True,
        )
        try:
            link = NetworkLink(spec, rec.container, rec.video, mirror=True)
        except BaseException as exc:
            discard(rec)
            if rec.final_path is not None:
                _remove(rec.final_path)  # nothing was recorded: leave no empty file
            if isinstance(exc, (av.error.FFmpegError, OSError, ValueError)):
                raise SinkError(
                    f"cannot open output {opts.url!r}: {reason(exc)}", hint=_url_hint(exc, opts.url)
                ) from exc
            raise
        return dataclasses.replace(rec, url=opts.url, link=link)
    before = open_fds()  # the connection the muxer makes is what appears (`NetworkLink`)
    try:
        options = with_write_timeout(opts.url, opts.container_options, opts.stall)
        container = av.open(opts.url, "w", format=fmt, options=options, timeout=(10.0, 30.0))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise SinkError(
            f"cannot open output {opts.url!r}: {reason(exc)}", hint=_url_hint(exc, opts.url)
        ) from exc
    try:
        opened = _add_streams(container, opts, info, scale, _Target(None, None, False), live=live)
    except BaseException:
        container.close()
        raise
    link = NetworkLink(spec, container, opened.video, mirror=False, fds_before=before)
    return dataclasses.replace(opened, link=link)


def _require_extension(path: Path) -> None:
    """FFmpeg picks the muxer from the (temporary) name's suffix: without one it cannot."""
    if not path.suffix:
        raise SinkError(
            f"cannot tell the container format of '{path}' (no file extension)",
            hint="add an extension such as .mp4 or .mkv, or pass --format",
        )


def _add_streams(
    container: Any,
    opts: SinkOptions,
    info: StreamInfo,
    scale: int,
    target: _Target,
    *,
    live: bool,
    video_template: Any = None,
    global_header: bool = False,
) -> OpenedOutput:
    """The video stream, the passthrough streams, the tags and the header."""
    notes: list[str] = []
    if video_template is not None:
        video = copy_video_stream(container, video_template, info, target.is_image)
    else:
        video = open_video_stream(
            container,
            opts,
            info,
            scale,
            live=live,
            notes=notes,
            global_header=global_header,
            image_suffix=target.final.suffix.lower()
            if target.final is not None and target.is_image
            else None,
        )
    if info.dropped_streams and not target.is_image:
        notes.append(
            f"dropped {len(info.dropped_streams)} stream(s) no output carries: "
            + ", ".join(info.dropped_streams)
        )
    if (
        container.format.name.split(",")[0] in ("mov", "mp4")
        and video.format.color_range is not None
        and "movflags" not in opts.container_options
    ):
        # MP4 writes the range in its `colr` box only when a primaries/transfer/matrix tag is
        # set, and x264 leaves limited range out of the bitstream: an untagged "tv" clip
        # came out with no range at all. write_colr writes the box always.
        container.options["movflags"] = "+write_colr"
    if not target.is_image:
        copy_tags(info.container_metadata, container.metadata, STALE_CONTAINER_TAGS)
        if info.chapters and not live:
            copy_chapters(container, info.chapters, notes)
    stream_map, decode_audio = _passthrough_streams(container, opts, info, target.is_image, notes)
    _write_header(container, opts.url, target.final)
    return OpenedOutput(
        container=container,
        video=video.stream,
        format=video.format,
        stream_map=stream_map,
        decode_audio=decode_audio,
        notes=tuple(notes),
        url=opts.url,
        final_path=target.final,
        temp_path=target.temp,
        negative_ts=bool(container.format.flags & 0x40000),
        copy_video=video_template is not None,
    )


#: Muxers that write chapters (MP4/MOV as a QuickTime text track plus Nero's `chpl`, as FFmpeg
#: does); the others would drop them without a word.
CHAPTER_MUXERS = {
    "matroska",
    "webm",
    "mp4",
    "mov",
    "ipod",
    "3gp",
    "3g2",
    "psp",
    "ismv",
    "f4v",
    "nut",
    "ogg",
    "ffmetadata",
}


def copy_chapters(container: Any, chapters: tuple[Chapter, ...], notes: list[str]) -> None:
    """The input's chapters, with their titles, into a container that holds them (FFmpeg
    copies chapters by default); a note says when it cannot."""
    fmt = container.format.name.split(",")[0]
    if fmt not in CHAPTER_MUXERS:
        notes.append(f"{len(chapters)} chapter(s) dropped: {fmt} cannot hold chapters (.mkv and .mp4 can)")
        return
    try:
        container.set_chapters(
            [
                {
                    "id": i + 1,
                    "start": c.start,
                    "end": c.end,
                    "time_base": c.time_base,
                    "metadata": dict(c.metadata),
                }
                for i, c in enumerate(chapters)
            ]
        )
    except (AttributeError, TypeError, ValueError, av.error.FFmpegError) as exc:  # a PyAV without them
        notes.append(f"{len(chapters)} chapter(s) dropped: {reason(exc)}")


def _passthrough_streams(
    container: Any, opts: SinkOptions, info: StreamInfo, is_image: bool, notes: list[str]
) -> tuple[dict[int, Any], frozenset[int]]:
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
        raise SinkError(
            f"cannot open output '{url}': {reason(exc)}",
            hint=_url_hint(exc, url) if "://" in url else None,
        ) from exc


#: errno values that mean "the disk or pipe failed", not "the request was wrong" (exit 1).
_WRITE_FAILURES = {errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EPIPE, errno.EFBIG}


def write_error(final: Path | str | None, exc: BaseException) -> EncodeError:
    """The error for a failed write to the output (the disk, the pipe or the network);
    `final`: the file or URL (None: standard output)."""
    where = "standard output" if final is None or final == "-" else f"'{final}'"
    return EncodeError(f"cannot write output {where}: {reason(exc)}")


def _close_link(out: OpenedOutput) -> None:
    if out.link is not None:
        out.link.close()


def finish(out: OpenedOutput) -> None:
    """Close the container and move the temporary file to its final name."""
    _close_link(out)
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
            raise EncodeError(
                f"cannot move output into place at '{out.final_path}': {exc.strerror or exc}"
            ) from exc


def live_chapters(
    chapters: tuple[Chapter, ...], origin: float, end: float | None, start: float = 0.0
) -> tuple[Chapter, ...]:
    """Live mode: one connection's chapters (input seconds) on a recording's clock, where its
    first frame (`origin`, input seconds) lands at `start` (output seconds) and its part ends
    at `end` (output seconds: the recording's end, or where the next connection's part
    begins): those that end before the part starts or start at or after its end are dropped,
    the others cut to it."""
    kept = []
    shift = Fraction(start) - Fraction(origin)
    begin = Fraction(start)
    limit = Fraction(end) if end is not None else None
    for c in chapters:
        tb = c.time_base
        a, b = c.start * tb + shift, c.end * tb + shift
        if b <= begin or (limit is not None and a >= limit):
            continue
        a = max(a, begin)
        if limit is not None:
            b = min(b, limit)
        kept.append(Chapter(round(a / tb), round(b / tb), tb, c.metadata))
    return tuple(kept)


def close_in_place(out: OpenedOutput, chapters: tuple[Chapter, ...] = ()) -> None:
    """Live mode: close the output where it is (it was written in place or to a URL), with
    `chapters` (on its clock, `live_chapters`) written into a file whose container holds them:
    only now is the recording's end known. (MKV, MP4 and MOV write chapters given after the
    header with the trailer.)"""
    _close_link(out)
    if chapters and out.final_path is not None:
        notes: list[str] = []
        copy_chapters(out.container, chapters, notes)
        for note in notes:
            log.warning("%s", note)
    try:
        out.container.close()
    except (av.error.FFmpegError, OSError) as exc:
        if out.link is None or not out.link.primary_lost:  # else already said, when it went away
            log.warning("closing the output %s: %s", out.name, reason(exc))


def discard(out: OpenedOutput) -> None:
    """Close without caring about errors and delete the temporary file."""
    with contextlib.suppress(Exception):
        _close_link(out)
    try:
        out.container.close()
    except Exception:  # noqa: BLE001 - the run already failed; this only cleans up
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
