"""`vsr serve` as a client sees it: a real server process on loopback, a real HTTP client,
real clips and the real model. Jobs, their outputs, concurrency, durability across SIGKILL
and SIGTERM, cancelling, metrics and the web page."""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, Served, decoded, leftovers, run_cli

from vsr.lab.media import synth_video

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

#: The service's defaults and the CLI's options for the same jobs.
FAST = ("--quality", "fast", "--preset", "ultrafast")
#: What a CPU job may run as under --engine auto: (provider, precision).
CPU_RUNS = {("CPUExecutionProvider", "fp32"), ("OpenVINO CPU", "fp32"), ("OpenVINO CPU", "bf16")}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A service root with a few small clips under in/."""
    root = tmp_path_factory.mktemp("serve") / "root"
    (root / "in").mkdir(parents=True)
    for i, size in enumerate([(64, 48), (48, 32), (80, 48), (64, 64)]):
        synth_video(root / "in" / f"c{i}.mp4", n=8 + 2 * i, size=size)
    return root


@pytest.fixture(scope="module")
def served(root: Path) -> Iterator[Served]:
    """One service for the module's API tests: two jobs at once, model calls merging up to 4
    frames of concurrent jobs."""
    s = Served(root, *FAST, "--jobs", "2", "--batch", "4")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def alone(root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each clip upscaled by the CLI with the same options: what a job must give."""
    out = tmp_path_factory.mktemp("cli")
    refs = {}
    for clip in sorted((root / "in").glob("c*.mp4")):
        ref = out / f"{clip.stem}_x3.mp4"
        status, err = run_cli("upscale", clip, ref, *FAST)
        assert status == 0, err
        refs[clip.name] = ref
    return refs


def _same_frames(a: Path, b: Path) -> None:
    fa, pa = decoded(a)
    fb, pb = decoded(b)
    assert len(fa) == len(fb) > 0
    assert pa == pb
    for x, y in zip(fa, fb, strict=True):
        assert np.array_equal(x, y)


def test_a_job_submitted_polled_and_downloaded_equals_the_cli_output(
    served: Served, root: Path, alone: dict[str, Path], tmp_path: Path
) -> None:
    """POST a job, poll it to done, GET its output: the frames and timestamps are those of
    `vsr upscale` with the same options, and the record names the model and provider."""
    job = served.submit({"input": "in/c0.mp4", "output": "out/single.mp4"})
    assert job["status"] == "queued" and job["output"] == "out/single.mp4"
    done = served.wait(job["id"])
    assert done["status"] == "done", done
    # --engine auto: onnxruntime, or OpenVINO where it measured faster (bf16 with bf16 units)
    assert done["model"] == "fast_x3" and (done["provider"], done["precision"]) in CPU_RUNS
    assert done["engine"] == ("openvino" if done["provider"] == "OpenVINO CPU" else "onnxruntime")
    assert done["figures"]["engine"] == done["engine"]
    assert done["progress"]["frames"] == done["progress"]["total"] == 8
    figures = done["figures"]
    assert figures["realtime_factor"] > 0 and set(figures["stage_seconds"]) == {
        "decode",
        "model",
        "colour",
        "encode",
    }
    # what a live run counts is in the figures too; a job (file mode) has none of it here
    assert figures["reconnects"] == 0 and figures["discontinuities"] == 0, figures
    assert done["started"] and done["finished"] and done["created"]
    status, data, headers = served.request("GET", f"/v1/jobs/{job['id']}/output")
    assert status == 200 and headers["content-type"] == "video/mp4"
    got = tmp_path / "got.mp4"
    got.write_bytes(data)
    _same_frames(got, alone["c0.mp4"])
    assert (root / "out" / "single.mp4").read_bytes() == data


def test_without_an_output_the_cli_name_is_used_beside_the_input(served: Served, root: Path) -> None:
    """No `output`: NAME_x3.EXT in the input's folder, as `vsr upscale in.mp4` names it."""
    job = served.submit({"input": "in/c1.mp4", "options": {"crf": 30}})
    assert job["output"] == "in/c1_x3.mp4"
    assert served.wait(job["id"])["status"] == "done"
    assert (root / "in" / "c1_x3.mp4").is_file()


