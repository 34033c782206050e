"""Scale-out on a real local Ray cluster (2 CPUs; 2 fake GPUs exercise GPU scheduling).

Skipped when Ray is not installed (it is the optional extra `vsr[ray]`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import GOP12, LOSSLESS, ROOT, audio_packets, frame_hashes, upscale_lossless, video_pts

from vsr import ModelOptions, ScaleOutStats, SinkOptions, SourceOptions
from vsr.lab.media import synth_video
from vsr.scaleout import RayExecutor, ScaleOutJob, ScaleOutOptions

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    """One local Ray for this module: 2 CPUs and 2 (fake) GPUs."""
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def run_job(src: Path, out: Path, executor: RayExecutor, segments: int = 4) -> ScaleOutJob:
    job = ScaleOutJob(
        SourceOptions(str(src)),
        ModelOptions(),
        SinkOptions(str(out), crf=0, preset="ultrafast"),
        ScaleOutOptions(segments=segments, keep_work=True),
        executor=executor,
    )
    job.run()
    return job


@pytest.mark.slow
def test_actors_on_fake_gpus_equal_one_machine(tmp_path: Path, cluster: None) -> None:
    src = synth_video(tmp_path / "in.mp4", n=48, options=GOP12, vfr=True)
    single, out = tmp_path / "single.mp4", tmp_path / "out.mp4"
    upscale_lossless(src, single)
    executor = RayExecutor(gpus_per_worker=1, max_attempts=2)
    job = run_job(src, out, executor)
    assert executor.workers == 2  # one actor per GPU slot
    assert frame_hashes(out) == frame_hashes(single)
    assert video_pts(out) == video_pts(src)
    assert audio_packets(out) == audio_packets(src)
    assert job.stats().scale_out == ScaleOutStats(segments=4) and "(Ray)" in job.stats().provider
    manifest = json.loads((tmp_path / "out.mp4.vsr-work" / "manifest.json").read_text())
    assert all(s["status"] == "done" and s["attempts"] == 1 for s in manifest["segments"])


@pytest.mark.slow
def test_fractional_gpus_put_two_workers_on_a_card(tmp_path: Path, cluster: None) -> None:
    src = synth_video(tmp_path / "in.mkv", n=36, options=GOP12)
    executor = RayExecutor(gpus_per_worker=0.5, cpus_per_worker=0.5)
    out = tmp_path / "out.mkv"
    run_job(src, out, executor, segments=3)
    assert executor.workers == 4
    assert video_pts(out) == video_pts(src)


@pytest.mark.slow
def test_too_few_gpus_is_a_usage_error(tmp_path: Path, cluster: None) -> None:
    from vsr import UsageError

    src = synth_video(tmp_path / "in.mp4", n=24, options=GOP12)
    with pytest.raises(UsageError, match="has 2 GPU"):
        run_job(src, tmp_path / "o.mp4", RayExecutor(gpus_per_worker=3))
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.slow
def test_cli_starts_a_local_ray(tmp_path: Path) -> None:
    """`--segments` without --ray-address: vsr starts (and stops) its own local Ray."""
    src = synth_video(tmp_path / "in.mp4", n=24, options=GOP12)
    out = tmp_path / "out.mp4"
    # Relative paths, as typed in a shell: Ray workers run in directories of their own.
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vsr",
            "upscale",
            "in.mp4",
            "out.mp4",
            *LOSSLESS,
            "--segments",
            "2",
            "--gpus-per-worker",
            "0",
            "--workers",
            "2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1].endswith("-> out.mp4")
    assert "(Ray)" in r.stderr and "2 segments" in r.stderr
    assert "WARNING" not in r.stderr and "Traceback" not in r.stderr
    assert video_pts(out) == video_pts(src)


@pytest.mark.slow
def test_without_a_count_two_segments_per_worker(tmp_path: Path, cluster: None) -> None:
    src = synth_video(tmp_path / "in.mp4", n=60, options=GOP12)
    out = tmp_path / "out.mp4"
    job = ScaleOutJob(
        SourceOptions(str(src)),
        ModelOptions(),
        SinkOptions(str(out), crf=0, preset="ultrafast"),
        ScaleOutOptions(executor="ray", workers=2, gpus_per_worker=0),
    )
    stats = job.run()
    assert stats.scale_out == ScaleOutStats(segments=4) and stats.frames == 60
    assert video_pts(out) == video_pts(src)


@pytest.mark.slow
def test_a_node_removed_mid_job_still_completes(tmp_path: Path) -> None:
    """Two worker nodes; one is removed while both are busy: its segment runs again elsewhere.
    (In a subprocess: ray.cluster_utils.Cluster needs a process of its own. The fast tier:
    what is tested is the scheduling, and the default model made this the suite's slowest.)"""
    src = synth_video(tmp_path / "in.mp4", n=240, size=(320, 180), options=GOP12, bframes=False)
    script = textwrap.dedent(f"""
        import logging, sys
        import ray
        from ray.cluster_utils import Cluster
        from vsr import ModelOptions, ScaleOutStats, SinkOptions, SourceOptions
        from vsr.scaleout import RayExecutor, ScaleOutJob, ScaleOutOptions
        logging.basicConfig(level=logging.WARNING)
        cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 0}})
        nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        job = ScaleOutJob(SourceOptions({str(src)!r}), ModelOptions(quality="fast"),
                          SinkOptions({str(tmp_path / "out.mp4")!r}, preset="ultrafast"),
                          ScaleOutOptions(segments=4),
                          executor=RayExecutor(gpus_per_worker=0, workers=2))
        removed = False
        for snap in job.progress():
            if not removed and len(job._running) == 2:
                cluster.remove_node(nodes[1])
                removed = True
        print("FRAMES", job.stats().frames, "REMOVED", removed)
        ray.shutdown()
        cluster.shutdown()
    """)
    r = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "FRAMES 240 REMOVED True" in r.stdout
    assert "its worker was lost" in r.stderr
    assert video_pts(tmp_path / "out.mp4") == video_pts(src)


@pytest.mark.slow
def test_worker_errors_come_back_as_one_line(tmp_path: Path, cluster: None) -> None:
    """A worker that cannot load its model fails the start with the worker's own message; a
    segment that fails on a worker comes back as that segment's failure, the actor stays."""
    from vsr import VsrError
    from vsr.scaleout.executors import SegmentFailed
    from vsr.scaleout.worker import SegmentTask

    broken = RayExecutor(workers=1, gpus_per_worker=0)
    with pytest.raises(VsrError, match="failed to start: cannot open model"):
        broken.start(ModelOptions(model=str(tmp_path / "missing.onnx")), str(tmp_path), tmp_path)
    broken.close()

    src = synth_video(tmp_path / "in.mp4", n=12, options=GOP12)
    executor = RayExecutor(workers=1, gpus_per_worker=0)
    executor.start(ModelOptions(), str(src), tmp_path)
    try:
        task = SegmentTask(
            0,
            SourceOptions(str(tmp_path / "gone.mp4"), video_only=True),
            SinkOptions(str(tmp_path / "seg.mp4"), audio="none"),
            ModelOptions(),
        )
        events = [e for e in executor.run([task]) if isinstance(e, SegmentFailed)]
        assert len(events) == 1 and "no such file" in events[0].error
        assert "Traceback" not in events[0].error and len(events[0].error.splitlines()) == 1
    finally:
        executor.close()


@pytest.mark.slow
def test_losing_every_node_fails_cleanly_and_keeps_finished_segments(tmp_path: Path) -> None:
    """The only worker node goes away and nothing can replace it: the job ends with a clear
    error after the start timeout instead of waiting forever; the manifest keeps the rest.
    (The fast tier, as above: what is tested is the scheduling. The timeout, which also bounds
    the first worker's start, is 8 s: a worker importing vsr and onnxruntime took over 3 s on
    a busy 2-core machine.)"""
    src = synth_video(tmp_path / "in.mp4", n=240, size=(320, 180), options=GOP12, bframes=False)
    out = tmp_path / "out.mp4"
    script = textwrap.dedent(f"""
        import ray
        from ray.cluster_utils import Cluster
        from vsr import ModelOptions, SinkOptions, SourceOptions, VsrError
        from vsr.scaleout import RayExecutor, ScaleOutJob, ScaleOutOptions
        cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 0}})
        node = cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        job = ScaleOutJob(SourceOptions({str(src)!r}), ModelOptions(quality="fast"),
                          SinkOptions({str(out)!r}, preset="ultrafast"), ScaleOutOptions(segments=4),
                          executor=RayExecutor(gpus_per_worker=0, workers=1, start_timeout=8,
                                               max_attempts=2))
        try:
            for snap in job.progress():
                if snap.segments_done >= 1 and node is not None:
                    cluster.remove_node(node)
                    node = None
        except VsrError as exc:
            print("ERROR", exc)
        ray.shutdown()
        cluster.shutdown()
    """)
    r = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ERROR" in r.stdout and "no Ray worker could be started" in r.stdout, r.stdout
    manifest = json.loads((tmp_path / "out.mp4.vsr-work" / "manifest.json").read_text())
    assert any(s["status"] == "done" for s in manifest["segments"])
    assert not out.exists()
