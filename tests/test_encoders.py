"""Every software encoder of the build works with no extra flags, with its own meaning of
--crf and --preset (vsr/media/encoders.py); a hardware encoder without its hardware is one line."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import pytest
from helpers import run_process, time_of

from vsr.lab.media import synth_video
from vsr.media.encoders import FAMILIES, GENERIC, family_of, hardware_of, mapping, preferred_pix_fmt
from vsr.media.pixfmt import ODD_SIZE_ENCODERS

#: encoder -> output extension (a container that holds it)
SOFTWARE = {
    "libx264": ".mp4",
    "libx265": ".mp4",
    "libsvtav1": ".mkv",
    "libvpx-vp9": ".webm",
    "libvpx": ".webm",
    "mpeg4": ".mp4",
    "mpeg2video": ".mpg",
    "mpeg1video": ".mpg",
    "ffv1": ".mkv",
    "prores_ks": ".mov",
    "dnxhd": ".mov",
    "mjpeg": ".mkv",
    "rawvideo": ".mkv",
    "huffyuv": ".avi",
    "utvideo": ".avi",
}


def run(*args: object, expect: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    """`vsr upscale ARGS --progress none -y` as a real process, whose exit status must be
    one of `expect` (its stderr shown otherwise)."""
    proc = run_process("upscale", *args, "--progress", "none", "-y")
    assert proc.returncode in expect, (proc.returncode, proc.stderr)
    return proc


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 96x48 -> 288x144: wide enough for DNxHR (256), small enough to be quick.
    return synth_video(
        tmp_path_factory.mktemp("enc") / "in.mp4", n=6, size=(96, 48), audio=None, bframes=False
    )


@pytest.mark.slow
@pytest.mark.parametrize("codec", sorted(c for c in SOFTWARE if c in av.codecs_available))
def test_every_software_encoder_works_with_no_extra_flags(codec: str, clip: Path, tmp_path: Path) -> None:
    """Each encoder, given only --codec, writes every frame at 3x with the input's timing,
    and prints nothing but vsr's own summary line (no encoder banner)."""
    out = tmp_path / f"out{SOFTWARE[codec]}"
    proc = run(clip, out, "--codec", codec)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert all(line.startswith("vsr: ") for line in lines), proc.stderr
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 6 and (frames[0].width, frames[0].height) == (288, 144)
    times = [float(time_of(f)) for f in frames if f.pts is not None]
    # (MPEG program streams start their clock at about 0.5 s: compare from the first frame.)
    assert [t - times[0] for t in times] == pytest.approx([i / 25 for i in range(6)], abs=0.021), codec


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["libx265", "libsvtav1", "prores_ks", "ffv1"])
def test_ten_bit_input_stays_ten_bit_with_each_deep_encoder(codec: str, tmp_path: Path) -> None:
    """The encoders that take 10-bit get the input's 10 bits (their mapping does not force 8)."""
    src = synth_video(
        tmp_path / "in10.mkv", n=3, size=(96, 48), codec="ffv1", pix_fmt="yuv420p10le", audio=None
    )
    out = tmp_path / f"out{SOFTWARE[codec]}"
    run(src, out, "--codec", codec)
    with av.open(str(out)) as c:
        fmt = next(c.decode(video=0)).format.name
    assert "10" in fmt, fmt


@pytest.mark.parametrize("codec", ["h264_nvenc", "hevc_qsv", "av1_amf"])
def test_hardware_encoder_without_its_hardware_is_one_line_exit_2(
    codec: str, clip: Path, tmp_path: Path
) -> None:
    """No GPU here: the hardware encoder is refused in one line that says what it needs."""
    if codec not in av.codecs_available:
        pytest.skip(f"{codec} not in this FFmpeg build")
    proc = run(clip, tmp_path / "o.mp4", "--codec", codec, expect=(0, 2))
    if proc.returncode == 0:
        pytest.skip(f"{codec} has its hardware here")
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"vsr: cannot use the hardware encoder '{codec}': it needs")
    assert len(lines) <= 2 and not list(tmp_path.glob("*.partial*"))


def test_crf_and_preset_mean_the_same_to_every_family() -> None:
    """x264's scale and names are mapped onto each encoder's own: SVT-AV1's numeric presets
    and 0..63 CRF, libvpx's cpu-used and b:v 0, NVENC's p1..p7 and cq, MPEG's quantiser."""
    svt = mapping("libsvtav1", set(), 18, "medium", False, None)
    assert svt.options["preset"] == "7" and svt.options["crf"] == "30"
    assert mapping("libsvtav1", set(), 23, "4", False, None).options["preset"] == "4"
    vp9 = mapping("libvpx-vp9", set(), 18, "medium", False, None)
    assert vp9.bit_rate == 0 and vp9.options["crf"] == "31" and vp9.options["row-mt"] == "1"
    nv = mapping("h264_nvenc", {"cq"}, 18, "slow", False, None)
    assert nv.options == {"preset": "p5", "cq": "19"} and nv.bit_rate == 0
    assert mapping("hevc_qsv", set(), 18, None, False, None).options == {"global_quality": "20"}
    m2 = mapping("mpeg2video", set(), 18, "medium", False, Fraction(30000, 1001))
    assert m2.time_base == Fraction(1001, 30000) and not m2.note and m2.qrange == (3, 3)
    assert "standard frame rates" in mapping("mpeg2video", set(), 18, None, False, Fraction(12)).note
    assert mapping("libx264", set(), 18, "medium", True, None).options == {
        "crf": "18",
        "preset": "medium",
        "tune": "zerolatency",
    }