def test_twenty_jobs_at_once_all_finish_with_the_outputs_they_give_alone(
    served: Served, root: Path, alone: dict[str, Path]
) -> None:
    """20 jobs submitted together to a service running 2 at once, whose model calls merge
    frames of both: every job ends done, and every output equals the CLI's for its clip,
    frame for frame; the merged calls were fuller than one job's."""
    clips = sorted(alone)
    clip_of = [clips[(i // 2) % 4] for i in range(20)]  # in pairs: the two running share a size
    jobs = [served.submit({"input": f"in/{clip_of[i]}", "output": f"many/{i:02d}.mp4"}) for i in range(20)]
    _, listing, _ = served.request("GET", "/v1/jobs?status=queued&limit=1000")
    assert all(j["status"] == "queued" for j in listing["jobs"])
    ended = [served.wait(j["id"], timeout=300) for j in jobs]
    assert [j["status"] for j in ended] == ["done"] * 20, [j["error"] for j in ended]
    for i in range(len(jobs)):
        _same_frames(root / "many" / f"{i:02d}.mp4", alone[clip_of[i]])
    _, text, _ = served.request("GET", "/metrics")
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    occupancy = families["vsr_batch_occupancy"].samples[0].value
    assert occupancy > 0.25, occupancy  # more than one frame per call on average


def test_jobs_are_listed_newest_first_and_filtered_by_status(served: Served) -> None:
    """GET /v1/jobs: newest first; ?status= filters; an unknown status is a 422 that names
    the choices."""
    a = served.submit({"input": "in/c2.mp4", "output": "list/a.mp4"})
    b = served.submit({"input": "in/c2.mp4", "output": "list/b.mp4"})
    served.wait(b["id"])
    served.wait(a["id"])
    _, listing, _ = served.request("GET", "/v1/jobs")
    ids = [j["id"] for j in listing["jobs"]]
    assert ids.index(b["id"]) < ids.index(a["id"])
    _, done, _ = served.request("GET", "/v1/jobs?status=done")
    assert {j["status"] for j in done["jobs"]} == {"done"}
    status, body, _ = served.request("GET", "/v1/jobs?status=finished")
    assert status == 422 and "queued" in body["error"]


def test_a_job_whose_output_exists_is_refused_without_overwrite(served: Served, root: Path) -> None:
    """An existing output: 409 with the hint to set overwrite; with overwrite: true it is
    replaced. Two live jobs never share an output."""
    (root / "exists").mkdir(exist_ok=True)
    (root / "exists" / "o.mp4").write_bytes(b"old")
    status, body, _ = served.request("POST", "/v1/jobs", {"input": "in/c0.mp4", "output": "exists/o.mp4"})
    assert status == 409 and "already exists" in body["error"] and "overwrite" in body["hint"]
    job = served.submit({"input": "in/c0.mp4", "output": "exists/o.mp4", "options": {"overwrite": True}})
    assert served.wait(job["id"])["status"] == "done"
    assert (root / "exists" / "o.mp4").stat().st_size > 3


def test_bad_options_are_422_with_the_cli_message(served: Served) -> None:
    """A job's options go through `vsr upscale`'s own parser: the same one-line messages."""
    cases = [
        ({"scale": 5}, "argument --scale: invalid choice: 5"),
        ({"crf": "abc"}, "argument --crf: invalid int value: 'abc'"),
        ({"quality": "best"}, "argument --quality: invalid choice: 'best'"),
        ({"start": "1:xx"}, "argument --start: expected seconds or [HH:]MM:SS[.ms]"),
        ({"codec_option": "x=1"}, "unknown option 'codec_option'"),
        ({"overwrite": "yes"}, "option 'overwrite' must be true or false"),
        ({"crf": [1]}, "option 'crf' must be a string or a number"),
        ({"model": "nope"}, "unknown model 'nope'"),
        ({"segments": 2, "start": 1}, "--start and --duration cannot be combined with segments"),
    ]
    for options, message in cases:
        status, body, _ = served.request("POST", "/v1/jobs", {"input": "in/c0.mp4", "options": options})
        assert status == 422, (options, body)
        assert body["error"].startswith(message), (options, body)
    status, body, _ = served.request("POST", "/v1/jobs", {"input": "in/missing.mp4"})
    assert status == 422 and body["error"] == "input 'in/missing.mp4' does not exist"


def test_a_job_that_fails_says_why_in_one_line(served: Served, root: Path) -> None:
    """A damaged input (no video in it) fails the job with the CLI's message, not a traceback."""
    (root / "in" / "text.mp4").write_bytes(b"not a video at all" * 100)
    job = served.submit({"input": "in/text.mp4", "output": "bad/o.mp4"})
    done = served.wait(job["id"])
    assert done["status"] == "failed"
    assert "text.mp4" in done["error"] and "Traceback" not in done["error"] and "\n" not in done["error"]
    assert not (root / "bad" / "o.mp4").exists()


def test_metrics_parse_and_show_jobs_frames_stages_and_the_provider(served: Served) -> None:
    """/metrics is Prometheus text that prometheus-client's parser reads, with the job counts,
    frames, stage seconds, the model's provider and precision, and readiness."""
    from prometheus_client.parser import text_string_to_metric_families

    job = served.submit({"input": "in/c3.mp4", "output": "metrics/o.mp4"})
    served.wait(job["id"])
    status, text, headers = served.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    jobs = {s.labels["status"]: s.value for s in families["vsr_jobs"].samples}
    assert set(jobs) == {"queued", "running", "done", "failed", "cancelled"} and jobs["done"] >= 1
    assert families["vsr_queue_depth"].samples[0].value >= 0
    assert families["vsr_frames"].samples[0].value >= 14
    stages = {s.labels["stage"]: s.value for s in families["vsr_stage_seconds"].samples}
    assert set(stages) == {"decode", "model", "colour", "encode"} and stages["model"] > 0
    info = families["vsr_model_info"].samples[0].labels
    assert info["model"] == "fast_x3" and (info["provider"], info["precision"]) in CPU_RUNS
    assert info["engine"] in ("onnxruntime", "openvino")
    assert families["vsr_ready"].samples[0].value == 1


def test_health_and_readiness(served: Served) -> None:
    """/healthz answers; /readyz says ready once the default model loaded."""
    assert served.request("GET", "/healthz")[0] == 200
    status, body, _ = served.request("GET", "/readyz")
    assert status == 200 and body == {"ready": True, "reason": "ready"}
    status, body, _ = served.request("GET", "/docs")
    assert status == 200 and b"swagger" in body.lower()


def test_the_before_after_page_of_a_finished_job(served: Served) -> None:
    """GET /v1/jobs/ID/compare: vsr compare's self-contained page for the job's output."""
    job = served.submit({"input": "in/c0.mp4", "output": "cmp/o.mp4"})
    served.wait(job["id"])
    status, page, headers = served.request("GET", f"/v1/jobs/{job['id']}/compare")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert page.count(b"data:image/png;base64,") >= 2 and b"bicubic" in page
    assert served.request("GET", "/v1/jobs/nope/compare")[0] == 404


def _long_clip(path: Path) -> Path:
    """A clip that takes the default model a few seconds on two cores: time to act on it."""
    return synth_video(path, n=300, size=(160, 90))


@pytest.mark.slow
def test_cancel_stops_a_running_job_and_removes_its_partial_output(tmp_path: Path) -> None:
    """DELETE on a running job: it ends cancelled within moments, with nothing under its
    output name and no temporary file; a queued job is cancelled before it starts; a
    finished job cannot be cancelled (409)."""
    root = tmp_path / "root"
    (root / "in").mkdir(parents=True)
    _long_clip(root / "in" / "long.mp4")
    s = Served(root, "--preset", "ultrafast")
    try:
        running = s.submit({"input": "in/long.mp4", "output": "o/run.mp4"})
        queued = s.submit({"input": "in/long.mp4", "output": "o/queued.mp4"})
        s.wait(running["id"], until=("running",), frames=5)
        status, body, _ = s.request("DELETE", f"/v1/jobs/{queued['id']}")
        assert status == 200 and body["status"] == "cancelled" and body["started"] is None
        status, body, _ = s.request("DELETE", f"/v1/jobs/{running['id']}")
        assert status == 200 and body["status"] == "cancelled", body
        assert not (root / "o" / "run.mp4").exists() and leftovers(root / "o") == []
        status, body, _ = s.request("DELETE", f"/v1/jobs/{running['id']}")
        assert status == 409 and "cancelled" in body["error"]
        assert s.request("DELETE", "/v1/jobs/0000")[0] == 404
    finally:
        s.stop()


@pytest.mark.slow
def test_a_sigkilled_service_runs_its_running_job_again_after_a_restart(tmp_path: Path) -> None:
    """SIGKILL while a job runs, then start the service again: the job runs from the start
    and ends done, its output complete, and no temporary file is left; a queued job waits
    its turn through the restart."""
    root = tmp_path / "root"
    (root / "in").mkdir(parents=True)
    _long_clip(root / "in" / "long.mp4")
    synth_video(root / "in" / "short.mp4", n=6)
    s = Served(root, "--preset", "ultrafast")
    job = s.submit({"input": "in/long.mp4", "output": "o/long.mp4"})
    queued = s.submit({"input": "in/short.mp4", "output": "o/short.mp4"})
    s.wait(job["id"], until=("running",), frames=5)
    assert leftovers(root / "o"), "the running job writes a hidden temporary file"
    s.proc.send_signal(signal.SIGKILL)
    s.stop()
    assert not (root / "o" / "long.mp4").exists()
    again = Served(root, "--preset", "ultrafast")
    try:
        done = again.wait(job["id"], timeout=120)
        assert done["status"] == "done" and done["attempts"] == 2, done
        assert again.wait(queued["id"])["status"] == "done"
        assert leftovers(root / "o") == []
        frames, _ = decoded(root / "o" / "long.mp4")
        assert len(frames) == 300
        assert "queued again" in again.output()
    finally:
        again.stop()


@pytest.mark.slow
def test_sigterm_lets_the_running_job_finish_and_exits_0(tmp_path: Path) -> None:
    """SIGTERM: the service stops taking jobs (503, /readyz 503 while it drains), the running
    job finishes within the grace period, a queued one stays queued, and the process
    exits 0."""
    root = tmp_path / "root"
    (root / "in").mkdir(parents=True)
    _long_clip(root / "in" / "long.mp4")  # still running when SIGTERM comes, however fast the engine
    synth_video(root / "in" / "mid.mp4", n=60, size=(160, 90))
    s = Served(root, "--preset", "ultrafast", "--grace", "60")
    try:
        job = s.submit({"input": "in/long.mp4", "output": "o/a.mp4"})
        queued = s.submit({"input": "in/mid.mp4", "output": "o/b.mp4"})
        s.wait(job["id"], until=("running",), frames=1)
        s.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while s.request("GET", "/readyz")[0] != 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        status, body, _ = s.request("POST", "/v1/jobs", {"input": "in/mid.mp4", "output": "o/c.mp4"})
        assert status == 503 and "stopping" in body["error"]
        assert s.proc.wait(timeout=120) == 0, s.output()
    finally:
        s.stop()
    db = sqlite3.connect(root / ".vsr" / "jobs.sqlite")
    states = dict(db.execute("SELECT id, status FROM jobs").fetchall())
    assert states == {job["id"]: "done", queued["id"]: "queued"}
    assert (root / "o" / "a.mp4").is_file() and leftovers(root / "o") == []


@pytest.mark.slow
def test_sigterm_past_the_grace_period_queues_the_running_job_again(tmp_path: Path) -> None:
    """A job still running when the grace period ends is stopped, its temporary file removed,
    and put back in the queue; the process still exits 0, and the next start finishes it."""
    root = tmp_path / "root"
    (root / "in").mkdir(parents=True)
    _long_clip(root / "in" / "long.mp4")
    s = Served(root, "--preset", "ultrafast", "--grace", "0.2")
    try:
        job = s.submit({"input": "in/long.mp4", "output": "o/long.mp4"})
        s.wait(job["id"], until=("running",), frames=5)
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=60) == 0, s.output()
    finally:
        s.stop()
    db = sqlite3.connect(root / ".vsr" / "jobs.sqlite")
    assert db.execute("SELECT status FROM jobs").fetchall() == [("queued",)]
    assert leftovers(root / "o") == [] and not (root / "o" / "long.mp4").exists()
    again = Served(root, "--preset", "ultrafast")
    try:
        assert again.wait(job["id"])["status"] == "done"
    finally:
        again.stop()


@pytest.mark.slow
def test_a_job_in_segments_runs_split_and_equals_the_plain_job(
    served: Served, root: Path, tmp_path: Path
) -> None:
    """`segments` in a job's options: the file is cut at keyframes, the parts run and are
    joined, and the frames equal a job without segments."""
    synth_video(root / "in" / "gop.mp4", n=24, options={"g": "8", "keyint_min": "8", "sc_threshold": "0"})
    split = served.submit(
        {"input": "in/gop.mp4", "output": "seg/split.mp4", "options": {"segments": 3, "codec": "ffv1"}}
    )
    plain = served.submit({"input": "in/gop.mp4", "output": "seg/plain.mp4", "options": {"codec": "ffv1"}})
    done = served.wait(split["id"])
    assert done["status"] == "done", done
    assert done["figures"]["segments"] == 3
    assert served.wait(plain["id"])["status"] == "done"
    _same_frames(root / "seg" / "split.mp4", root / "seg" / "plain.mp4")
    assert not (root / ".vsr" / "work" / split["id"]).exists()


@pytest.mark.slow
def test_a_sigkilled_job_in_segments_resumes_from_its_finished_segments(tmp_path: Path) -> None:
    """SIGKILL after some segments of a job are done: the restarted service keeps them (the
    job's work folder under the state folder) and runs only the rest; the output equals a
    job without segments, and the work folder is gone."""
    root = tmp_path / "root"
    (root / "in").mkdir(parents=True)
    synth_video(
        root / "in" / "gop.mp4",
        n=240,
        size=(160, 90),
        options={"g": "30", "keyint_min": "30", "sc_threshold": "0"},
    )
    s = Served(root, "--preset", "ultrafast", "--codec", "ffv1")
    job = s.submit({"input": "in/gop.mp4", "output": "o/split.mp4", "options": {"segments": 8}})
    deadline = time.monotonic() + 120
    while (s.job(job["id"])["progress"].get("segments_done") or 0) < 2:
        assert time.monotonic() < deadline, s.output()
        time.sleep(0.02)
    s.proc.send_signal(signal.SIGKILL)
    s.stop()
    done_before = json.loads((root / ".vsr" / "work" / job["id"] / "manifest.json").read_text())
    kept = [g["index"] for g in done_before["segments"] if g["status"] == "done"]
    assert 2 <= len(kept) < 8
    again = Served(root, "--preset", "ultrafast", "--codec", "ffv1")
    try:
        done = again.wait(job["id"], timeout=180)
        assert done["status"] == "done", done
        plain = again.submit({"input": "in/gop.mp4", "output": "o/plain.mp4"})
        assert again.wait(plain["id"], timeout=180)["status"] == "done"
    finally:
        again.stop()
    _same_frames(root / "o" / "split.mp4", root / "o" / "plain.mp4")
    assert not (root / ".vsr" / "work" / job["id"]).exists() and leftovers(root / "o") == []
    assert f"{8 - len(kept)} segment(s) to run" in again.output(), again.output()
    assert "resumes from the segments finished" in again.output()


@pytest.mark.slow
def test_require_gpu_without_cuda_is_one_line_and_status_2(tmp_path: Path) -> None:
    """`--require-gpu` on a machine without CUDA: `upscale` and `live` exit 2 with one line,
    never a silent CPU run; `serve` answers but is not ready (503, with the reason) and
    refuses jobs."""
    from helpers import assert_user_error, run_process

    clip = synth_video(tmp_path / "in.mp4", n=4)
    for command in (["upscale", clip, tmp_path / "o.mp4"], ["live", clip, tmp_path / "l.mkv"]):
        r = run_process(*command, "--require-gpu", "--device", "cpu")
        assert_user_error(r.returncode, r.stderr, mentions="--require-gpu")
        assert not (tmp_path / "o.mp4").exists()
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA: the serve half needs a machine without it")
    root = tmp_path / "root"
    (root / "in").mkdir(parents=True)
    shutil.copy(clip, root / "in" / "a.mp4")
    s = Served(root, "--require-gpu")
    try:
        status, body, _ = s.request("GET", "/readyz")
        assert status == 503 and not body["ready"] and "--require-gpu" in body["reason"]
        status, body, _ = s.request("POST", "/v1/jobs", {"input": "in/a.mp4"})
        assert status == 503 and "--require-gpu" in body["error"]
    finally:
        s.stop()


@pytest.mark.slow
def test_the_web_page_lists_jobs_and_a_job_submitted_there_reaches_done(served: Served, root: Path) -> None:
    """In headless Chromium: the page renders the job list, and a job submitted with its form
    appears and reaches done (skipped without chromium, chromedriver and selenium)."""
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.binary_location = shutil.which("chromium") or ""
    driver = webdriver.Chrome(options=opts, service=DriverService(shutil.which("chromedriver")))
    try:
        driver.get(f"http://127.0.0.1:{served.port}/")
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs tr"))
        assert "vsr jobs" in driver.title
        driver.find_element(By.ID, "in").send_keys("in/c2.mp4")
        driver.find_element(By.ID, "out").send_keys("web/o.mp4")
        driver.find_element(By.CSS_SELECTOR, "#submit button[type=submit]").click()
        WebDriverWait(driver, 20).until(lambda d: "queued job" in d.find_element(By.ID, "message").text)
        job_id = driver.find_element(By.ID, "message").text.split()[-1]
        WebDriverWait(driver, 60).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, f"#jobs tr[data-id='{job_id}'][data-status='done']")
        )
        row = driver.find_element(By.CSS_SELECTOR, f"#jobs tr[data-id='{job_id}']")
        assert "web/o.mp4" in row.text and "Download" in row.text
    finally:
        driver.quit()
    assert (root / "web" / "o.mp4").is_file()


