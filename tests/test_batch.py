"""Everyday use: many inputs in one run (`--output-dir`, folders, `--skip-existing`,
`--fail-fast`, Ctrl-C), the guard rails (huge outputs, a bad --scale, a folder as OUTPUT) and
`vsr info` telling the truth (`--count`, images, plurals). Real clips through PyAV and the
bundled model through onnxruntime; each run takes a second or two."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import av
import pytest
from helpers import GOP12, Vsr, leftovers, listing, make_png, read_image, run_cli

import vsr.model.load
from vsr.app.batch import BatchItem, BatchProgress, Status, expand, plan, run_batch
from vsr.app.limits import large_output_warning, memory_estimate
from vsr.errors import UsageError
from vsr.lab.media import synth_video
from vsr.options import ModelOptions, SinkOptions, SourceOptions
from vsr.pipeline.pipeline import Pipeline

FAST = ["--preset", "ultrafast"]


def frames_and_size(path: Path) -> tuple[int, set[tuple[int, int]]]:
    with av.open(str(path)) as c:
        sizes = {(f.width, f.height) for f in c.decode(video=0)}
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0)), sizes


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    """A folder with two real clips (12 and 8 frames, 64x48) and one broken 'video'."""
    folder = tmp_path / "clips"
    folder.mkdir()
    synth_video(folder / "a.mp4", n=12)
    synth_video(folder / "b.mkv", n=8, audio=None)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"not really a video" * 50)
    return folder


@pytest.fixture
def load_calls(monkeypatch: pytest.MonkeyPatch) -> list[ModelOptions]:
    """Every call of vsr.model.load.load (the real one runs; this only counts)."""
    calls: list[ModelOptions] = []
    real = vsr.model.load.load

    def counting(options: ModelOptions, *args: object, **kw: object) -> object:
        calls.append(options)
        return real(options, *args, **kw)

    monkeypatch.setattr(vsr.model.load, "load", counting)
    return calls


# --------------------------------------------------------------------------- many inputs


def test_folder_with_a_broken_file_gives_the_other_outputs_and_exit_1(
    clips: Path, tmp_path: Path, load_calls: list[ModelOptions]
) -> None:
    """A folder of two clips and one broken file: both clips are upscaled (model loaded once),
    the broken file is named on its own line, a summary counts them, and the exit status is 1."""
    out = tmp_path / "out"
    status, err = run_cli("upscale", clips, "--output-dir", out, *FAST)
    assert status == 1, err
    assert listing(out) == ["a_x3.mp4", "b_x3.mkv"]
    assert frames_and_size(out / "a_x3.mp4") == (12, {(192, 144)})
    assert frames_and_size(out / "b_x3.mkv") == (8, {(192, 144)})
    lines = err.splitlines()
    assert "Traceback" not in err
    assert len(lines) == 2, err
    assert lines[0].startswith(f"vsr: failed {clips / 'broken.mp4'}: cannot open input"), err
    assert lines[1].startswith("vsr: 3 files: 2 done, 1 failed, 0 skipped; 20 frames in "), err
    assert lines[1].endswith(f"-> {out}"), err
    assert len(load_calls) == 1


def test_rerun_with_skip_existing_touches_nothing(clips: Path, tmp_path: Path) -> None:
    """Re-running with --skip-existing leaves the finished outputs untouched (same mtimes);
    the broken file fails again (exit 1) until it is removed, then every file is skipped and
    the exit status is 0."""
    out = tmp_path / "out"
    assert run_cli("upscale", clips, "--output-dir", out, *FAST)[0] == 1
    before = mtimes(out)
    time.sleep(0.01)
    status, err = run_cli("upscale", clips, "--output-dir", out, *FAST, "--skip-existing")
    assert status == 1, err
    assert "vsr: 3 files: 0 done, 1 failed, 2 skipped" in err, err
    assert mtimes(out) == before
    (clips / "broken.mp4").unlink()
    status, err = run_cli(
        "upscale", clips, "--output-dir", out, *FAST, "--skip-existing", "--progress", "json"
    )
    assert status == 0, err
    records = [json.loads(line) for line in err.splitlines()]
    files = [r for r in records if r["event"] == "file"]
    assert [(Path(r["input"]).name, r["status"]) for r in files] == [
        ("a.mp4", "skipped"),
        ("b.mkv", "skipped"),
    ]
    assert records[-1]["event"] == "summary"
    assert (records[-1]["done"], records[-1]["failed"], records[-1]["skipped"]) == (0, 0, 2)
    assert mtimes(out) == before


def test_progress_json_has_a_record_per_file_and_a_summary(clips: Path, tmp_path: Path) -> None:
    """--progress json: only JSON lines; progress lines carry files done/total, frames, fps and
    an ETA; each file ends with a "file" record (status, frames, seconds, error); the last
    line is the summary."""
    out = tmp_path / "out"
    inputs = [clips / "a.mp4", clips / "broken.mp4", clips / "b.mkv"]
    status, err = run_cli("upscale", *inputs, "--output-dir", out, *FAST, "--progress", "json")
    assert status == 1, err
    records = [json.loads(line) for line in err.splitlines()]
    files = [r for r in records if r["event"] == "file"]
    assert [(r["input"], r["status"]) for r in files] == [
        (str(inputs[0]), "done"),
        (str(inputs[1]), "failed"),
        (str(inputs[2]), "done"),
    ]
    assert files[0] == {
        "event": "file",
        "input": str(inputs[0]),
        "output": str(out / "a_x3.mp4"),
        "status": "done",
        "frames": 12,
        "seconds": files[0]["seconds"],
        "error": None,
    }
    assert files[1]["frames"] == 0 and "cannot open input" in files[1]["error"]
    assert files[2]["frames"] == 8
    progress = [r for r in records if r["event"] == "progress"]
    assert progress, err
    assert {
        "file",
        "files_done",
        "files_total",
        "frames",
        "file_frames",
        "file_total",
        "fps",
        "elapsed",
        "eta",
    } <= set(progress[0])
    assert all(r["files_total"] == 3 for r in progress)
    summary = records[-1]
    assert summary["event"] == "summary"
    assert (summary["files"], summary["done"], summary["failed"], summary["skipped"]) == (3, 2, 1, 0)
    assert summary["frames"] == 20 and summary["interrupted"] is False


def test_progress_bar_counts_files_and_frames(clips: Path, tmp_path: Path) -> None:
    """--progress bar draws one bar for the run: files done/total and frames, then the lines."""
    status, err = run_cli(
        "upscale",
        clips / "a.mp4",
        clips / "b.mkv",
        "--output-dir",
        tmp_path / "out",
        *FAST,
        "--progress",
        "bar",
    )
    assert status == 0, err
    assert "2/2 files" in err and "20/20" in err, err
    assert err.splitlines()[-1].startswith("vsr: 2 files: 2 done, 0 failed, 0 skipped"), err


def test_fail_fast_stops_at_the_first_failure(clips: Path, tmp_path: Path) -> None:
    """--fail-fast: the first failure ends the run (exit 1); later files are not started."""
    out = tmp_path / "out"
    status, err = run_cli(
        "upscale", clips / "broken.mp4", clips / "a.mp4", "--output-dir", out, *FAST, "--fail-fast"
    )
    assert status == 1, err
    assert listing(out) == []
    assert "vsr: 2 files: 0 done, 1 failed, 0 skipped, 1 not started (--fail-fast)" in err, err


def test_several_inputs_without_output_dir_are_refused_in_one_line(clips: Path) -> None:
    """Three inputs without --output-dir: one 'vsr:' line, exit 2; two stay INPUT OUTPUT."""
    status, err = run_cli("upscale", clips / "a.mp4", clips / "b.mkv", clips / "c.mp4")
    assert status == 2
    assert err.splitlines() == [
        ("vsr: 3 inputs need --output-dir DIR (only 'vsr upscale INPUT OUTPUT' names its output)")
    ]
    status, err = run_cli("upscale", clips / "a.mp4", clips / "a_big.mkv", *FAST)
    assert status == 0, err
    assert frames_and_size(clips / "a_big.mkv") == (12, {(192, 144)})


def test_a_folder_without_output_dir_says_to_pass_it(clips: Path) -> None:
    """A folder as the only input, without --output-dir: exit 2 with a hint naming --output-dir."""
    status, err = run_cli("upscale", clips)
    assert status == 2
    assert err.splitlines() == [
        f"vsr: input '{clips}' is a folder",
        "hint: pass --output-dir DIR to upscale the video and image files in it",
    ]


def test_recursive_repeats_the_sub_folders_and_images_become_png(tmp_path: Path) -> None:
    """A folder walk takes video and image files by extension, not hidden or other files;
    --recursive descends and writes into the same sub-folders of the output folder."""
    top = tmp_path / "top"
    (top / "sub").mkdir(parents=True)
    make_png(top / "photo.jpg")
    synth_video(top / "sub" / "clip.mp4", n=4, audio=None)
    (top / "notes.txt").write_text("not media")
    (top / ".hidden.mp4").write_bytes(b"")
    out = tmp_path / "out"
    status, err = run_cli("upscale", top, "--output-dir", out, *FAST)
    assert status == 0, err
    assert listing(out) == ["photo_x3.png"]
    status, err = run_cli("upscale", top, "--output-dir", out, *FAST, "--recursive", "--skip-existing")
    assert status == 0, err
    assert "1 done, 0 failed, 1 skipped" in err, err
    assert listing(out / "sub") == ["clip_x3.mp4"]
    assert read_image(out / "photo_x3.png").shape == (90, 120, 3)


def test_output_dir_inside_the_input_folder_does_not_upscale_results(tmp_path: Path) -> None:
    """With the input folder as the output folder, a second run does not take a_x3.mp4 as an
    input (it is a.mp4's output): it is skipped, nothing else is written."""
    folder = tmp_path / "f"
    folder.mkdir()
    synth_video(folder / "a.mp4", n=4, audio=None)
    assert run_cli("upscale", folder, "--output-dir", folder, *FAST)[0] == 0
    status, err = run_cli("upscale", folder, "--output-dir", folder, *FAST, "--skip-existing")
    assert status == 0, err
    assert "1 file: 0 done, 0 failed, 1 skipped" in err, err
    assert listing(folder) == ["a.mp4", "a_x3.mp4"]


def test_segments_run_each_file_over_the_scale_out_path(tmp_path: Path) -> None:
    """--segments with many inputs splits each video in turn (local workers), and an image
    in the same run goes the plain way; outputs have every frame at 3x."""
    folder = tmp_path / "f"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        synth_video(folder / name, n=24, options=GOP12)
    make_png(folder / "c.png")
    out = tmp_path / "out"
    status, err = run_cli(
        "upscale",
        folder,
        "--output-dir",
        out,
        *FAST,
        "--segments",
        "2",
        "--executor",
        "local",
        "--progress",
        "json",
    )
    assert status == 0, err
    records = [json.loads(line) for line in err.splitlines()]
    assert sum(r["event"] == "segment" and r["status"] == "done" for r in records) == 4
    assert listing(out) == ["a_x3.mp4", "b_x3.mp4", "c_x3.png"]  # no work folders left
    assert frames_and_size(out / "a_x3.mp4") == (24, {(192, 144)})
    assert frames_and_size(out / "b_x3.mp4") == (24, {(192, 144)})


def test_plan_names_outputs_and_refuses_collisions(tmp_path: Path) -> None:
    """plan(): NAME_x3.EXT with images as .png; two inputs meeting in one output are refused;
    expand(): an empty folder and standard input are usage errors."""
    a, b = make_png(tmp_path / "a.png"), make_png(tmp_path / "a.jpg")
    items = plan(expand([str(a), str(tmp_path / "v.webm")]), tmp_path / "o", 3)
    assert [it.output for it in items] == [tmp_path / "o" / "a_x3.png", tmp_path / "o" / "v_x3.webm"]
    with pytest.raises(UsageError, match="would both be written to"):
        plan(expand([str(a), str(b)]), tmp_path / "o", 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no video or image files"):
        expand([str(tmp_path / "empty")])
    with pytest.raises(UsageError, match="standard input"):
        expand(["-", str(a)])


def test_run_batch_shares_one_upscaler_and_estimates_the_total(clips: Path, tmp_path: Path) -> None:
    """run_batch() with Pipelines sharing one loaded model: a result per file in order,
    progress that counts all files' frames, and an estimated total covering files not started."""
    upscaler = vsr.model.load.load(ModelOptions())
    items = [BatchItem(str(clips / n), tmp_path / f"{n}.mkv") for n in ("a.mp4", "broken.mp4", "b.mkv")]

    def open_job(item: BatchItem) -> Pipeline:
        return Pipeline(
            SourceOptions(item.input),
            ModelOptions(),
            SinkOptions(str(item.output), preset="ultrafast"),
            upscaler=upscaler,
        )

    events = list(run_batch(items, open_job))
    results = [e for e in events if hasattr(e, "status")]
    assert [r.status for r in results] == [Status.DONE, Status.FAILED, Status.DONE]
    assert [r.frames for r in results] == [12, 0, 8]
    first = next(e for e in events if getattr(e, "current", None) is not None)
    assert isinstance(first, BatchProgress)
    assert first.files_total == 3 and first.files_done == 0
    assert first.total_estimate == 12 * 3  # a.mp4's 12 frames, times the files still to come
    last = events[-1]
    assert isinstance(last, BatchProgress)
    assert last.frames == 20 and last.files_done == 3 and last.eta is None


def _file_record(input_name: str, status: str = "done"):
    """A predicate: the --progress json "file" record of `input_name` with `status`."""

    def match(line: str) -> bool:
        rec = _record(line)
        return (
            rec.get("event") == "file"
            and Path(str(rec.get("input"))).name == input_name
            and rec.get("status") == status
        )

    return match


def _running(input_name: str):
    """A predicate: a --progress json "progress" record of `input_name` with frames done."""

    def match(line: str) -> bool:
        rec = _record(line)
        return (
            rec.get("event") == "progress"
            and Path(str(rec.get("file"))).name == input_name
            and int(rec.get("file_frames") or 0) > 0
        )

    return match


def _record(line: str) -> dict[str, Any]:
    try:
        rec = json.loads(line)
    except ValueError:
        return {}
    return rec if isinstance(rec, dict) else {}


def _assert_interrupted(child: Vsr, out: Path, sent: float) -> dict[str, Any]:
    """Exit 130 within seconds, the one-line message after the summary, no traceback, no
    temporary file; returns the summary record."""
    status = child.wait_exit(timeout=15)
    assert status == 130, f"exit {status} (negative: killed by that signal): {child.stderr}"
    assert time.monotonic() - sent < 8, child.stderr
    assert "Traceback" not in child.stderr and "Exception ignored" not in child.stderr, child.stderr
    assert child.lines[-1] == "vsr: interrupted; partial output removed\n", child.stderr
    summary: dict[str, Any] = json.loads(child.lines[-2])
    assert summary["event"] == "summary" and summary["interrupted"] is True, child.stderr
    assert leftovers(out) == [], child.stderr
    return summary


@pytest.mark.slow
def test_ctrl_c_keeps_finished_files_and_exits_130(tmp_path: Path, sigint_default: None) -> None:
    """SIGINT while the second file runs: exit 130 within seconds, the first output stays, the
    second's temporary file is gone, and a --skip-existing re-run finishes the rest."""
    folder = tmp_path / "f"
    folder.mkdir()
    synth_video(folder / "a.mp4", n=6, audio=None)
    synth_video(folder / "b.mp4", n=300, size=(160, 90), bframes=False)  # seconds of work
    out = tmp_path / "out"
    child = Vsr("upscale", folder, "--output-dir", out, *FAST, "--progress", "json")
    try:
        child.wait_line(_file_record("a.mp4"))
        child.wait_line(_running("b.mp4"))  # b is being encoded, and far from its end
        sent = time.monotonic()
        child.proc.send_signal(signal.SIGINT)
        summary = _assert_interrupted(child, out, sent)
    finally:
        child.kill()
    assert (summary["done"], summary["unfinished"]) == (1, 1)
    assert listing(out) == ["a_x3.mp4"]
    before = mtimes(out)
    status, err = run_cli("upscale", folder, "--output-dir", out, *FAST, "--skip-existing")
    assert status == 0, err
    assert "2 files: 1 done, 0 failed, 1 skipped" in err, err
    assert listing(out) == ["a_x3.mp4", "b_x3.mp4"]
    assert mtimes(out)["a_x3.mp4"] == before["a_x3.mp4"]


@pytest.fixture
def three_clips(tmp_path: Path) -> Path:
    """a.mp4 (6 frames), b.mp4 (60 frames, a second or two of work), c.mp4 (300 frames: the
    run never reaches its end within the test)."""
    folder = tmp_path / "f"
    folder.mkdir()
    synth_video(folder / "a.mp4", n=6, audio=None)
    synth_video(folder / "b.mp4", n=60, size=(160, 90), bframes=False)
    synth_video(folder / "c.mp4", n=300, size=(160, 90), bframes=False)
    return folder


#: What is seen on stderr, and how long after it the SIGINT is sent: b being opened, its
#: stages starting, b running, b finishing (or c opening), c opening.
CTRL_C_POINTS = [
    *((("a.mp4", "done"), delay) for delay in (0.0, 0.01, 0.02, 0.03, 0.05, 0.1)),
    (("b.mp4", "running"), 0.0),
    (("b.mp4", "running"), 0.6),
    (("b.mp4", "done"), 0.0),
]


@pytest.mark.slow
def test_ctrl_c_at_any_point_of_a_batch_exits_130_cleanly(
    three_clips: Path, tmp_path: Path, sigint_default: None
) -> None:
    """Ctrl-C wherever it lands (a file opening, its stages starting, running, finishing, the
    next one opening; one run each, all at once): exit 130, never a crash (a negative
    status), the one-line message, no traceback, no temporary file, and every output under
    its final name complete."""
    runs = []
    for i, (seen, delay) in enumerate(CTRL_C_POINTS):
        out = tmp_path / f"out{i}"
        runs.append(
            (seen, delay, out, Vsr("upscale", three_clips, "--output-dir", out, *FAST, "--progress", "json"))
        )
    sent: dict[int, float] = {}
    failures: list[BaseException] = []

    def interrupt(i: int, seen: tuple[str, str], delay: float, child: Vsr) -> None:
        try:
            name, what = seen
            child.wait_line(_running(name) if what == "running" else _file_record(name), 60)
            time.sleep(delay)
            sent[i] = time.monotonic()
            child.proc.send_signal(signal.SIGINT)
        except BaseException as exc:  # noqa: BLE001 - pytest.fail, reported below
            failures.append(exc)

    threads = [
        threading.Thread(target=interrupt, args=(i, seen, delay, child))
        for i, (seen, delay, _, child) in enumerate(runs)
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        if failures:
            raise failures[0]
        for i, (seen, delay, out, child) in enumerate(runs):
            summary = _assert_interrupted(child, out, sent[i])
            kept = listing(out)
            assert set(kept) <= {"a_x3.mp4", "b_x3.mp4"} and "a_x3.mp4" in kept, (seen, delay, kept)
            # b may be finished and renamed just as the signal lands, before it is counted
            assert summary["done"] in (len(kept) - 1, len(kept)), (seen, delay, summary, kept)
            for name, frames in (("a_x3.mp4", 6), ("b_x3.mp4", 60)):
                if name in kept:
                    assert frames_and_size(out / name)[0] == frames, (seen, delay, name)
    finally:
        for *_, child in runs:
            child.kill()


# --------------------------------------------------------------------------- guard rails


def test_output_larger_than_4k_is_warned_with_size_memory_and_scale_2(tmp_path: Path) -> None:
    """An output wider than 4096 gets one warning before the work: its size, a memory estimate
    and what --scale 2 would give; 4K itself does not. On the CPU, so the batch (and with it
    the estimate) is the same on a machine with a GPU."""
    wide = make_png(tmp_path / "wide.png", 1366, 16)
    status, err = run_cli("upscale", wide, tmp_path / "wide_x3.png", "--device", "cpu")
    assert status == 0, err
    warning, summary = err.splitlines()
    assert warning == (
        "vsr: output 4098x48 is larger than 4096x2160: expect about 0.4 GB of "
        "memory; --scale 2 makes it 2732x32"
    )
    assert summary.startswith("vsr: 1 frame 1366x16 -> 4098x48"), err
    assert large_output_warning(1280, 720, 3) is None  # 3840x2160
    assert large_output_warning(720, 1280, 3) is None  # portrait 2160x3840
    text = large_output_warning(3840, 2160, 3)
    assert text is not None and "11520x6480" in text and "9.7 GB" in text
    assert "--scale" not in (large_output_warning(2160, 1200, 2) or "")
    assert memory_estimate(3840, 2160) == pytest.approx(1.44e9, rel=0.01)  # measured 1.42 GB


def test_bad_scale_is_one_line_with_the_choices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--scale 5: exit 2 and a single line naming the choices, not the whole usage."""
    status, _ = run_cli("upscale", tmp_path / "x.mp4", "--scale", "5")
    assert status == 2
    assert capsys.readouterr().err.splitlines() == [
        "vsr upscale: argument --scale: invalid choice: 5 (choose from 2, 3, 4)"
    ]


@pytest.mark.parametrize("extra", [[], ["--overwrite"]])
def test_existing_folder_as_output_is_refused_at_once(
    clips: Path, tmp_path: Path, extra: list[str], load_calls: list[ModelOptions]
) -> None:
    """A folder as OUTPUT is refused as 'is a directory' before the model loads, with or
    without --overwrite, and the folder is left as it was."""
    folder = tmp_path / "somewhere"
    folder.mkdir()
    status, err = run_cli("upscale", clips / "a.mp4", folder, *extra)
    assert status == 2
    assert err.splitlines() == [
        f"vsr: output '{folder}' is a directory",
        "hint: to write into a folder, pass --output-dir",
    ]
    assert load_calls == [] and listing(folder) == []


# --------------------------------------------------------------------------- vsr info


def _with_edit_list(src: Path, dst: Path, hidden: int) -> Path:
    """Remux `src` so that its first `hidden` frames lie before 0: the MP4 muxer writes an edit
    list hiding them, while the sample table still counts every frame."""
    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        iv = i.streams.video[0]
        ov = o.add_stream_from_template(iv)
        assert iv.average_rate is not None and iv.time_base is not None
        shift = int(hidden / iv.average_rate / iv.time_base)
        for p in i.demux(iv):
            if p.dts is None:
                continue
            assert p.pts is not None
            p.pts -= shift
            p.dts -= shift
            p.stream = ov
            o.mux(p)
    return dst


def test_info_count_decodes_the_real_frame_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An MP4 whose edit list hides 6 of 24 frames: `vsr info` shows the header's 24,
    `--count` the 18 that decode (and upscale), and says what the header claimed."""
    src = synth_video(tmp_path / "src.mp4", n=24, audio=None, bframes=False, options={"g": "24"})
    clip = _with_edit_list(src, tmp_path / "elst.mp4", 6)
    assert run_cli("info", clip)[0] == 0
    assert ", 24 frames\n" in capsys.readouterr().out
    assert run_cli("info", clip, "--count")[0] == 0
    out = capsys.readouterr().out
    assert "0.72s, 18 frames (counted; the header says 24 frames)" in out, out
    assert run_cli("info", clip, "--count", "--json")[0] == 0
    video = json.loads(capsys.readouterr().out)["video"]
    assert (video["frames"], video["header_frames"], video["counted"]) == (18, 24, True)
    assert video["duration"] == pytest.approx(0.72)
    status, err = run_cli("upscale", clip, tmp_path / "out.mkv", *FAST)
    assert status == 0 and err.startswith("vsr: 18 frames"), err


def test_info_shows_an_image_as_an_image_and_counts_in_the_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An image is 'image: png 40x30' without a frame rate (JSON: 1 frame, no rate); a
    one-frame video says '1 frame'."""
    photo = make_png(tmp_path / "photo.png")
    assert run_cli("info", photo)[0] == 0
    out = capsys.readouterr().out
    assert "  image: png 40x30 rgb24\n" in out and "fps" not in out, out
    assert run_cli("info", photo, "--json")[0] == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["image"] is True
    assert (rec["video"]["frames"], rec["video"]["rate"], rec["video"]["duration"]) == (1, None, None)
    one = synth_video(tmp_path / "one.mkv", n=1, audio=None)
    assert run_cli("info", one, "--count")[0] == 0
    assert ", 1 frame (counted" in capsys.readouterr().out
