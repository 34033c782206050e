"""scripts/bench/bench.py runs end to end on a tiny clip and writes every row (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_script


@pytest.mark.slow
def test_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = run_script("bench/bench.py", "--size", "64x48", "--frames", "4", "--device", "cpu", "--json", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| **vsr end to end** |" in proc.stdout
    rows = {r["key"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"decode", "model", "encode", "vsr", "free", "bicubic", "opencv", "reference"}
    for key, row in rows.items():
        if key == "opencv" and row["note"].startswith("n/a"):
            continue  # cv2.dnn may not run every model; the row says why
        assert row["frames"] == 4, row
        assert row["fps"] and row["fps"] > 0, row
    assert rows["vsr"]["peak_rss_mb"] > 0
    assert set(rows["vsr"]["extra"]["stages"]) >= {"decode", "model", "encode"}


@pytest.mark.slow
def test_bench_runs_a_chosen_subset_of_anchors_at_batch_auto(tmp_path: Path) -> None:
    """--anchors and --batch auto (the GPU runs use both)."""
    out = tmp_path / "bench.json"
    proc = run_script(
        "bench/bench.py",
        "--size",
        "64x48",
        "--frames",
        "3",
        "--device",
        "cpu",
        "--batch",
        "auto",
        "--anchors",
        "a",
        "--json",
        out,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads(out.read_text())
    assert {r["key"] for r in rec["rows"]} == {"decode", "model", "encode", "vsr", "free", "bicubic"}
    assert rec["settings"]["batch"] == 1  # auto on the CPU
    assert rec["ratios"]["vsr_fps_over_encode_fps"] > 0


@pytest.mark.slow
def test_bench_engines_prints_every_variant_with_its_ratio_and_the_cpu(tmp_path: Path) -> None:
    """scripts/bench/bench_engines.py (model only, one round, the fast tier) prints a row per
    engine and precision asked for, what ran, and the CPU's flags; JSON has the same rows."""
    from vsr.model.openvino_engine import version

    variants = "onnxruntime:fp32,openvino:fp32" if version() else "onnxruntime:fp32,auto:auto"
    out = tmp_path / "engines.json"
    proc = run_script(
        "bench/bench_engines.py",
        "model",
        "--tiers",
        "fast",
        "--repeat",
        "1",
        "--calls",
        "1",
        "--variants",
        variants,
        "--json",
        out,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (
        "CPU: " in proc.stdout and "| fast | fast_x3 | onnxruntime:fp32 | onnxruntime fp32 |" in proc.stdout
    )
    rows = json.loads(out.read_text())["model"]
    assert [r["variant"] for r in rows] == variants.split(",") and rows[0]["ratio"] == [1.0]