@pytest.mark.slow
def test_the_serve_command_without_the_extra_says_what_to_install(tmp_path: Path) -> None:
    """Without FastAPI (the `serve` extra), `vsr serve` is one line naming the extra."""
    code = (
        "import sys; sys.modules['fastapi'] = None; from vsr.app.cli import main; "
        f"sys.exit(main(['serve', '--root', {str(tmp_path)!r}]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 2 and "'serve' extra" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_job_records_are_plain_json(served: Served) -> None:
    """A job record round-trips through JSON with the documented fields."""
    job = served.submit({"input": "in/c0.mp4", "output": "json/o.mp4"})
    record = served.wait(job["id"])
    assert set(record) >= {
        "id",
        "status",
        "input",
        "output",
        "options",
        "progress",
        "error",
        "model",
        "provider",
        "engine",
        "precision",
        "created",
        "started",
        "finished",
    }
    assert set(record["progress"]) == {"frames", "total", "fps", "eta_s"}
    assert json.loads(json.dumps(record)) == record


def test_jobs_asking_for_different_engines_get_different_models() -> None:
    """The service's model pool loads one model per (file, device, engine, precision, tile,
    threads): a job that asks for onnxruntime and one that asks for OpenVINO do not share."""
    pytest.importorskip("openvino", reason="OpenVINO is not installed")
    from vsr.app.serve.runner import ModelPool
    from vsr.options import Device, Engine, ModelOptions

    pool = ModelPool(max_batch=1)
    try:
        base = ModelOptions(model="fast_x3", device=Device.CPU)
        ort = pool.get(dataclasses.replace(base, engine=Engine.ONNXRUNTIME))
        ov = pool.get(dataclasses.replace(base, engine=Engine.OPENVINO))
        assert (ort.runtime, ov.runtime) == ("onnxruntime", "openvino")
        assert pool.get(dataclasses.replace(base, engine=Engine.ONNXRUNTIME)) is ort
    finally:
        pool.close()
