"""Encoder families: what `--crf` and `--preset` mean to each encoder, and its sane defaults.

Why a table: vsr's options speak libx264 (CRF 18, preset "medium"), and every other encoder
reads them differently or not at all. Passed as they are, SVT-AV1 refused "medium", libvpx
needs `b:v 0` to honour a CRF, MPEG-1/2 only take standard frame rates, MJPEG only full-range
YUV, DNxHD only a few broadcast sizes, and hardware encoders want `cq` / `global_quality` —
so each family gets one `Family` record here (the way vs-mlrt keeps one dataclass per
backend), written once and documented in the README. Used by the sink when it opens the
encoder (main thread), and by `vsr info` to predict what an encoder gets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

log = logging.getLogger(__name__)

#: x264-style preset names on SVT-AV1's numeric scale (0 slowest .. 13 fastest).
SVTAV1_PRESETS = {
    "ultrafast": "12",
    "superfast": "11",
    "veryfast": "10",
    "faster": "9",
    "fast": "8",
    "medium": "7",
    "slow": "5",
    "slower": "4",
    "veryslow": "2",
    "placebo": "1",
}
#: x264-style preset names for libvpx's cpu-used (0 slowest .. 8 fastest with realtime).
VPX_CPU_USED = {
    "ultrafast": "8",
    "superfast": "7",
    "veryfast": "6",
    "faster": "5",
    "fast": "5",
    "medium": "4",
    "slow": "2",
    "slower": "1",
    "veryslow": "0",
    "placebo": "0",
}
#: NVENC presets p1 (fastest) .. p7 (slowest) for x264's names.
NVENC_PRESETS = {
    "ultrafast": "p1",
    "superfast": "p1",
    "veryfast": "p2",
    "faster": "p3",
    "fast": "p3",
    "medium": "p4",
    "slow": "p5",
    "slower": "p6",
    "veryslow": "p7",
    "placebo": "p7",
}
#: ProRes: x264's fast names pick the lighter "standard" profile; the others keep ProRes' own.
PRORES_PROFILES = {name: "standard" for name in ("ultrafast", "superfast", "veryfast", "faster", "fast")}
#: Frame rates MPEG-1/2 can signal.
MPEG12_RATES = (
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
    Fraction(50),
    Fraction(60000, 1001),
    Fraction(60),
)


@dataclass(frozen=True)
class Scale:
    """One quality option on a family's own scale: x264's CRF plus `offset`, kept within
    `low`..`high` (why: each encoder counts quality from its own zero, and a value past its
    range is refused when the encoder opens)."""

    option: str
    offset: int = 0
    low: int | None = None
    high: int | None = None

    def value(self, crf: int) -> str:
        """The option's value for x264's `crf`."""
        v = crf + self.offset
        if self.low is not None:
            v = max(self.low, v)
        if self.high is not None:
            v = min(self.high, v)
        return str(v)


@dataclass(frozen=True)
class Quality:
    """How a family reads `--crf`: the options it sets (each on its own scale), what comes
    with them (constant quality needs `b:v 0` on libvpx and NVENC, `rc cqp` on AMF), and the
    private option the encoder must have for any of it (NVENC builds without `cq`, or
    encoders only known by their option names)."""

    scales: tuple[Scale, ...]
    with_it: dict[str, str] = field(default_factory=dict)
    bit_rate: int | None = None
    needs: str | None = None


@dataclass(frozen=True)
class Presets:
    """How a family reads `--preset` (x264's names): `option` takes `names[preset]`; a name
    not in `names` (a number, or the encoder's own name) passes as it is when `others_pass`.
    `names` None: x264's names are the encoder's own. `default`: the name used when none is
    given (libvpx's own default is its slowest). `needs`: a private option the encoder must
    have (for encoders only known by their option names)."""

    option: str
    names: dict[str, str] | None = None
    others_pass: bool = True
    default: str | None = None
    needs: str | None = None

    def value(self, preset: str) -> str | None:
        """The option's value for `preset`, or None to leave the option alone."""
        if self.names is None:
            return preset
        if preset in self.names:
            return self.names[preset]
        return preset if self.others_pass else None


@dataclass(frozen=True)
class LogLevel:
    """A knob for an encoder's own log (why: x265 and SVT-AV1 print a banner and page of
    info that would bury vsr's one summary line): `name` set to `verbose` or `quiet`."""

    name: str
    verbose: str
    quiet: str

    def value(self, verbose: bool) -> str:
        return self.verbose if verbose else self.quiet


@dataclass(frozen=True)
class Family:
    """One encoder family: which encoders it holds and how vsr's options read to them.

    Attributes:
        name: what the README's table calls it.
        codecs, prefixes, suffixes: the encoder names it holds (exact, by start, by end).
        quality: how `--crf` reads (None: the encoder keeps its own rate control).
        presets: how `--preset` reads (None: ignored).
        options: private options always set.
        live_options, file_options: private options for `vsr live` / a file.
        log_option: the private option that quiets the encoder's log unless verbose.
        log_env: the environment variable that does (SVT-AV1 logs before any option applies).
        quantiser: a constant MPEG quantiser (qmin = qmax) from the CRF (`mpeg_quantiser`).
        qrange: a fixed (qmin, qmax).
        standard_rates: the only frame rates it can signal (the nearest is taken).
        full_range_yuv: it writes full-range YUV only (the yuvj pixel formats).
        needs: the hardware it needs, said when it cannot open (None: software).
    """

    name: str
    codecs: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    quality: Quality | None = None
    presets: Presets | None = None
    options: dict[str, str] = field(default_factory=dict)
    live_options: dict[str, str] = field(default_factory=dict)
    file_options: dict[str, str] = field(default_factory=dict)
    log_option: LogLevel | None = None
    log_env: LogLevel | None = None
    quantiser: bool = False
    qrange: tuple[int, int] | None = None
    standard_rates: tuple[Fraction, ...] = ()
    full_range_yuv: bool = False
    needs: str | None = None

    def holds(self, codec: str) -> bool:
        """Whether encoder `codec` belongs to this family."""
        return codec in self.codecs or codec.startswith(self.prefixes) or codec.endswith(self.suffixes)


def _hardware(
    suffix: str, needs: str, quality: Quality | None = None, presets: Presets | None = None
) -> Family:
    """A hardware family, known by its encoders' suffix."""
    return Family(suffix.strip("_"), suffixes=(suffix,), quality=quality, presets=presets, needs=needs)


#: Every family vsr knows, first match wins; an encoder in none gets `GENERIC`.
FAMILIES: tuple[Family, ...] = (
    Family(
        "x264",
        codecs=frozenset({"libx264"}),
        quality=Quality((Scale("crf"),)),
        presets=Presets("preset"),
        live_options={"tune": "zerolatency"},
    ),
    # x265 prints a page of info (and size warnings) unless told otherwise.
    Family(
        "x265",
        codecs=frozenset({"libx265"}),
        quality=Quality((Scale("crf"),)),
        presets=Presets("preset"),
        live_options={"tune": "zerolatency"},
        log_option=LogLevel("x265-params", "log-level=info", "log-level=error"),
    ),
    # SVT-AV1's CRF is 0..63: +12 keeps x264's 18 (-> 30) and 23 (-> 35, its default).
    Family(
        "svt-av1",
        codecs=frozenset({"libsvtav1"}),
        quality=Quality((Scale("crf", 12, high=63),)),
        presets=Presets("preset", SVTAV1_PRESETS),
        log_option=LogLevel("svtav1-params", "log-level=3", "log-level=1"),
        log_env=LogLevel("SVT_LOG", "3", "1"),
    ),
    # libvpx's defaults are its slowest ("good", cpu-used 0, one thread per frame): about
    # 1 fps at 1080p; "medium" maps near libx264 medium in speed and quality. Its CRF is
    # 4..63, and constant quality needs b:v 0.
    Family(
        "libvpx",
        codecs=frozenset({"libvpx", "libvpx-vp9"}),
        quality=Quality((Scale("crf", 13, low=4, high=63),), bit_rate=0),
        presets=Presets("cpu-used", VPX_CPU_USED, default="medium"),
        options={"row-mt": "1"},
        live_options={"deadline": "realtime"},
        file_options={"deadline": "good"},
    ),
    Family(
        "mpeg1/2", codecs=frozenset({"mpeg1video", "mpeg2video"}), quantiser=True, standard_rates=MPEG12_RATES
    ),
    Family(
        "mpeg4", codecs=frozenset({"mpeg4", "h263", "h263p", "flv"}), prefixes=("msmpeg4",), quantiser=True
    ),
    Family("mjpeg", codecs=frozenset({"mjpeg"}), options={"qscale": "2"}, qrange=(1, 3), full_range_yuv=True),
    # DNxHD proper only takes a few broadcast sizes and bit rates; DNxHR takes any size.
    Family("dnxhd", codecs=frozenset({"dnxhd"}), options={"profile": "dnxhr_hq"}),
    Family(
        "prores",
        codecs=frozenset({"prores_ks"}),
        presets=Presets("profile", PRORES_PROFILES, others_pass=False),
    ),
    _hardware(
        "_nvenc",
        "an NVIDIA GPU with NVENC (and its driver)",
        Quality((Scale("cq", 1, high=51),), bit_rate=0, needs="cq"),
        Presets("preset", NVENC_PRESETS),
    ),
    _hardware(
        "_qsv",
        "Intel Quick Sync Video (an Intel GPU and its media driver)",
        Quality((Scale("global_quality", 2),)),
    ),
    _hardware(
        "_amf",
        "an AMD GPU with AMF (and its driver)",
        Quality((Scale("qp_i"), Scale("qp_p", 2)), with_it={"rc": "cqp"}),
    ),
    _hardware("_vaapi", "a VA-API device (/dev/dri/renderD128)", Quality((Scale("qp", 2),))),
    _hardware("_v4l2m2m", "a V4L2 memory-to-memory encoder device"),
    _hardware("_videotoolbox", "macOS VideoToolbox"),
    _hardware("_mf", "Windows Media Foundation"),
    _hardware("_vulkan", "a Vulkan video encode device"),
)

#: Anything else (lossless and intermediate codecs): its own defaults; a CRF or preset the
#: encoder knows by that name still passes.
GENERIC = Family(
    "other", quality=Quality((Scale("crf"),), needs="crf"), presets=Presets("preset", needs="preset")
)


def family_of(codec: str) -> Family:
    """The family encoder `codec` belongs to (`GENERIC` when vsr knows none)."""
    return next((f for f in FAMILIES if f.holds(codec)), GENERIC)


def hardware_of(codec: str) -> str | None:
    """What hardware `codec` needs, or None for a software encoder."""
    return family_of(codec).needs


@dataclass(frozen=True)
class EncoderSetup:
    """How one encoder is set up: its private options and codec-context fields."""

    options: dict[str, str]
    bit_rate: int | None = None  # set cc.bit_rate (None: leave it)
    qrange: tuple[int, int] | None = None  # cc.qmin, cc.qmax
    time_base: Fraction | None = None  # an encoder that needs a standard rate's time base
    note: str = ""


def mapping(
    codec: str,
    private: set[str],
    crf: int | None,
    preset: str | None,
    live: bool,
    rate: Fraction | None,
    verbose: bool = False,
) -> EncoderSetup:
    """The options that give `codec` vsr's meaning of `--crf` (x264's scale, lower = better)
    and `--preset` (x264's names; numbers pass through to encoders that take numbers), read
    from its family's record.

    Args:
        private: the encoder's private option names (`cc.supported_options.private`).
        rate: the input's frame rate (for encoders that need a standard one).
        verbose: let the encoder's own log through (its banner otherwise stays quiet).
    """
    family = family_of(codec)
    opts = dict(family.options)
    opts.update(family.live_options if live else family.file_options)
    if family.log_option is not None:
        opts[family.log_option.name] = family.log_option.value(verbose)
    opts.update(_preset_options(family.presets, str(preset) if preset else None, private))
    quality = _quality_options(family.quality, crf, private)
    opts.update(quality)
    bit_rate = family.quality.bit_rate if family.quality is not None and quality else None
    qrange = family.qrange
    if family.quantiser:
        q = mpeg_quantiser(crf)
        qrange = (q, q)
    time_base, note = _standard_rate(codec, family.standard_rates, rate)
    return EncoderSetup(opts, bit_rate=bit_rate, qrange=qrange, time_base=time_base, note=note)


def _preset_options(presets: Presets | None, named: str | None, private: set[str]) -> dict[str, str]:
    """The option `--preset` (or the family's default) sets, if any."""
    named = named or (presets.default if presets is not None else None)
    if presets is None or not named or (presets.needs is not None and presets.needs not in private):
        return {}
    value = presets.value(named)
    return {} if value is None else {presets.option: value}


def _quality_options(quality: Quality | None, crf: int | None, private: set[str]) -> dict[str, str]:
    """The options `--crf` sets, if any (none without a CRF, or without the option needed)."""
    if quality is None or crf is None or (quality.needs is not None and quality.needs not in private):
        return {}
    return {**quality.with_it, **{s.option: s.value(crf) for s in quality.scales}}


def _standard_rate(
    codec: str, rates: tuple[Fraction, ...], rate: Fraction | None
) -> tuple[Fraction | None, str]:
    """For an encoder that only signals `rates`: the time base of the nearest to the input's
    `rate`, and a note when that is not the input's own (timestamps get rounded)."""
    if not rates:
        return None, ""
    want = rate or Fraction(25)
    std = min(rates, key=lambda r: abs(float(r) - float(want)))
    note = (
        ""
        if std == want
        else (
            f"{codec} takes only standard frame rates: {float(want):.3f} fps "
            f"is written as {float(std):.3f} fps (timestamps rounded)"
        )
    )
    return 1 / std, note


def mpeg_quantiser(crf: int | None) -> int:
    """x264's CRF on the MPEG-1/2/4 quantiser scale (2 best .. 31): CRF 18 -> 3, 23 -> 5."""
    return 3 if crf is None else max(2, min(31, round((crf - 12) / 2.5) + 1))


def preferred_pix_fmt(codec: str, chosen: str) -> str:
    """A full-range-only family (MJPEG) writes the yuvj formats: limited range it refuses."""
    if family_of(codec).full_range_yuv and chosen in ("yuv420p", "yuv422p", "yuv444p"):
        return "yuvj" + chosen[3:]
    return chosen


def quiet_environment(codec: str, verbose: bool) -> dict[str, str]:
    """Environment variables that set `codec`'s log level before it reads any option
    (SVT-AV1 prints "Svt[warn]: ..." through its own printf otherwise), to set by default."""
    env = family_of(codec).log_env
    return {} if env is None else {env.name: env.value(verbose)}


def apply(cc: Any, m: EncoderSetup) -> None:
    """Set the codec-context fields of `m` on `cc` (before it is opened)."""
    if m.bit_rate is not None:
        cc.bit_rate = m.bit_rate
    if m.qrange is not None:
        cc.qmin, cc.qmax = m.qrange
    if m.time_base is not None:
        cc.time_base = m.time_base
        cc.framerate = 1 / m.time_base
