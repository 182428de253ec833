"""The benchmark scripts still run (tiny models, one repeat). No timing assertions."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _run(script, *args, timeout=600):
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_bench_inference_tiny(tmp_path):
    pytest.importorskip("transformers")
    _run("bench_inference.py", "--tiny", "--repeats", "1", "--threads", "1", "--out", str(tmp_path))
    res = json.loads((tmp_path / "inference.json").read_text())
    assert res["parity"]["ok"]
    assert set(res["prompts"]) == {"1", "5", "20"}
    for r in res["prompts"].values():
        assert {"hf", "ours_predictor_cold", "ours_predictor_warm", "ours_raw_cold", "ours_raw_warm"} <= set(r)
    assert set(res["batches"]) == {"1", "8", "32"}
    assert "memory" in res["batches"]["8"]["ours"] and "error" not in res["batches"]["8"]["ours"]["memory"]
    if "skipped" not in res["onnx"]:
        assert res["onnx"]["ok"]
    assert res["low_precision"]["fp32"]["mask_iou_vs_fp32"] == 1.0
    md = (tmp_path / "inference.md").read_text()
    assert "| prompts | HF |" in md and "| batch |" in md


@pytest.mark.slow
def test_bench_training_tiny(tmp_path):
    _run("bench_training.py", "--tiny", "--batch", "4", "--iterations", "1", "--warmup", "0", "--threads", "1",
         "--device", "cpu", "--out", str(tmp_path))
    res = json.loads((tmp_path / "training.json").read_text())
    assert [r["precision"] for r in res["runs"]] == ["float32", "autocast bfloat16"]
    assert all(r["iterations_per_s"] > 0 for r in res["runs"])
    assert "| precision | it/s |" in (tmp_path / "training.md").read_text()


@pytest.mark.slow
def test_bench_gpu_tiny_runs_on_cpu(tmp_path):
    """The GPU batch benchmark's smoke run (CPU, bf16 for the half-precision cases)."""
    pytest.importorskip("transformers")
    _run("bench_gpu.py", "--tiny", "--device", "cpu", "--repeats", "1", "--batches", "1", "4", "--out", str(tmp_path))
    res = json.loads((tmp_path / "gpu.json").read_text())
    assert res["parity"]["ok"] and set(res["batches"]) == {"1", "4"}
    row = res["batches"]["4"]
    assert {"hf_fp32", "ours_fp32", "ours_bf16_autocast"} <= set(row)
    assert 0.9 < row["ours_bf16_autocast"]["mask_iou_vs_fp32"] <= 1.0
    assert "Goal (batch 4)" in (tmp_path / "gpu.md").read_text()
