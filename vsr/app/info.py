"""What `vsr info` reports about an input and a model: one record, and its text.

Why a record first: `vsr info --json` is what scripts read, and the text is written from the
same record only, so the two cannot say different things. The output it predicts (pixel
format, encoded size, notes) comes from the choices `vsr upscale` makes
(`video_stream.output_pix_fmt`, `pixfmt.encoded_size`), not from a copy of them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..errors import VsrError
from ..options import ModelOptions, SinkOptions, SourceOptions

#: FFmpeg's names for the colour tags `vsr info` shows (the values of AVColorRange etc.).
COLOR_RANGES = {0: "unspecified", 1: "tv (limited)", 2: "pc (full)"}
COLOR_PRIMARIES = {
    1: "bt709",
    2: "unspecified",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
COLOR_TRANSFERS = {
    1: "bt709",
    2: "unspecified",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    13: "iec61966-2-1 (sRGB)",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084 (PQ)",
    17: "smpte428",
    18: "arib-std-b67 (HLG)",
}
COLOR_MATRICES = {
    0: "gbr",
    1: "bt709",
    2: "unspecified",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    14: "ictcp",
}


@dataclass(frozen=True)
class InfoOptions:
    """What to describe. `codec`: the encoder the output is predicted for (MP4's default);
    `keyframes`: also scan where the file can be cut into segments (reads every packet);
    `count`: decode the whole video for its real frame count and duration; `picture`: the
    output picture options (`--width`, `--height`, `--square-pixels`) to predict with."""

    url: str
    model: ModelOptions
    codec: str = "libx264"
    keyframes: bool = False
    count: bool = False
    picture: SinkOptions | None = None  # --width/--height/--square-pixels, as `vsr upscale` has them


def report(opts: InfoOptions) -> dict[str, Any]:
    """The record `vsr info --json` prints.

    Raises:
        SourceError: the input cannot be opened or has no video.
        ModelError: the model cannot be loaded.
        SinkError: `opts.codec` is not a video encoder.
    """
    from ..media.input import open_input
    from ..media.pixfmt import encoded_size, native_input
    from ..media.video_stream import output_pix_fmt, picture_geometry
    from ..model.load import describe, load

    src = open_input(SourceOptions(opts.url))
    try:
        info = src.info
        streams = [
            {
                "index": s.index,
                "type": s.type,
                "codec": s.codec_context.name,
                **(
                    {"sample_rate": s.codec_context.sample_rate, "channels": s.codec_context.channels}
                    if s.type == "audio"
                    else {}
                ),
                "language": s.metadata.get("language"),
            }
            for s in info.passthrough
        ]
    finally:
        src.container.close()
    up = load(opts.model)
    v = info.video
    layout = native_input(v.pix_fmt)
    # What `vsr upscale` picks for the codec (the input's depth and chroma where the encoder
    # takes them), the picture it makes and the size it then encodes; an image is written
    # as it is.
    format_notes: list[str] = []
    out_fmt = output_pix_fmt(opts.codec, None, layout, format_notes)
    out_w, out_h, _ = picture_geometry(
        v.width,
        v.height,
        Fraction(1) if info.is_image else v.sar,
        up.scale,
        opts.picture or SinkOptions("-"),
        out_fmt,
        opts.codec,
        format_notes,
    )
    enc_w, enc_h = (out_w, out_h) if info.is_image else encoded_size(out_w, out_h, out_fmt, opts.codec)
    dar = Fraction(v.width * v.sar.numerator, v.height * v.sar.denominator)
    # An image has one frame and no timing (FFmpeg's image demuxers say "25 fps").
    frames, duration = (1, None) if info.is_image else (v.frames or None, v.duration)
    count = None
    if opts.count:
        from ..media.probe import count_frames

        count = count_frames(SourceOptions(opts.url))
        frames, duration = count.frames, count.duration
    local = not (info.is_image or opts.url == "-" or "://" in opts.url)
    rec: dict[str, Any] = {
        "input": info.url,
        "format": info.format_name,
        "image": info.is_image,
        "video": {
            "codec": v.codec,
            "width": v.width,
            "height": v.height,
            "pix_fmt": v.pix_fmt,
            "bit_depth": v.bit_depth,
            "rate": str(v.rate) if v.rate and not info.is_image else None,
            "frames": frames,
            "duration": duration,
            **(
                {
                    "counted": True,
                    "header_frames": v.frames or None,
                    "header_duration": v.duration,
                    "decode_errors": count.decode_errors,
                }
                if count
                else {}
            ),
            "rotation": v.rotation,
            "time_base": str(v.time_base),
            "sar": str(v.sar),
            "dar": str(dar),
            "chroma": layout.chroma if layout else None,
            "color": {
                "range": v.color_range,
                "primaries": v.color_primaries,
                "transfer": v.color_trc,
                "matrix": v.colorspace,
            },
            "hdr10": v.hdr10.describe() if v.hdr10 else None,
            "dolby_vision": v.dolby_vision,
            "keyframe_interval": None,
        },
        "streams": streams,
        "model": {
            "path": str(up.path),
            "scale": up.scale,
            "input": [None, 1, *(up.fixed or ("H", "W"))],
            "provider": up.provider,
            "description": describe(up),
        },
        "output_size": [enc_w, enc_h],  # as encoded (padded to even where the chroma needs it)
        "upscaled_size": [out_w, out_h],  # the picture: the model's, or --width/--height's
        "output": {
            "codec": None if info.is_image else opts.codec,
            "pix_fmt": None if info.is_image else out_fmt,
            "notes": [] if info.is_image else format_notes,
        },
    }
    # One scan of the packets serves both: --keyframes' cut summary and the interval.
    cuts = keyframe_summary(opts.url) if opts.keyframes else None
    if cuts is not None:
        rec["keyframes"] = cuts
    if local:
        rec["video"]["keyframe_interval"] = keyframe_interval(opts.url, cuts)
    return rec


def text(rec: dict[str, Any]) -> list[str]:
    """The lines `vsr info` prints, from `report`'s record alone."""
    from .progress import plural

    v, out = rec["video"], rec["output"]
    lines = [f"{rec['input']}: {rec['format']}"]
    rotation = f", rotation {v['rotation']}" if v["rotation"] else ""
    frames, duration = v["frames"], v["duration"]
    if rec["image"]:
        many = f", {plural(frames, 'frame')} (only the first is upscaled)" if frames and frames > 1 else ""
        lines.append(f"  image: {v['codec']} {v['width']}x{v['height']} {v['pix_fmt']}{many}{rotation}")
    else:
        rate = f"{float(Fraction(v['rate'])):.3f} fps" if v["rate"] else "unknown rate"
        dur = f"{duration:.2f}s" if duration else "unknown duration"
        counted = ""
        if v.get("counted"):
            said, said_duration = v["header_frames"], v["header_duration"]
            header = [plural(said, "frame")] if said and said != frames else []
            if said_duration and duration and abs(said_duration - duration) >= 0.0005:
                header.append(f"{said_duration:.3f}s")
            counted = " (counted" + (f"; the header says {', '.join(header)}" if header else "") + ")"
            if v["decode_errors"]:
                counted += f", {plural(v['decode_errors'], 'undecodable packet')}"
        frame_text = plural(frames, "frame") if frames is not None else "unknown frame count"
        lines.append(
            f"  video: {v['codec']} {v['width']}x{v['height']} {v['pix_fmt']}, {rate}, {dur}, "
            f"{frame_text}{counted}{rotation}"
        )
    sar, dar = Fraction(v["sar"]), Fraction(v["dar"])
    colour = v["color"]
    lines += [
        f"  pixels: {v['bit_depth']}-bit"
        + (f" {v['chroma']}" if v["chroma"] else "")
        + f", SAR {sar.numerator}:{sar.denominator}, DAR {dar.numerator}:{dar.denominator}"
        + (f", HDR10 {v['hdr10']}" if v["hdr10"] else "")
        + (", Dolby Vision" if v["dolby_vision"] else ""),
        (
            f"  colour: range {_name(COLOR_RANGES, colour['range'])}, primaries "
            f"{_name(COLOR_PRIMARIES, colour['primaries'])}, transfer "
            f"{_name(COLOR_TRANSFERS, colour['transfer'])}, matrix {_name(COLOR_MATRICES, colour['matrix'])}"
        ),
    ]
    gop = v["keyframe_interval"]
    if gop is not None:
        lines.append(f"  keyframes: every {gop['mean']:.2f}s on average, longest gap {gop['max']:.2f}s")
    for s in rec["streams"]:
        lang = f" [{s['language']}]" if s.get("language") else ""
        lines.append(f"  {s['type']} #{s['index']}: {s['codec']}{lang}")
    lines.append(f"  model: {rec['model']['description']}")
    (out_w, out_h), (enc_w, enc_h) = rec["upscaled_size"], rec["output_size"]
    padded = (
        f", encoded as {enc_w}x{enc_h} (the last row/column repeated: {out['pix_fmt']} needs even "
        f"sizes in {out['codec']}; VP9, AV1 or FFV1 output keeps the exact size)"
        if (enc_w, enc_h) != (out_w, out_h)
        else ""
    )
    encoder = f" ({out['codec']}, {out['pix_fmt']})" if out["codec"] else ""
    lines.append(f"  output: {out_w}x{out_h}{encoder}{padded}")
    lines += [f"  note: {note}" for note in out["notes"]]
    cuts = rec.get("keyframes")
    if cuts is not None:
        if cuts["problem"]:
            lines.append(f"  segments: cannot be split ({cuts['problem']})")
        else:
            lines.append(
                f"  segments: {plural(cuts['cuts'], 'clean keyframe cut')}, every "
                f"{cuts['mean_gap']:.2f}s on average, longest gap {cuts['max_gap']:.2f}s: "
                f"up to {cuts['cuts'] + 1} segments"
            )
        if cuts.get("refused_count"):
            first = cuts["refused"][0]
            lines.append(
                f"  not cut at: {plural(cuts['refused_count'], 'flagged keyframe')} "
                f"(first at {first['at']:.2f}s: {first['why']})"
            )
    return lines


def _name(names: dict[int, str], value: int) -> str:
    return names.get(value, str(value))


def keyframe_interval(url: str, summary: dict[str, Any] | None = None) -> dict[str, float] | None:
    """Mean and longest keyframe spacing in seconds (from packet headers: no decoding), or
    None when the file cannot be scanned; from `summary` (`keyframe_summary`'s) when given."""
    try:
        summary = summary if summary is not None else keyframe_summary(url)
    except VsrError:
        return None
    if not summary["mean_gap"]:
        return None
    return {"mean": summary["mean_gap"], "max": summary["max_gap"]}


def keyframe_summary(url: str) -> dict[str, Any]:
    """Where a file can be cut for `--segments` (vsr.scaleout.keyframes)."""
    from ..scaleout.keyframes import scan

    index = scan(url)
    starts = [*index.keyframes, index.end_pts]
    gaps = [float((b - a) * index.time_base) for a, b in itertools.pairwise(starts)]
    return {
        "cuts": len(index.keyframes) - 1,
        "problem": index.problem,
        "mean_gap": round(sum(gaps) / len(gaps), 3) if gaps else 0.0,
        "max_gap": round(max(gaps), 3) if gaps else 0.0,
        "seconds": round(index.seconds, 3),
        # Keyframes the container flags where a decoder cannot start (first 20).
        "refused": [{"at": round(index.at(pts), 3), "why": why} for pts, why in index.refused[:20]],
        "refused_count": len(index.refused),
    }
