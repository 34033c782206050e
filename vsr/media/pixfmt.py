"""Pixel formats: which YUV layouts the native path takes, and which one the output gets.

Why: a phone's 10-bit HLG clip or a broadcast 4:2:2 master must come out with its bit depth
and chroma layout, not silently squeezed into 8-bit 4:2:0 (8-bit HDR bands). The native path
(`vsr.media.color`) works on any planar YUV layout at any depth; this module describes those
layouts and picks, for an encoder, the output format closest to the input's.
"""

from __future__ import annotations

from dataclasses import dataclass

import av

#: Semi-planar formats (decoders and hardware often hand these out) and the planar format
#: holding the same samples; converting between them is an exact reshuffle.
SEMI_PLANAR = {
    "nv12": "yuv420p",
    "nv21": "yuv420p",
    "nv16": "yuv422p",
    "nv24": "yuv444p",
    "p010le": "yuv420p10le",
    "p012le": "yuv420p12le",
    "p016le": "yuv420p16le",
    "p210le": "yuv422p10le",
    "p216le": "yuv422p16le",
    "p410le": "yuv444p10le",
    "p416le": "yuv444p16le",
}

_SUBSAMPLING_NAMES = {
    (1, 1): "4:2:0",
    (1, 0): "4:2:2",
    (0, 0): "4:4:4",
    (0, 1): "4:4:0",
    (2, 0): "4:1:1",
    (2, 2): "4:1:0",
}


@dataclass(frozen=True)
class Layout:
    """A planar YUV layout: 8..16 bits per sample, chroma subsampled by 2**sub_w x 2**sub_h."""

    name: str
    depth: int
    sub_w: int
    sub_h: int
    full_range: bool  # the yuvj formats: full range whatever the frame's tag says

    @property
    def chroma(self) -> str:
        return _SUBSAMPLING_NAMES.get((self.sub_w, self.sub_h), f"{self.sub_w}/{self.sub_h}")

    def chroma_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of a chroma plane for a frame of this size."""
        return -(-width // (1 << self.sub_w)), -(-height // (1 << self.sub_h))


#: Encoders that take an odd width or height with subsampled chroma (the chroma plane's size
#: rounds up, as in FFmpeg's own frames and in odd-sized VP9 clips such as the shared bear one),
#: each checked by tests/test_encoders.py on this build. libx264, libx265 and the hardware
#: encoders refuse such sizes, so for them the picture grows by one row/column.
ODD_SIZE_ENCODERS = frozenset({"libvpx", "libvpx-vp9", "libsvtav1", "mpeg4", "ffv1", "mjpeg", "prores_ks"})


def encoded_size(width: int, height: int, pix_fmt: str, codec: str) -> tuple[int, int]:
    """The size `codec` takes a `width` x `height` picture at in `pix_fmt`: exactly that where
    it can, else (its chroma subsampled and a side odd) both odd sides grow by one (the last
    row/column is repeated: `vsr.media.color.merge_planes` or `pad_to_even` pads; `vsr info` predicts it)."""
    even_w, even_h = needs_even(pix_fmt, codec)
    if (width % 2 and even_w) or (height % 2 and even_h):
        return width + width % 2, height + height % 2
    return width, height


def needs_even(pix_fmt: str, codec: str) -> tuple[bool, bool]:
    """Whether `codec` needs an even (width, height) in `pix_fmt`: where its chroma is
    subsampled that way, unless the encoder takes odd sizes (`ODD_SIZE_ENCODERS`)."""
    if codec in ODD_SIZE_ENCODERS:
        return False, False
    fmt = av.VideoFormat(pix_fmt)
    return fmt.chroma_width(2) == 1, fmt.chroma_height(2) == 1


def layout_of(pix_fmt: str) -> Layout | None:
    """The planar YUV layout of `pix_fmt`; None for RGB, grey, alpha, palette, big-endian and
    semi-planar formats (see `SEMI_PLANAR`) and anything else the native path does not take."""
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.error.FFmpegError):
        return None
    comps = fmt.components
    if (
        fmt.is_rgb
        or len(comps) != 3
        or len({c.plane for c in comps}) != 3
        or pix_fmt.endswith("be")
        or not pix_fmt.startswith("yuv")
        or any(c.bits != comps[0].bits for c in comps)
    ):
        return None
    depth = comps[0].bits
    if not 8 <= depth <= 16:
        return None
    sub_w, sub_h = _shift(fmt.chroma_width(256)), _shift(fmt.chroma_height(256))
    return Layout(pix_fmt, depth, sub_w, sub_h, pix_fmt.startswith("yuvj"))


def _shift(size_of_256: int) -> int:
    return {256: 0, 128: 1, 64: 2}.get(size_of_256, 0)


def planar_name(depth: int, sub_w: int, sub_h: int) -> str:
    """The FFmpeg name of a planar layout (yuv422p10le, yuv420p, ...)."""
    sub = {(1, 1): "420", (1, 0): "422", (0, 0): "444", (0, 1): "440", (2, 0): "411", (2, 2): "410"}[
        (sub_w, sub_h)
    ]
    return f"yuv{sub}p" + (f"{depth}le" if depth > 8 else "")


def native_input(pix_fmt: str) -> Layout | None:
    """The layout the native path reads a frame of `pix_fmt` as (after an exact conversion
    for semi-planar formats), or None when it cannot."""
    return layout_of(SEMI_PLANAR.get(pix_fmt, pix_fmt))


@dataclass(frozen=True)
class FormatChoice:
    """The output pixel format picked for an input layout, and what changed on the way."""

    pix_fmt: str
    notes: tuple[str, ...] = ()


def choose_output(codec: str, supported: list[str], source: Layout | None) -> FormatChoice:
    """The output format for encoder `codec` (taking `supported`) and an input layout:
    the input's depth and chroma layout where the encoder takes them; else the same depth at
    4:2:0; else the deepest depth below it; else 8-bit 4:2:0. Each step away from the input
    is said in a note."""
    default = "yuv420p" if not supported or "yuv420p" in supported else supported[0]
    if source is None or (source.depth == 8 and (source.sub_w, source.sub_h) == (1, 1)):
        return FormatChoice(default)
    tried = []
    for depth in [*sorted({d for d in (source.depth, 16, 12, 10) if 8 < d <= source.depth}, reverse=True), 8]:
        for sub in ((source.sub_w, source.sub_h), (1, 1)):
            if sub not in ((1, 1), (1, 0), (0, 0), (0, 1), (2, 0), (2, 2)):
                continue
            name = planar_name(depth, *sub)
            tried.append(name)
            if name in supported or (not supported and name == "yuv420p"):
                notes = []
                if depth < source.depth:
                    notes.append(
                        f"{codec} cannot encode {source.depth}-bit {source.chroma} video: "
                        f"the output is {depth}-bit"
                    )
                if sub != (source.sub_w, source.sub_h):
                    notes.append(
                        f"{codec} cannot encode {source.chroma} chroma at {depth}-bit: "
                        "the output's chroma is 4:2:0"
                    )
                return FormatChoice(name, tuple(notes))
    return FormatChoice(default, (f"{codec} takes none of {', '.join(tried)}: the output is {default}",))
