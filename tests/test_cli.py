"""The `vsr` command line end to end: real media through PyAV, the bundled ONNX models through
onnxruntime, exit statuses, the one-line error contract and the no-leftover-output guarantee."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from helpers import (
    ROOT,
    assert_user_error,
    listing,
    make_png,
    onnx_model,
    read_image,
    run_cli,
    run_on_terminal,
    run_process,
    video_stats,
)

from vsr.app.arguments import build_parser
from vsr.lab.media import pattern, synth_video, write_audio_only
from vsr.media.color import split_planes

# On the CPU even where a GPU is present: these tests read the CPU's provider, precision and
# pixels in the summary (the CUDA tests are in test_model.py, marked gpu).
FAST = ["--preset", "ultrafast", "--device", "cpu"]


# --------------------------------------------------------------------------- helpers


def frame_size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        return frame.width, frame.height


def make_audio_only(path: Path) -> Path:
    """One second of AAC sine in an .m4a: a real media file without any video stream."""
    return write_audio_only(path)


def make_rgb_onnx(path: Path) -> Path:
    """A valid ONNX graph of the wrong kind: [N,3,H,W] -> Identity -> [N,3,H,W]."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, "H", "W"])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "rgb_identity", [x], [y])
    model = onnx_model(graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# --------------------------------------------------------------------------- success


def test_upscale_and_live_parse_their_shared_options_alike() -> None:
    """Model, encoding and input options are declared once for both commands: the same
    arguments give the same values, and only the encoder defaults differ (live is tuned for
    speed)."""
    shared = [
        "--model",
        "espcn_x2",
        "--scale",
        "2",
        "--device",
        "cpu",
        "--batch",
        "auto",
        "--threads",
        "1",
        "--precision",
        "fp16",
        "--codec",
        "libx265",
        "--crf",
        "20",
        "--preset",
        "fast",
        "--pix-fmt",
        "yuv420p",
        "--format",
        "matroska",
        "--codec-option",
        "a=b",
        "--container-option",
        "c=d",
        "--no-audio",
        "--color",
        "ycrcb",
        "--input-format",
        "mpegts",
        "--input-option",
        "e=f",
        "--max-pixels",
        "100",
        "--on-error",
        "stop",
        "--quality",
        "balanced",
        "--square-pixels",
    ]
    parser = build_parser()
    up = vars(parser.parse_args(["upscale", "in.mp4", "out.mp4", *shared]))
    live = vars(parser.parse_args(["live", "in.mp4", "out.mp4", *shared]))
    both = (set(up) & set(live)) - {"command"}
    assert len(both) > 20
    assert {k: up[k] for k in both} == {k: live[k] for k in both}
    assert {"on_error", "quality", "square_pixels"} <= both
    up_defaults = vars(parser.parse_args(["upscale", "in.mp4"]))
    live_defaults = vars(parser.parse_args(["live", "in.mp4"]))
    differ = {k for k in both if up_defaults[k] != live_defaults[k]}
    assert differ == {"crf", "preset"}


def test_upscale_writes_the_output_and_one_summary_line(sample_video: Path, out_dir: Path) -> None:
    """A successful upscale exits 0, writes a 3x video under the final name only, and says so in one line."""
    out = out_dir / "out.mp4"
    status, err = run_cli("upscale", sample_video, out, *FAST)
    assert status == 0, err
    assert listing(out_dir) == ["out.mp4"]
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("vsr: 12 frames 64x48 -> 192x144"), err
    assert lines[0].endswith(f"-> {out}"), err
    stats = video_stats(out)
    assert len(stats["times"]) == 12
    assert stats["sizes"] == {(192, 144)}
    assert stats["audio_streams"] == 1


def test_python_dash_m_vsr_runs_as_a_real_process(sample_video: Path, out_dir: Path) -> None:
    """`python -m vsr upscale` in a real process exits 0, keeps stdout empty and prints one summary line."""
    out = out_dir / "out.mkv"
    proc = run_process("upscale", sample_video, out, *FAST)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("vsr: 12 frames"), proc.stderr
    assert listing(out_dir) == ["out.mkv"]
    assert video_stats(out)["sizes"] == {(192, 144)}


@pytest.mark.slow
def test_quiet_on_a_terminal_draws_no_progress_bar(sample_video: Path, out_dir: Path) -> None:
    """On a terminal `--quiet` writes nothing at all, for one file and for --output-dir (no
    bar, no summary), while without it the bar is drawn there."""
    status, shown = run_on_terminal("upscale", sample_video, out_dir / "a.mp4", *FAST)
    assert status == 0 and b"frame/s" in shown, shown
    status, quiet = run_on_terminal("upscale", sample_video, out_dir / "b.mp4", *FAST, "--quiet")
    assert (status, quiet) == (0, b"")
    status, quiet = run_on_terminal("upscale", sample_video, "--output-dir", out_dir / "many", *FAST, "-q")
    assert (status, quiet) == (0, b"")
    assert listing(out_dir) == ["a.mp4", "b.mp4", "many"] and listing(out_dir / "many") == ["in_x3.mp4"]


def test_progress_json_is_json_lines_ending_with_done(sample_video: Path, out_dir: Path) -> None:
    """`--progress json` writes only JSON lines to stderr, the last one a "done" record with the totals."""
    out = out_dir / "out.mp4"
    status, err = run_cli("upscale", sample_video, out, *FAST, "--progress", "json")
    assert status == 0, err
    records = [json.loads(line) for line in err.splitlines()]
    assert records, err
    done = records[-1]
    assert done["event"] == "done"
    assert all(r["event"] == "progress" for r in records[:-1])
    assert done["frames"] == 12
    assert done["input"] == [64, 48]
    assert done["output_size"] == [192, 144]
    assert done["scale"] == 3
    assert done["output"] == str(out)
    assert done["decode_errors"] == 0
    assert set(done["stages"]) == {"decode", "color", "model", "encode", "wait_in", "wait_out"}
    for r in records[:-1]:
        assert {"frames", "total", "fps", "elapsed", "eta"} <= set(r)
    # the last progress line is where the run ended, however its end fell against the
    # half-second throttle (it once did not: a 0.4 s run's last line said 2 of 13)
    assert (records[-2]["frames"], records[-2]["total"]) == (12, 12), records[-2]
    assert out.exists()
    # --engine auto: what this CPU runs fastest exactly enough (bf16 only on OpenVINO)
    assert (done["engine"], done["precision"]) in {
        ("onnxruntime", "fp32"),
        ("openvino", "fp32"),
        ("openvino", "bf16"),
    }


def test_precision_fp16_runs_the_bound_engine_on_the_cpu_too(sample_video: Path, out_dir: Path) -> None:
    """`--precision fp16` (the GPU default) works anywhere, gives the same frames as float32
    within a grey level or so after encoding, and the summary line says fp16."""
    pytest.importorskip("onnx")
    a, b = out_dir / "fp32.mkv", out_dir / "fp16.mkv"
    status, err = run_cli("upscale", sample_video, a, *FAST, "--codec", "ffv1", "--precision", "fp32")
    assert status == 0, err
    status, err = run_cli("upscale", sample_video, b, *FAST, "--codec", "ffv1", "--precision", "fp16")
    assert status == 0, err
    assert "CPUExecutionProvider fp16)" in err, err
    fa = [f.to_ndarray(format="gray") for f in av.open(str(a)).decode(video=0)]
    fb = [f.to_ndarray(format="gray") for f in av.open(str(b)).decode(video=0)]
    assert len(fa) == len(fb) == 12
    for x, y in zip(fa, fb, strict=True):
        assert abs(x.astype(int) - y).max() <= 2


@pytest.mark.slow
def test_int8_model_is_called_int8_in_the_summary_the_record_and_models(
    sample_video: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the int8 model, the summary line, the JSON done record and `vsr models` (text and
    JSON) say int8, not fp32."""
    pytest.importorskip("onnx")
    status, err = run_cli(
        "upscale", sample_video, out_dir / "a.mkv", *FAST, "--codec", "ffv1", "--model", "espcn_x3_int8"
    )
    assert status == 0, err
    assert " int8)" in err, err  # on onnxruntime or OpenVINO, as --engine auto chose
    status, err = run_cli(
        "upscale",
        sample_video,
        out_dir / "b.mkv",
        *FAST,
        "--codec",
        "ffv1",
        "--model",
        "espcn_x3_int8",
        "--progress",
        "json",
    )
    assert status == 0, err
    assert json.loads(err.splitlines()[-1])["precision"] == "int8"
    capsys.readouterr()
    assert run_cli("models", "--no-timing")[0] == 0  # timing: test_models_json_gives_names_and_scales
    rows = {line[2:].split()[0]: line[2:].split()[5] for line in capsys.readouterr().out.splitlines()[1:-1]}
    assert rows["espcn_x3_int8"] == "int8" and rows["espcn_x3"] == "fp32"
    assert run_cli("models", "--json", "--no-timing")[0] == 0
    listed = {m["name"]: m["precision"] for m in json.loads(capsys.readouterr().out)}
    assert listed["espcn_x3_int8"] == "int8" and listed["espcn_x3"] == "fp32"


# --------------------------------------------------------------------------- bad input


def test_missing_input_file_is_a_usage_error(tmp_path: Path, out_dir: Path) -> None:
    """A missing input file exits 2 with one 'vsr:' line naming it, and writes nothing."""
    status, err = run_cli("upscale", tmp_path / "nope.mp4", out_dir / "out.mp4", *FAST)
    line = assert_user_error(status, err, mentions="no such file")
    assert "nope.mp4" in line
    assert listing(out_dir) == []


def test_zero_byte_input_is_a_usage_error(tmp_path: Path, out_dir: Path) -> None:
    """A zero-byte input file exits 2 with one 'vsr:' line and writes nothing."""
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    status, err = run_cli("upscale", empty, out_dir / "out.mp4", *FAST)
    assert_user_error(status, err, mentions="empty.mp4")
    assert listing(out_dir) == []


@pytest.mark.parametrize("name", ["notes.txt", "notes.mp4"])
def test_text_file_input_is_a_usage_error(tmp_path: Path, out_dir: Path, name: str) -> None:
    """A text file (whatever its extension) is not media: exit 2, one 'vsr:' line, nothing written."""
    text = tmp_path / name
    text.write_text("hello\nthis is a shopping list, not a video\n" * 20)
    status, err = run_cli("upscale", text, out_dir / "out.mp4", *FAST)
    assert_user_error(status, err, mentions=name)
    assert listing(out_dir) == []


def test_audio_only_input_says_it_has_no_video_stream(tmp_path: Path, out_dir: Path) -> None:
    """An audio-only file exits 2 with a message saying it has no video stream, and writes nothing."""
    audio = make_audio_only(tmp_path / "song.m4a")
    status, err = run_cli("upscale", audio, out_dir / "out.mp4", *FAST)
    line = assert_user_error(status, err, mentions="no video stream")
    assert "audio" in line
    assert listing(out_dir) == []


def _faststart_copy(src: Path, dst: Path) -> Path:
    """Remux `src` with the moov atom in front, so a truncated copy still has its index."""
    with av.open(str(src)) as i, av.open(str(dst), "w", options={"movflags": "+faststart"}) as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for packet in i.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            o.mux(packet)
    return dst


@pytest.mark.parametrize("suffix", [".mkv", ".ts", ".mp4"])
def test_truncated_video_gives_fewer_frames_or_a_clear_error(
    tmp_path: Path, out_dir: Path, suffix: str
) -> None:
    """A video cut at 60% either upscales the frames that survive or fails with one clear line; never a
    traceback or a leftover temp file."""
    full = synth_video(tmp_path / f"full{suffix}", n=30, bframes=False)
    if suffix == ".mp4":
        full = _faststart_copy(full, tmp_path / "faststart.mp4")
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out = out_dir / "out.mkv"
    status, err = run_cli("upscale", cut, out, *FAST)
    assert "Traceback" not in err, err
    if status == 0:
        assert listing(out_dir) == ["out.mkv"]
        stats = video_stats(out)
        assert 0 < len(stats["times"]) < 30
        assert stats["sizes"] == {(192, 144)}
    else:
        assert status in (1, 2), err
        assert [ln for ln in err.splitlines() if ln.startswith("vsr: ")], err
        assert listing(out_dir) == []


def test_truncated_mp4_without_its_index_is_a_usage_error(tmp_path: Path, out_dir: Path) -> None:
    """An mp4 cut before its trailing moov atom cannot be opened: exit 2, one line, nothing written."""
    full = synth_video(tmp_path / "full.mp4", n=30, bframes=False)
    data = full.read_bytes()
    assert data.find(b"moov") > len(data) // 2  # PyAV writes the index at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    status, err = run_cli("upscale", cut, out_dir / "out.mp4", *FAST)
    assert_user_error(status, err, mentions="cut.mp4")
    assert listing(out_dir) == []


# --------------------------------------------------------------------------- bad model


def test_missing_model_path_is_a_usage_error(sample_video: Path, tmp_path: Path, out_dir: Path) -> None:
    """`--model` naming a missing .onnx file exits 2 with one line and a hint, writing nothing."""
    status, err = run_cli(
        "upscale", sample_video, out_dir / "out.mp4", *FAST, "--model", tmp_path / "missing.onnx"
    )
    line = assert_user_error(status, err, mentions="missing.onnx")
    assert "no such file" in line
    assert "hint: " in err
    assert listing(out_dir) == []


def test_non_onnx_model_file_is_a_usage_error(sample_video: Path, tmp_path: Path, out_dir: Path) -> None:
    """A model file that is not ONNX exits 2 with one 'cannot load model' line, writing nothing."""
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf\x00\xff" * 10)
    status, err = run_cli("upscale", sample_video, out_dir / "out.mp4", *FAST, "--model", junk)
    assert_user_error(status, err, mentions="cannot load model")
    assert listing(out_dir) == []


def test_onnx_model_of_the_wrong_shape_is_a_usage_error(
    sample_video: Path, tmp_path: Path, out_dir: Path
) -> None:
    """A valid ONNX model taking [N,3,H,W] exits 2 with a message naming the expected [N,1,H,W]."""
    model = make_rgb_onnx(tmp_path / "rgb.onnx")
    status, err = run_cli("upscale", sample_video, out_dir / "out.mp4", *FAST, "--model", model)
    line = assert_user_error(status, err, mentions="not a super-resolution model")
    assert "[N,1,H,W]" in line
    assert listing(out_dir) == []


# --------------------------------------------------------------------------- bad output


def test_existing_output_is_kept_without_overwrite(sample_video: Path, out_dir: Path) -> None:
    """An existing output exits 2 without --overwrite and is left byte for byte as it was."""
    out = out_dir / "out.mp4"
    out.write_bytes(b"precious")
    status, err = run_cli("upscale", sample_video, out, *FAST)
    assert_user_error(status, err, mentions="already exists")
    assert "--overwrite" in err
    assert out.read_bytes() == b"precious"
    assert listing(out_dir) == ["out.mp4"]


def test_existing_output_is_replaced_with_overwrite(sample_video: Path, out_dir: Path) -> None:
    """With --overwrite an existing output is replaced by the new video, with no temp file left."""
    out = out_dir / "out.mp4"
    out.write_bytes(b"precious")
    status, err = run_cli("upscale", sample_video, out, *FAST, "--overwrite")
    assert status == 0, err
    assert listing(out_dir) == ["out.mp4"]
    assert video_stats(out)["sizes"] == {(192, 144)}


def test_missing_output_folder_is_a_usage_error(sample_video: Path, out_dir: Path) -> None:
    """An output in a folder that does not exist exits 2 naming the folder, and creates nothing."""
    status, err = run_cli("upscale", sample_video, out_dir / "nowhere" / "out.mp4", *FAST)
    assert_user_error(status, err, mentions="does not exist")
    assert listing(out_dir) == []


def test_unwritable_output_folder_is_a_usage_error(sample_video: Path, out_dir: Path) -> None:
    """An output in a read-only folder exits 2 with one line, and nothing appears there."""
    if os.geteuid() == 0:
        pytest.skip("root can write into read-only folders")
    os.chmod(out_dir, 0o500)
    try:
        status, err = run_cli("upscale", sample_video, out_dir / "out.mp4", *FAST)
        assert_user_error(status, err, mentions="out.mp4")
        assert listing(out_dir) == []
    finally:
        os.chmod(out_dir, 0o700)


def test_output_folder_that_nobody_can_write_is_a_usage_error(sample_video: Path) -> None:
    """An output in a folder no one may create files in (sysfs, even for root) exits 2 before any work,
    with one line."""
    folder = Path("/sys")
    if not folder.is_dir():
        pytest.skip("no /sys here")
    try:
        with open(folder / ".vsr-write-probe", "xb"):
            pass
    except OSError:
        pass
    else:
        (folder / ".vsr-write-probe").unlink()
        pytest.skip("/sys is writable here")
    status, err = run_cli("upscale", sample_video, folder / "out.mp4", *FAST)
    assert_user_error(status, err, mentions="out.mp4")
    assert not [n for n in os.listdir(folder) if n == "out.mp4" or n.startswith(".out.vsr-")]


def test_output_without_extension_says_how_to_pick_a_format(sample_video: Path, out_dir: Path) -> None:
    """An output name without extension exits 2 with one line about the container format and a hint
    naming --format."""
    status, err = run_cli("upscale", sample_video, out_dir / "noext", *FAST)
    assert_user_error(status, err, mentions="container format")
    assert err.splitlines()[-1].startswith("hint: ") and "--format" in err, err
    assert listing(out_dir) == []


def test_unknown_codec_is_a_usage_error(sample_video: Path, out_dir: Path) -> None:
    """An unknown --codec exits 2 naming the encoder, and leaves no temp file behind."""
    status, err = run_cli("upscale", sample_video, out_dir / "out.mp4", *FAST, "--codec", "nosuchcodec")
    assert_user_error(status, err, mentions="nosuchcodec")
    assert listing(out_dir) == []


def test_stdout_output_without_format_is_a_usage_error(sample_video: Path, capfd) -> None:
    """`-` as output without --format exits 2 with a hint to pass --format, writing nothing to stdout."""
    status, err = run_cli("upscale", sample_video, "-", *FAST)
    assert_user_error(status, err, mentions="standard output")
    assert "--format" in err
    assert capfd.readouterr().out == ""


def test_cuda_device_without_cuda_provider_is_a_usage_error(sample_video: Path, out_dir: Path) -> None:
    """`--device cuda` when onnxruntime has no CUDA provider exits 2 with a message about CUDA."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    status, err = run_cli("upscale", sample_video, out_dir / "out.mp4", *FAST, "--device", "cuda")
    assert_user_error(status, err, mentions="CUDA")
    assert listing(out_dir) == []


def test_debug_shows_a_traceback_for_a_user_error(tmp_path: Path, out_dir: Path) -> None:
    """With --debug a user error still exits 2 and ends with its 'vsr:' line, after the full traceback."""
    status, err = run_cli("upscale", tmp_path / "nope.mp4", out_dir / "out.mp4", "--debug")
    assert status == 2
    assert "Traceback (most recent call last)" in err
    assert "SourceError" in err
    assert err.splitlines()[-1].startswith("vsr: cannot open input")
    assert listing(out_dir) == []


def test_debug_traceback_in_a_real_process(tmp_path: Path) -> None:
    """`python -m vsr ... --debug` prints the traceback on stderr and still exits 2."""
    proc = run_process("upscale", tmp_path / "nope.mp4", tmp_path / "out.mp4", "--debug")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("vsr: ")


# --------------------------------------------------------------------------- info / models


def test_info_prints_streams_model_and_output_size(sample_video: Path, capsys) -> None:
    """`vsr info FILE` exits 0 and prints the video and audio streams, the model and the output size."""
    status, err = run_cli("info", sample_video)
    assert status == 0, err
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"{sample_video}: ")
    assert "video: h264 64x48 yuv420p" in out
    assert "12 frames" in out
    assert "audio #1: aac" in out
    assert "model: balanced_x3.onnx: x3, input [N,1,H,W]" in out
    assert "output: 192x144" in out


def test_info_json_is_valid_json_with_the_video_size(sample_video: Path, capsys) -> None:
    """`vsr info --json` prints one JSON document with the video's width and height and the model scale."""
    status, err = run_cli("info", "--json", sample_video)
    assert status == 0, err
    rec = json.loads(capsys.readouterr().out)
    assert rec["video"]["width"] == 64
    assert rec["video"]["height"] == 48
    assert rec["video"]["codec"] == "h264"
    assert rec["model"]["scale"] == 3
    assert rec["output_size"] == [192, 144]
    assert [s["type"] for s in rec["streams"]] == ["audio"]


@pytest.mark.slow
def test_info_says_the_encoded_size_of_an_odd_output(tmp_path: Path, capsys) -> None:
    """A 33x25 4:2:0 VP9 clip becomes 99x75 at x3, which 4:2:0 cannot hold: `vsr info` says it
    is encoded as 100x76 (text and JSON `output_size`), the size `vsr upscale` then writes."""
    src = tmp_path / "odd.webm"
    with av.open(str(src), "w") as o:
        s = o.add_stream("libvpx-vp9", rate=25)
        s.width, s.height, s.pix_fmt = 33, 25, "yuv420p"
        for i in range(3):
            f = av.VideoFrame.from_ndarray(pattern(i, 33, 25), format="bgr24").reformat(format="yuv420p")
            o.mux(s.encode(f))
        o.mux(s.encode(None))
    assert run_cli("info", src)[0] == 0
    assert "output: 99x75 (libx264, yuv420p), encoded as 100x76" in capsys.readouterr().out
    assert run_cli("info", "--json", src)[0] == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["output_size"] == [100, 76] and rec["upscaled_size"] == [99, 75]
    # --codec predicts another encoder's output: VP9 keeps the odd size, MJPEG writes yuvj
    assert run_cli("info", "--codec", "libvpx-vp9", src)[0] == 0
    assert "output: 99x75 (libvpx-vp9, yuv420p)\n" in capsys.readouterr().out
    assert run_cli("info", "--json", "--codec", "mjpeg", "--scale", "2", "--quality", "fast", src)[0] == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["output"] == {"codec": "mjpeg", "pix_fmt": "yuvj420p", "notes": []}
    assert rec["output_size"] == [66, 50] and rec["model"]["path"].endswith("fast_x2.onnx")
    status, err = run_cli("info", "--codec", "nosuch", src)
    assert status != 0 and "unknown video encoder 'nosuch'" in err and "Traceback" not in err
    out = tmp_path / "o.mp4"
    status, err = run_cli("upscale", src, out, "--preset", "ultrafast")
    assert status == 0, err
    assert video_stats(out)["sizes"] == {(100, 76)}
    # VP9 takes odd 4:2:0 sizes (the input is one): .webm output is exactly 3x, the same
    # picture as the padded H.264 one less its repeated row and column.
    exact = tmp_path / "o.webm"
    status, err = run_cli("upscale", src, exact, "--crf", "4")
    assert status == 0, err
    assert video_stats(exact)["sizes"] == {(99, 75)} and "padding" not in err
    with av.open(str(out)) as a, av.open(str(exact)) as b:
        (ya, ca), (yb, cb) = (split_planes(next(c.decode(video=0))) for c in (a, b))
    assert yb.shape == (75, 99) and cb.shape == (38, 50, 2) == ca.shape  # chroma rounds up
    assert np.abs(ya[:75, :99].astype(int) - yb).mean() < 3
    assert np.abs(ca.astype(int) - cb).mean() < 3


def test_info_on_a_missing_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    """`vsr info` on a missing file exits 2 with one 'vsr:' line and prints nothing on stdout."""
    status, err = run_cli("info", tmp_path / "nope.mp4")
    assert_user_error(status, err, mentions="no such file")
    assert capsys.readouterr().out == ""


def test_models_lists_the_bundled_models_with_their_scale(capsys) -> None:
    """`vsr models` lists espcn_x2, espcn_x3 and espcn_x4, each with its x2/x3/x4 scale."""
    status, err = run_cli("models", "--no-timing")
    assert status == 0, err
    lines = capsys.readouterr().out.splitlines()
    rows = {
        line[2:].split()[0]: line[2:].split()[1]
        for line in lines[1:]
        if not line.startswith(("(", "not bundled"))
    }
    assert rows["espcn_x2"] == "x2"
    assert rows["espcn_x3"] == "x3"
    assert rows["espcn_x4"] == "x4"


def test_models_says_which_tiers_are_not_bundled(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With only espcn_x3 and fast_x3 in the model folder, `vsr models` ends with the seven
    (tier, scale) pairs of the family that are missing; with all nine there is no such line."""
    import shutil

    from vsr.app.cli import missing_tiers
    from vsr.model.registry import bundled_models

    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("espcn_x3", "fast_x3"):
        shutil.copy(ROOT / "models" / f"{name}.onnx", folder)
    monkeypatch.setenv("VSR_MODELS", str(folder))
    monkeypatch.setattr("vsr.model.registry.model_dirs", lambda: [folder])
    status, err = run_cli("models", "--no-timing")
    assert status == 0, err
    assert (
        capsys.readouterr()
        .out.splitlines()[-1]
        .startswith(
            "not bundled in this version: fast x2, fast x4, balanced x2, balanced x4, quality x2, "
            "quality x3, quality x4"
        )
    )
    models = bundled_models()
    every = [replace(models[0], tier=t, scale=s) for t in ("fast", "balanced", "quality") for s in (2, 3, 4)]
    assert missing_tiers(every) == []


@pytest.mark.slow
def test_models_json_gives_names_and_scales(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`vsr models --json` is a JSON list whose espcn_x2/x3/x4 entries carry scales 2, 3 and 4,
    and every entry its tier, MAC count, parameters, degradation, precision, PSNR, the engine
    and arithmetic it runs in here and its speed; balanced_x3 is the one default (espcn_x3 is
    balanced too, at 59,488 MACs per pixel); the text listing marks the default with a star.
    (Five of the bundled models: the first listing on a CPU measures each model.)"""
    import shutil

    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("espcn_x2", "espcn_x3", "espcn_x4", "balanced_x3", "espcn_x3_int8"):
        shutil.copy(ROOT / "models" / f"{name}.onnx", folder)
    monkeypatch.setattr("vsr.model.registry.model_dirs", lambda: [folder])
    status, err = run_cli("models", "--json")
    assert status == 0, err
    listed = json.loads(capsys.readouterr().out)
    scales = {m["name"]: m["scale"] for m in listed}
    assert {k: scales[k] for k in ("espcn_x2", "espcn_x3", "espcn_x4")} == {
        "espcn_x2": 2,
        "espcn_x3": 3,
        "espcn_x4": 4,
    }
    keys = {
        "name",
        "path",
        "scale",
        "tier",
        "macs_per_pixel",
        "parameters",
        "degradation",
        "precision",
        "psnr",
        "ms_per_output_mp_cpu",
        "engine",
        "run_precision",
        "default",
    }
    assert all(keys <= set(m) for m in listed)
    assert [m["name"] for m in listed if m["default"]] == ["balanced_x3"]
    x3 = next(m for m in listed if m["name"] == "espcn_x3")
    assert x3["tier"] == "balanced" and x3["macs_per_pixel"] == 59488 and x3["ms_per_output_mp_cpu"] > 0
    assert x3["engine"] in ("onnxruntime", "openvino") and x3["run_precision"] in ("fp32", "bf16")
    int8 = next(m for m in listed if m["name"] == "espcn_x3_int8")
    assert int8["precision"] == int8["run_precision"] == "int8"
    assert run_cli("models", "--no-timing")[0] == 0
    starred = [line for line in capsys.readouterr().out.splitlines() if line.startswith("* ")]
    assert len(starred) == 1 and starred[0].split()[1] == "balanced_x3"


def test_models_times_dear_models_on_smaller_frames() -> None:
    """Where `vsr models` has no engine measurement to read (one engine only: nothing to
    choose between), it times cheap models at 160x120 and the quality tier on a frame of
    about the same work, so listing stays quick on two cores."""
    from vsr.model.cost import timing_size

    assert timing_size(8_352) == timing_size(59_488) == (160, 120)
    assert timing_size(448_128) == timing_size(673_344) == (64, 48)


@pytest.mark.slow
def test_quality_picks_a_tier_or_says_which_exist(
    sample_video: Path, out_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--quality balanced runs the default model, --quality quality --scale 2 the quality x2
    model (when bundled); a tier not bundled at that scale is one clear line (exit 2)
    naming the tiers that are."""
    import shutil

    from vsr.model.registry import default_for

    status, err = run_cli("upscale", sample_video, out_dir / "b.mkv", *FAST, "--quality", "balanced")
    assert status == 0, err
    assert default_for(2, "quality") is not None  # models/quality_x2.onnx is bundled
    status, err = run_cli(
        "upscale", sample_video, out_dir / "q.mkv", *FAST, "--scale", "2", "--quality", "quality"
    )
    assert status == 0, err
    with av.open(str(out_dir / "q.mkv")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (128, 96)
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(ROOT / "models" / "espcn_x3.onnx", folder)
    monkeypatch.setattr("vsr.model.registry.model_dirs", lambda: [folder])  # only espcn_x3 bundled
    status, err = run_cli(
        "upscale", sample_video, out_dir / "none.mkv", *FAST, "--scale", "2", "--quality", "quality"
    )
    line = assert_user_error(status, err, mentions="no bundled quality model for scale 2")
    assert "espcn" not in line and not (out_dir / "none.mkv").exists()


@pytest.mark.slow
def test_degrade_video_runs_the_video_model_of_the_tier(sample_video: Path, out_dir: Path) -> None:
    """`--quality fast --degrade video` upscales with fast_x3_video; at a scale with no video
    model it is one clear line (exit 2) saying where there is one, and nothing is written."""
    status, err = run_cli(
        "upscale",
        sample_video,
        out_dir / "v.mkv",
        *FAST,
        "--quality",
        "fast",
        "--degrade",
        "video",
        "--progress",
        "json",
    )
    assert status == 0, err
    done = json.loads(err.strip().splitlines()[-1])
    assert done["event"] == "done" and done["model"] == "fast_x3_video", done
    status, err = run_cli(
        "upscale", sample_video, out_dir / "none.mkv", *FAST, "--scale", "2", "--degrade", "video"
    )
    assert_user_error(status, err, mentions="trained for video input")
    assert not (out_dir / "none.mkv").exists()


# --------------------------------------------------------------------------- defaults and scale


def test_image_without_output_becomes_name_x3_png(tmp_path: Path) -> None:
    """`vsr upscale photo.png` with no OUTPUT writes photo_x3.png beside it, exactly 3x the size."""
    photo = make_png(tmp_path / "photo.png", 40, 30)
    status, err = run_cli("upscale", photo)
    assert status == 0, err
    assert listing(tmp_path) == ["photo.png", "photo_x3.png"]
    img = read_image(tmp_path / "photo_x3.png", cv2.IMREAD_UNCHANGED)
    assert img.shape == (90, 120, 3)
    assert err.splitlines()[-1].endswith("photo_x3.png"), err


@pytest.mark.slow
def test_scale_2_picks_the_x2_model_for_images(tmp_path: Path) -> None:
    """`--scale 2` with no OUTPUT writes photo_x2.png at exactly twice the size."""
    photo = make_png(tmp_path / "photo.png", 40, 30)
    status, err = run_cli("upscale", photo, "--scale", "2")
    assert status == 0, err
    assert listing(tmp_path) == ["photo.png", "photo_x2.png"]
    img = read_image(tmp_path / "photo_x2.png", cv2.IMREAD_UNCHANGED)
    assert img.shape == (60, 80, 3)


def test_scale_2_picks_the_x2_model_for_video(sample_video: Path, out_dir: Path) -> None:
    """`--scale 2` upscales a 64x48 video to 128x96 with the bundled x2 model."""
    out = out_dir / "out.mp4"
    status, err = run_cli("upscale", sample_video, out, *FAST, "--scale", "2", "--progress", "json")
    assert status == 0, err
    done = json.loads(err.splitlines()[-1])
    assert done["scale"] == 2
    assert frame_size(out) == (128, 96)
    assert listing(out_dir) == ["out.mp4"]


def test_video_without_output_keeps_its_extension(sample_video: Path) -> None:
    """`vsr upscale in.mp4` with no OUTPUT writes in_x3.mp4 beside it."""
    status, err = run_cli("upscale", sample_video, *FAST, "--frames", "3")
    assert status == 0, err
    target = sample_video.with_name("in_x3.mp4")
    assert listing(sample_video.parent) == ["in.mp4", "in_x3.mp4"]
    assert frame_size(target) == (192, 144)


def test_a_live_run_that_dropped_much_of_its_input_ends_with_a_hint_naming_the_fast_tier() -> None:
    """A live run that drops over a fifth of its frames says what would drop fewer: the fast
    tier (unless it already ran) or a smaller input; start-up's few drops say nothing."""
    from vsr.app.cli import keep_up_hint
    from vsr.frames import LiveStats, StageTimes, Stats, Steady

    def stats(frames_in: int, dropped: int, steady: Steady | None = None) -> Stats:
        return Stats(
            frames=frames_in - dropped,
            seconds=10.0,
            input_size=(640, 360),
            output_size=(1920, 1080),
            scale=3,
            provider="CPUExecutionProvider",
            batch=1,
            stages=StageTimes(),
            frames_in=frames_in,
            live=LiveStats(dropped=dropped, steady=steady),
        )

    overloaded = stats(250, 125)
    hint = keep_up_hint(overloaded, "balanced")
    assert hint.startswith("50% of the frames were dropped") and "--quality fast" in hint
    assert "--quality fast" in keep_up_hint(overloaded, "")  # a model without a tier
    assert "--quality fast" not in keep_up_hint(overloaded, "fast")
    assert "smaller input" in keep_up_hint(overloaded, "fast")
    assert keep_up_hint(stats(125, 15), "balanced") == ""  # start-up drops in a 5 s run
    assert keep_up_hint(stats(0, 0), "balanced") == ""
    # With a steady state long enough to judge, only it counts: 15 start-up drops and then
    # none is keeping up; a run that keeps dropping a tenth after start-up is not, though
    # that is under a fifth of the whole run.
    assert keep_up_hint(stats(250, 15, Steady(8.0, 200, 0)), "balanced") == ""
    slow = keep_up_hint(stats(250, 35, Steady(8.0, 200, 20)), "balanced")
    assert slow.startswith("10% of the frames were dropped after start-up") and "--quality fast" in slow
    # too short a steady state to judge: the whole run, with its margin
    assert keep_up_hint(stats(60, 10, Steady(0.5, 12, 3)), "balanced") == ""


def test_the_api_takes_the_option_objects_the_cli_builds_and_writes_the_same_video(
    sample_video: Path, tmp_path: Path
) -> None:
    """`vsr upscale` builds SourceOptions, ModelOptions and SinkOptions from its options;
    `upscale_video()` given those objects writes the same frames at the same times."""
    from helpers import decoded

    import vsr
    from vsr.app.jobs import model_options, sink_options, source_options

    cli_out, api_out = tmp_path / "cli.mkv", tmp_path / "api.mkv"
    options = ["--quality", "fast", "--engine", "onnxruntime", "--precision", "fp32", "--device", "cpu"]
    options += ["--codec", "ffv1", "--frames", "5", "--height", "96", "--on-error", "stop"]
    status, err = run_cli("upscale", sample_video, cli_out, *options)
    assert status == 0, err
    args = build_parser().parse_args(["upscale", str(sample_video), str(api_out), *options])
    source = source_options(args, str(sample_video))
    model = model_options(args)
    sink = sink_options(args, str(api_out))
    assert source == vsr.SourceOptions(str(sample_video), max_frames=5)
    assert model == vsr.ModelOptions(
        quality="fast", device=vsr.Device.CPU, engine=vsr.Engine.ONNXRUNTIME, precision=vsr.Precision.FP32
    )
    assert sink == vsr.SinkOptions(str(api_out), codec="ffv1", height=96)
    stats = vsr.upscale_video(source, sink, model=model, on_error=args.on_error, color=args.color)
    assert stats.frames == 5 and stats.live is None and stats.scale_out is None
    cli_frames, cli_pts = decoded(cli_out)
    api_frames, api_pts = decoded(api_out)
    assert len(api_frames) == 5 and api_pts == cli_pts
    assert all(np.array_equal(a, c) for a, c in zip(api_frames, cli_frames, strict=True))


def test_model_options_take_the_enums_string_values_and_refuse_others_with_the_choices() -> None:
    """`ModelOptions(device="cuda", precision="bf16", engine="openvino")` means the enums, as
    the API's strings always did; a value that names none is a UsageError listing them."""
    import vsr

    opts = vsr.ModelOptions(device="cpu", precision="bf16", engine="openvino")  # type: ignore[arg-type]  # the strings a caller writes
    assert (opts.device, opts.precision, opts.engine) == (
        vsr.Device.CPU,
        vsr.Precision.BF16,
        vsr.Engine.OPENVINO,
    )
    with pytest.raises(vsr.UsageError, match=r"unknown device 'gpu': it is one of 'auto', 'cpu', 'cuda'"):
        vsr.ModelOptions(device="gpu")  # type: ignore[arg-type]  # the wrong string a caller may write
    with pytest.raises(vsr.UsageError, match="unknown on_error 'ignore'"):
        vsr.upscale_video("in.mp4", "out.mp4", on_error="ignore")


def test_json_progress_always_ends_with_the_last_snapshot() -> None:
    """Snapshots that come faster than the throttle: the first is written, the ones between
    are not, and the last always is."""
    import io

    from vsr.app import progress
    from vsr.options import ProgressStyle
    from vsr.pipeline.run import Snapshot

    stream = io.StringIO()
    snaps = [Snapshot(frames=i, total=5, elapsed=0.1 * (i + 1)) for i in range(6)]
    progress.show(iter(snaps), ProgressStyle.JSON, stream, every=60)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert [x["frames"] for x in lines] == [0, 5]
