"""What real footage carries besides its pixels survives `vsr upscale`: pixel aspect ratio,
bit depth, chroma layout, colour range and tags, HDR10 metadata. Each case is a generated
clip that has the property, run through the real CLI (PyAV/FFmpeg and onnxruntime)."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from helpers import run_process

from vsr.lab.media import gradient_clip
from vsr.media.picture_metadata import hdr10_of

HLG = {"color_primaries": 9, "color_trc": 18, "colorspace": 9, "color_range": 1}
MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"


def clip(
    path: Path,
    codec: str,
    pix_fmt: str,
    size: tuple[int, int] = (64, 48),
    n: int = 4,
    sar: Fraction | None = None,
    tags: dict[str, int] | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """A small clip: a smooth gradient (so 10-bit precision shows) with colour, `n` frames
    (`vsr.lab.media.gradient_clip`).

    libx265 runs in a child process: this PyAV build's x265 corrupted the heap now and then
    on frames this small ("corrupted size vs. prev_size"; 48x32 every time, 64x48 never in
    our runs), which would take the whole test run down with it."""
    if codec == "libx265":
        code = (
            "import json, os, sys; from pathlib import Path; from vsr.lab.media import gradient_clip; "
            "a = json.loads(sys.argv[1]); gradient_clip(Path(a['path']), a['codec'], a['pix_fmt'], "
            "tuple(a['size']), a['n'], None, a['tags'], a['options']); os._exit(0)"
        )
        args = {
            "path": str(path),
            "codec": codec,
            "pix_fmt": pix_fmt,
            "size": size,
            "n": n,
            "tags": tags,
            "options": options,
        }
        assert sar is None
        subprocess.run([sys.executable, "-c", code, json.dumps(args)], check=True, timeout=60)
        return path
    return gradient_clip(path, codec, pix_fmt, size, n, sar, tags, options)


def run(*args: object) -> subprocess.CompletedProcess[str]:
    """`vsr upscale ARGS --progress none --preset ultrafast -y` as a real process, which succeeds."""
    proc = run_process("upscale", *args, "--progress", "none", "--preset", "ultrafast", "-y")
    assert proc.returncode == 0, proc.stderr
    return proc


def probe(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        f = next(c.decode(video=0))
        return {
            "size": (f.width, f.height),
            "pix_fmt": f.format.name,
            "sar": s.sample_aspect_ratio,
            "dar": Fraction(f.width * (s.sample_aspect_ratio or 1), f.height),
            "range": int(f.color_range) or int(s.codec_context.color_range),
            "tags": (int(f.color_primaries), int(f.color_trc), int(f.colorspace)),
            "hdr10": hdr10_of(f),
            "codec": s.codec_context.name,
            "luma": np.frombuffer(
                memoryview(f.planes[0]), np.uint16 if f.format.name.endswith("le") else np.uint8
            ).copy(),
        }


@pytest.mark.slow
@pytest.mark.parametrize(("name", "codec"), [("sar.mp4", "libx264"), ("sar.mkv", "libvpx-vp9")])
def test_pixel_aspect_ratio_is_kept(tmp_path: Path, name: str, codec: str) -> None:
    """A 64/51 SAR clip (H.264 MP4, VP9 MKV) comes out with the same SAR and so the same
    display aspect, in MP4, MKV and in WebM (VP9, where only the container can say it)."""
    src = clip(tmp_path / name, codec, "yuv420p", size=(34, 26), sar=Fraction(64, 51))
    assert probe(src)["sar"] == Fraction(64, 51)
    for out_name in ("out.mp4", "out.mkv", "out.webm"):
        out = tmp_path / out_name
        run(src, out)
        got = probe(out)
        assert got["size"] == (102, 78)
        # (Matroska stores a whole display width: 102 x 64/51 = 128 is exact.)
        assert got["dar"] == probe(src)["dar"] == Fraction(34 * 64, 26 * 51), out_name


@pytest.mark.slow
def test_square_pixels_resamples_to_the_display_width(tmp_path: Path) -> None:
    """--square-pixels makes square pixels at the display aspect: 120 x 64/51 = 150.6 -> 150
    for libx264 (even, for 4:2:0), and the nearest width, 151, for VP9, which takes odd
    4:2:0 sizes."""
    src = clip(tmp_path / "sar.mp4", "libx264", "yuv420p", size=(40, 30), sar=Fraction(64, 51))
    for name, size in [("sq.mp4", (150, 90)), ("sq.webm", (151, 90))]:
        out = tmp_path / name
        run(src, out, "--square-pixels")
        got = probe(out)
        assert got["size"] == size, name
        assert not got["sar"] or got["sar"] == 1  # unset: None in PyAV 18, AVRational(0, 1) in 19


@pytest.mark.slow
def test_ten_bit_hlg_hevc_keeps_depth_tags_and_mastering_metadata(tmp_path: Path) -> None:
    """A 10-bit HEVC HLG MP4 with mastering display and light level metadata comes out 10-bit
    (x264 High 10 by default, x265 Main10 on request, AV1 in WebM) with BT.2020/HLG tags,
    limited range and the same HDR10 metadata; luma keeps its 10-bit precision (not rounded
    to 8 bits)."""
    src = clip(
        tmp_path / "hlg.mp4",
        "libx265",
        "yuv420p10le",
        tags=HLG,
        options={"x265-params": f"log-level=error:master-display={MASTER}:max-cll=1000,400"},
    )
    want = probe(src)["hdr10"]
    assert want is not None and want.max_cll == 1000
    for out_name, extra in (("out.mp4", ()), ("out265.mp4", ("--codec", "libx265"))):
        out = tmp_path / out_name
        run(src, out, *extra)
        got = probe(out)
        assert got["pix_fmt"] == "yuv420p10le", out_name
        assert got["tags"] == (9, 18, 9) and got["range"] == 1
        assert got["hdr10"] == want, (got["hdr10"], want)
        y = got["luma"]
        assert (y % 4 != 0).mean() > 0.5  # 10-bit codes, not 8-bit ones shifted
    run(src, tmp_path / "out.webm", "--preset", "12")  # AV1 (SVT-AV1) 10-bit, metadata OBUs
    got = probe(tmp_path / "out.webm")
    assert got["pix_fmt"] == "yuv420p10le" and got["tags"] == (9, 18, 9)
    assert got["hdr10"] is not None and got["hdr10"].max_cll == want.max_cll
    assert got["hdr10"].luminance == want.luminance  # (AV1 stores chromaticity in other units)


@pytest.mark.slow
def test_eight_bit_pix_fmt_on_hdr_input_warns_about_banding(tmp_path: Path) -> None:
    """Asking for 8-bit output of an HLG clip works, and says it will band."""
    src = clip(
        tmp_path / "hlg.mp4", "libx265", "yuv420p10le", tags=HLG, options={"x265-params": "log-level=error"}
    )
    proc = run(src, tmp_path / "out.mp4", "--pix-fmt", "yuv420p")
    assert "banding" in proc.stderr
    assert probe(tmp_path / "out.mp4")["pix_fmt"] == "yuv420p"


@pytest.mark.slow
def test_ten_bit_422_stays_ten_bit_422_and_webm_switches_to_a_ten_bit_codec(tmp_path: Path) -> None:
    """10-bit 4:2:2 H.264 stays yuv422p10le in MKV; 10-bit into WebM (whose VP9 encoder here
    is 8-bit only) becomes 10-bit AV1 rather than 8-bit."""
    src = clip(tmp_path / "422.mkv", "libx264", "yuv422p10le", tags={"color_range": 1})
    run(src, tmp_path / "out.mkv")
    assert probe(tmp_path / "out.mkv")["pix_fmt"] == "yuv422p10le"
    run(src, tmp_path / "out.webm", "--preset", "12")
    got = probe(tmp_path / "out.webm")
    assert got["pix_fmt"] == "yuv420p10le" and got["codec"] in ("libdav1d", "av1")


@pytest.mark.slow
def test_tv_range_hevc_mp4_keeps_its_range(tmp_path: Path) -> None:
    """An HEVC MP4 tagged limited ("tv") range but no primaries/transfer/matrix keeps "tv"
    in MP4 with x264 and x265, and in MKV."""
    src = clip(
        tmp_path / "tv.mp4",
        "libx265",
        "yuv420p",
        tags={"color_range": 1},
        options={"x265-params": "log-level=error"},
    )
    assert probe(src)["range"] == 1
    for out_name, extra in (("a.mp4", ()), ("b.mp4", ("--codec", "libx265")), ("c.mkv", ())):
        run(src, tmp_path / out_name, *extra)
        assert probe(tmp_path / out_name)["range"] == 1, out_name


def test_semi_planar_p010_splits_like_its_planar_twin() -> None:
    """A P010 frame (10 bits in the top of 16) gives the native path the same planes as the
    same picture in yuv420p10le."""
    from vsr.media.color import split_frame

    rgb = (np.random.default_rng(0).random((16, 20, 3)) * 65535).astype(np.uint16)
    planar = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(format="yuv420p10le")
    semi = planar.reformat(format="p010le")
    ya, ca = split_frame(planar, native=True)
    yb, cb = split_frame(semi, native=True)
    assert ya.dtype == np.uint16 and np.array_equal(ya, yb) and np.array_equal(ca, cb)


@pytest.mark.slow
def test_ten_bit_luma_matches_the_eight_bit_result_at_higher_precision(tmp_path: Path) -> None:
    """Losslessly encoded, the 10-bit output's luma is the 8-bit output's within rounding
    (the same model on the same picture), only finer: chroma and luma stay aligned."""
    src = clip(tmp_path / "in10.mkv", "ffv1", "yuv420p10le", tags={"color_range": 1})
    run(src, tmp_path / "o10.mkv", "--codec", "ffv1")
    run(src, tmp_path / "o8.mkv", "--codec", "ffv1", "--pix-fmt", "yuv420p")
    with av.open(str(tmp_path / "o10.mkv")) as a, av.open(str(tmp_path / "o8.mkv")) as b:
        pairs = list(zip(a.decode(video=0), b.decode(video=0), strict=True))
        assert len(pairs) == 4  # every frame of the clip compared, none skipped
        for fa, fb in pairs:
            assert fa.format.name == "yuv420p10le" and fb.format.name == "yuv420p"
            for i in range(3):
                pa = np.frombuffer(memoryview(fa.planes[i]), np.uint16).reshape(fa.planes[i].height, -1)
                pb = np.frombuffer(memoryview(fb.planes[i]), np.uint8).reshape(fb.planes[i].height, -1)
                w = fb.planes[i].width
                diff = np.abs(pa[:, :w].astype(float) / 4 - pb[:, :w])
                assert diff.max() <= 2.0 and diff.mean() < 0.6, (i, diff.max(), diff.mean())


@pytest.mark.slow
def test_twelve_bit_input_switches_to_an_encoder_that_keeps_twelve_bits(tmp_path: Path) -> None:
    """x264 has no 12-bit: 12-bit input into MP4 is encoded by x265 Main12 by default."""
    src = clip(tmp_path / "in12.mkv", "ffv1", "yuv420p12le", tags={"color_range": 1})
    run(src, tmp_path / "o12.mp4")
    got = probe(tmp_path / "o12.mp4")
    assert got["pix_fmt"] == "yuv420p12le" and got["codec"] == "hevc"


@pytest.mark.slow
def test_info_shows_aspect_depth_chroma_and_hdr(tmp_path: Path) -> None:
    """`vsr info` (text and --json) reports SAR, DAR, bit depth, chroma layout, colour tags,
    HDR10 and the keyframe interval."""
    import json as json_mod

    src = clip(
        tmp_path / "hlg.mp4",
        "libx265",
        "yuv420p10le",
        tags=HLG,
        options={"x265-params": f"log-level=error:master-display={MASTER}:max-cll=1000,400"},
    )
    sar = clip(tmp_path / "sar.mp4", "libx264", "yuv420p", sar=Fraction(64, 51))
    recs = []
    for path in (src, sar):
        proc = run_process("info", path, "--json", timeout=60)
        assert proc.returncode == 0, proc.stderr
        recs.append(json_mod.loads(proc.stdout)["video"])
    hdr, sq = recs
    assert hdr["bit_depth"] == 10 and hdr["chroma"] == "4:2:0"
    assert hdr["color"] == {"range": 1, "primaries": 9, "transfer": 18, "matrix": 9}
    assert "1000" in hdr["hdr10"] and "MaxCLL 1000" in hdr["hdr10"]
    assert sq["sar"] == "64/51" and sq["dar"] == str(Fraction(64 * 64, 48 * 51))
    assert hdr["keyframe_interval"]["max"] > 0
    text = run_process("info", src, timeout=60).stdout
    assert "10-bit 4:2:0" in text and "HDR10 mastering 1000/0.005 cd/m2" in text
    assert (
        "colour: range tv (limited), primaries bt2020, transfer arib-std-b67 (HLG), matrix bt2020nc" in text
    )
    assert "keyframes: every" in text


@pytest.mark.slow
def test_streams_no_output_carries_are_named_once_and_timecode_survives(tmp_path: Path) -> None:
    """A second video stream cannot be carried: one warning names it. A MOV timecode track is
    not dropped: its tag travels with the video and the output gets its timecode track back."""
    two = tmp_path / "two.mkv"
    with av.open(str(two), "w") as out:
        streams = [out.add_stream("libx264", rate=25) for _ in range(2)]
        for s in streams:
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            for s in streams:
                f = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
                f.pts = i
                out.mux(s.encode(f))
        for s in streams:
            out.mux(s.encode(None))
    proc = run(two, tmp_path / "two_out.mkv")
    assert proc.stderr.count("dropped 1 stream(s)") == 1 and "#1 video" in proc.stderr

    tc = tmp_path / "tc.mov"
    with av.open(str(tc), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.metadata["timecode"] = "01:00:00:00"
        for i in range(3):
            f = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    proc = run(tc, tmp_path / "tc_out.mov")
    assert "dropped" not in proc.stderr
    with av.open(str(tmp_path / "tc_out.mov")) as c:
        assert [s.type for s in c.streams] == ["video", "data"]
        assert c.streams.video[0].metadata["timecode"] == "01:00:00:00"


BT709_TV = {"color_primaries": 1, "color_trc": 1, "colorspace": 1, "color_range": 1}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("src_name", "codec"),
    [
        ("h264.mp4", "libx264"),
        ("hevc.mp4", "libx265"),
        ("vp9.mkv", "libvpx-vp9"),
        ("h264.ts", "libx264"),
        ("mpeg4.avi", "mpeg4"),
    ],
)
def test_colour_range_and_tags_survive_every_codec_and_container(
    tmp_path: Path, src_name: str, codec: str
) -> None:
    """BT.709 tags and limited range come out as they went in, from each input codec and
    container into MP4, MKV and WebM (where the input said them; AVI cannot)."""
    src = clip(tmp_path / src_name, codec, "yuv420p", tags=BT709_TV)
    want = probe(src)
    for out_name in ("out.mp4", "out.mkv", "out.webm"):
        run(src, tmp_path / out_name)
        got = probe(tmp_path / out_name)
        # An untagged input (AVI's MPEG-4 cannot say its range) is decoded as limited range
        # and said to be so.
        assert got["range"] == (want["range"] or 1) == 1, out_name
        assert got["tags"] == want["tags"], (out_name, got["tags"], want["tags"])


def test_dolby_vision_is_dropped_with_one_warning_that_names_it(tmp_path: Path) -> None:
    """An input whose frames carry Dolby Vision metadata opens an output that says, once,
    that the Dolby Vision metadata is dropped (it cannot stay valid after scaling)."""
    import dataclasses

    from vsr.media import output_container
    from vsr.media.input import open_input
    from vsr.options import SinkOptions, SourceOptions

    src = clip(tmp_path / "in.mp4", "libx264", "yuv420p")
    opened = open_input(SourceOptions(str(src)))
    try:
        info = dataclasses.replace(
            opened.info, video=dataclasses.replace(opened.info.video, dolby_vision=True)
        )
        out = output_container.open_output(SinkOptions(str(tmp_path / "o.mp4")), info, 3)
        output_container.discard(out)
    finally:
        opened.container.close()
    assert sum("Dolby Vision" in n for n in out.notes) == 1


def test_dolby_vision_is_recognised_by_its_rpus_or_codec_tag() -> None:
    """Frames with DOVI side data, or a stream tagged dvh1/dvhe/dav1, count as Dolby Vision."""
    from types import SimpleNamespace

    from vsr.media.picture_metadata import has_dolby_vision

    rpu = SimpleNamespace(side_data=[SimpleNamespace(type="Type.DOVI_RPU_BUFFER")])
    plain = SimpleNamespace(side_data=[])
    assert has_dolby_vision(rpu, SimpleNamespace(codec_tag="hvc1"))
    assert has_dolby_vision(plain, SimpleNamespace(codec_tag="dvh1"))
    assert not has_dolby_vision(plain, SimpleNamespace(codec_tag="hvc1"))


def test_output_format_follows_the_input_layout_and_says_what_changed() -> None:
    """The output keeps depth and chroma layout where the encoder takes them; otherwise it
    steps down (depth first kept, then 4:2:0) and each step is a note."""
    from vsr.media.pixfmt import choose_output, layout_of

    x264 = [f.name for f in av.Codec("libx264", "w").video_formats or []]
    assert choose_output("libx264", x264, layout_of("yuv422p10le")).pix_fmt == "yuv422p10le"
    twelve = choose_output("libx264", x264, layout_of("yuv444p12le"))
    assert twelve.pix_fmt == "yuv444p10le" and "12-bit" in twelve.notes[0]
    mpeg4 = choose_output("mpeg4", ["yuv420p"], layout_of("yuv422p"))
    assert mpeg4.pix_fmt == "yuv420p" and "4:2:2" in mpeg4.notes[0]
    assert choose_output("libx264", x264, layout_of("yuv420p")).pix_fmt == "yuv420p"
    assert choose_output("libx264", x264, None).pix_fmt == "yuv420p"