def test_each_encoder_reads_its_own_family_record() -> None:
    """Every encoder name belongs to the one family that documents it; hardware families say
    what they need; unknown encoders get the generic record, which passes a CRF or preset
    only to an encoder that has an option of that name."""
    assert family_of("libvpx-vp9") is family_of("libvpx") and family_of("msmpeg4v2").name == "mpeg4"
    assert family_of("h264_nvenc") is family_of("av1_nvenc") and family_of("ffv1") is GENERIC
    assert hardware_of("hevc_vaapi") == "a VA-API device (/dev/dri/renderD128)"
    assert hardware_of("libx264") is None and hardware_of("ffv1") is None
    names = [f.name for f in FAMILIES]
    assert len(set(names)) == len(names)
    assert mapping("ffv1", set(), 18, "medium", False, None).options == {}
    assert mapping("someenc", {"crf", "preset"}, 18, "slow", False, None).options == {
        "crf": "18",
        "preset": "slow",
    }


def test_quantiser_intermediate_and_hardware_families_keep_their_meaning() -> None:
    """MPEG-4's constant quantiser, MJPEG's full range, DNxHR at any size, ProRes' lighter
    profile for fast presets, AMF's constant QP pair and VA-API's QP; libvpx's default speed."""
    assert mapping("mpeg4", set(), 23, None, False, None).qrange == (5, 5)
    mj = mapping("mjpeg", set(), 18, "medium", False, None)
    assert mj.options == {"qscale": "2"} and mj.qrange == (1, 3)
    assert preferred_pix_fmt("mjpeg", "yuv422p") == "yuvj422p"
    assert preferred_pix_fmt("libx264", "yuv422p") == "yuv422p"
    assert mapping("dnxhd", set(), 18, "fast", False, None).options == {"profile": "dnxhr_hq"}
    assert mapping("prores_ks", set(), 18, "fast", False, None).options == {"profile": "standard"}
    assert mapping("prores_ks", set(), 18, "slow", False, None).options == {}
    assert mapping("hevc_amf", set(), 18, "slow", False, None).options == {
        "rc": "cqp",
        "qp_i": "18",
        "qp_p": "20",
    }
    assert mapping("h264_vaapi", set(), 18, None, False, None).options == {"qp": "20"}
    assert mapping("h264_nvenc", set(), 18, None, False, None).bit_rate is None  # no cq option
    vp8 = mapping("libvpx", set(), None, None, True, None)
    assert vp8.options == {"row-mt": "1", "deadline": "realtime", "cpu-used": "4"}
    assert vp8.bit_rate is None
    assert mapping("libx265", set(), 18, None, False, None, verbose=True).options == {
        "crf": "18",
        "x265-params": "log-level=info",
    }


@pytest.fixture(scope="module")
def odd_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 11x9 -> 33x27 at x3: odd both ways, with 4:2:0 chroma.
    return synth_video(
        tmp_path_factory.mktemp("odd") / "odd.mkv",
        n=3,
        size=(11, 9),
        codec="ffv1",
        pix_fmt="yuv420p",
        audio=None,
    )


@pytest.mark.slow
@pytest.mark.parametrize("codec", sorted(c for c in ODD_SIZE_ENCODERS if c in av.codecs_available))
def test_encoders_that_take_odd_sizes_get_exactly_scale_times_the_input(
    codec: str, odd_clip: Path, tmp_path: Path
) -> None:
    """The encoders vsr trusts with odd sizes (pixfmt.ODD_SIZE_ENCODERS) write 33x27 as it is,
    in the subsampled format vsr picks for them, with no padding note."""
    out = tmp_path / f"o{SOFTWARE[codec]}"
    r = run(odd_clip, out, "--codec", codec)
    assert "padding" not in r.stderr
    with av.open(str(out)) as c:
        sizes = {(f.width, f.height, f.format.name) for f in c.decode(video=0)}
    assert {(w, h) for w, h, _ in sizes} == {(33, 27)}
    (fmt,) = {f for _, _, f in sizes}
    assert av.VideoFormat(fmt).chroma_width(34) == 17, fmt  # subsampled chroma, as the input


def test_libx264_pads_an_odd_size_and_says_so(odd_clip: Path, tmp_path: Path) -> None:
    """libx264 cannot take odd 4:2:0 sizes: 33x27 gets one repeated row and column (34x28),
    and the note says so."""
    out = tmp_path / "o.mp4"
    r = run(odd_clip, out, "--preset", "ultrafast")
    assert "padding to 34x28" in r.stderr
    with av.open(str(out)) as c:
        assert {(f.width, f.height) for f in c.decode(video=0)} == {(34, 28)}
