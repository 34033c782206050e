"""What a stranger's job may read and write: paths inside the root, URLs on network protocols.

Why so strict: a job names files and URLs that FFmpeg opens with the service's rights. An
absolute path, a `..`, or a symlink that leaves the root would let any client read or
overwrite any file the service can; FFmpeg's own protocols (`file:`, `concat:`, `subfile:`,
`data:`, ...) and demuxers that open further files (an HLS playlist, a concat list) would do
the same by another door. So:

- a path must resolve, symlinks followed, to a place inside the root (and not the service's
  own state folder);
- a local input may use only the `file` protocol, and none of the demuxers that open other
  files by name (`format_whitelist`);
- a URL input (with `--allow-urls` only) may use only network protocols, for itself and for
  everything it opens in turn (`protocol_whitelist`): an HLS playlist fetched over HTTP that
  names `file:///etc/passwd` fails to open it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ...errors import UsageError

#: URL schemes a job's input may have (with --allow-urls).
URL_SCHEMES = ("http", "https", "rtmp", "rtsp", "srt", "udp", "tcp")
#: What FFmpeg may open for a URL input, the nested opens included: the schemes above and the
#: transports under them (TLS for https, RTP for RTSP, crypto for encrypted HLS segments).
NETWORK_PROTOCOLS = "http,https,tls,tcp,udp,rtp,rtmp,rtsp,srt,crypto,httpproxy"
#: Demuxers that open further files by name: refused for local inputs.
OPENS_OTHER_FILES = frozenset(
    {"hls", "applehttp", "concat", "dash", "webm_dash_manifest", "ffmetadata", "imf", "mpl2", "tee"}
)

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


class Refused(UsageError):
    """A job's path or URL is not allowed (HTTP 403)."""


@dataclass(frozen=True)
class Input:
    """A checked input: what to open, and the FFmpeg options that keep it confined."""

    url: str  # an absolute path inside the root, or the URL
    shown: str  # as the client gave it
    options: dict[str, str]
    is_url: bool


def is_url(text: str) -> bool:
    """A scheme (`http:`, `file:`, `concat:`) and not a Windows drive letter."""
    m = _SCHEME.match(text)
    return m is not None and len(m.group(1)) > 1


def inside(root: Path, name: str, *, what: str, state: Path | None = None) -> Path:
    """`name` (relative to `root`) as an absolute path inside it, symlinks resolved.

    Raises:
        Refused: empty, absolute, a NUL byte, a scheme, or a place outside `root` (by `..` or
            by a symlink), or inside the service's state folder.
    """
    if not name or "\x00" in name:
        raise Refused(f"{what} path is empty or has a NUL byte")
    if is_url(name):
        raise Refused(f"{what} '{name}' is a URL: give a path relative to the service's root")
    if PurePosixPath(name).is_absolute() or name.startswith("\\"):
        raise Refused(f"{what} '{name}' is an absolute path: give a path relative to the service's root")
    base = root.resolve()
    resolved = (base / name).resolve()
    if not resolved.is_relative_to(base):
        raise Refused(f"{what} '{name}' is outside the service's root")
    if state is not None and resolved.is_relative_to(state.resolve()):
        raise Refused(f"{what} '{name}' is inside the service's state folder")
    return resolved


def check_input(root: Path, name: str, *, allow_urls: bool, state: Path | None = None) -> Input:
    """A job's input, checked and confined.

    Raises:
        Refused: a path outside the root, a URL without `--allow-urls`, or a protocol that
            is not a network one.
        UsageError: a local input that does not exist or is not a file.
    """
    if is_url(name):
        scheme = name.split(":", 1)[0].lower()
        if not allow_urls:
            raise Refused(
                f"input '{name}' is a URL; this service takes files only",
                hint="start 'vsr serve' with --allow-urls to take network inputs",
            )
        if scheme not in URL_SCHEMES or not name[len(scheme) + 1 :].startswith("//"):
            raise Refused(
                f"input '{name}': protocol '{scheme}' is not allowed",
                hint="network protocols only: " + ", ".join(URL_SCHEMES),
            )
        return Input(name, name, {"protocol_whitelist": NETWORK_PROTOCOLS}, True)
    path = inside(root, name, what="input", state=state)
    if not path.is_file():
        raise UsageError(
            f"input '{name}' does not exist" if not path.exists() else f"input '{name}' is not a file"
        )
    return Input(str(path), name, {"protocol_whitelist": "file", "format_whitelist": local_formats()}, False)


@functools.cache
def local_formats() -> str:
    """Every demuxer of this FFmpeg except those that open other files by name."""
    import av

    names = []
    for name in sorted(av.formats_available):
        try:
            if av.format.ContainerFormat(name, "r") and name not in OPENS_OTHER_FILES:
                names.append(name)
        except (ValueError, av.error.FFmpegError):
            continue  # a muxer only
    return ",".join(names)
