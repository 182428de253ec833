"""Folder runs at scale: batched backbone passes with decoding in DataLoader workers equal the
sequential run, and `torchrun --nproc_per_node 2` (gloo, CPU) shards the job list so that the
union of the outputs equals a single-process run; both stay resumable."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

W = ["--weights", "tiny:random", "--no-progress", "--threads", "1"]


def _folder(root: Path, n: int = 7) -> Path:
    rng = np.random.default_rng(0)
    sizes = [(30, 44), (64, 64), (20, 90), (30, 44), (50, 33), (64, 64), (30, 44)]
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        path = root / ("sub" if i % 3 == 0 else "") / f"img{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(path)
    (root / "broken.png").write_bytes(b"not a png")
    return root


def _segment(*args, env=None, torchrun: int = 0) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "clipseg.cli", "segment", *map(str, args), *W]
    if torchrun:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={torchrun}",
               f"--master_port={port}", "-m", "clipseg.cli", "segment", *map(str, args), *W]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def _files(out: Path) -> dict[str, Path]:
    return {str(p.relative_to(out)): p for p in sorted(out.rglob("*")) if p.is_file() and p.name != "prompts.json"}


def _same_outputs(a: Path, b: Path) -> None:
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    for name in fa:
        if name.endswith(".npy"):
            assert np.abs(np.load(fa[name]) - np.load(fb[name])).max() < 1e-5, name
        elif name.endswith(".rle.json"):
            ja, jb = json.loads(fa[name].read_text()), json.loads(fb[name].read_text())
            assert [x["prompt"] for x in ja["annotations"]] == [x["prompt"] for x in jb["annotations"]]
            assert abs(ja["annotations"][0]["mean_probability"] - jb["annotations"][0]["mean_probability"]) < 1e-5


ARGS = ["-p", "a cat", "-p", "grass", "--prob", "npy", "--rle", "--labels", "--overlay"]


def test_batched_run_with_workers_equals_the_sequential_run(tmp_path):
    root = _folder(tmp_path / "in")
    seq = _segment(root, *ARGS, "-o", tmp_path / "seq", "--workers", "0", "--batch-size", "1")
    bat = _segment(root, *ARGS, "-o", tmp_path / "bat", "--workers", "2", "--batch-size", "4")
    for r in (seq, bat):
        assert r.returncode == 1, r.stderr  # the broken file fails, the rest is done
        assert "8 image(s): 7 segmented, 0 skipped (outputs exist), 1 failed" in r.stderr
        assert "broken.png" in r.stderr.splitlines()[-1]
    _same_outputs(tmp_path / "seq", tmp_path / "bat")
    again = _segment(root, *ARGS, "-o", tmp_path / "bat", "--workers", "2", "--batch-size", "4")
    assert "0 segmented, 7 skipped" in again.stderr


def test_two_torchrun_ranks_on_gloo_equal_one_process_and_resume(tmp_path):
    root = _folder(tmp_path / "in")
    single = _segment(root, *ARGS, "-o", tmp_path / "one", "--workers", "0")
    assert single.returncode == 1
    two = _segment(root, *ARGS, "-o", tmp_path / "two", "--workers", "1", torchrun=2)
    assert two.returncode != 0  # the broken file fails on its rank: the run reports it
    assert "8 image(s): 7 segmented, 0 skipped (outputs exist), 1 failed" in two.stderr, two.stderr[-2000:]
    assert two.stderr.count("image(s):") == 1  # one report, by rank 0, for all ranks
    _same_outputs(tmp_path / "one", tmp_path / "two")
    legend = json.loads((tmp_path / "two" / "prompts.json").read_text())
    assert len(legend["sets"]) == 1
    again = _segment(root, *ARGS, "-o", tmp_path / "two", "--workers", "1", torchrun=2)
    assert "0 segmented, 7 skipped" in again.stderr


def test_shards_partition_the_jobs():
    from clipseg.runs.loader import Shard

    jobs = list(range(11))
    parts = [Shard(r, 3).take(jobs) for r in range(3)]
    assert sorted(sum(parts, [])) == jobs and all(len(p) in (3, 4) for p in parts)
    with pytest.raises(ValueError):
        from clipseg.runs.loader import shard_from_env

        os.environ["WORLD_SIZE"], os.environ["RANK"] = "2", "5"
        try:
            shard_from_env()
        finally:
            del os.environ["WORLD_SIZE"], os.environ["RANK"]


def test_segment_with_the_onnx_backend_equals_torch(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import torch

    from clipseg.export import export_onnx
    from clipseg import load as load_model

    root = _folder(tmp_path / "in", n=4)
    model = load_model("tiny:random")
    export_onnx(model, tmp_path / "onnx", input_size=model.config.input_size)
    args = ["-p", "a cat", "-p", "grass", "--prob", "npy", "--rle"]
    ref = _segment(root, *args, "-o", tmp_path / "torch", "--workers", "0")
    cmd = [sys.executable, "-m", "clipseg.cli", "segment", str(root), *args, "-o", str(tmp_path / "ort"),
           "--backend", "onnx", "--weights", str(tmp_path / "onnx"), "--no-progress", "--workers", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert "5 image(s): 4 segmented, 0 skipped (outputs exist), 1 failed" in r.stderr, r.stderr
    assert ref.returncode == r.returncode == 1
    fa, fb = _files(tmp_path / "torch"), _files(tmp_path / "ort")
    assert sorted(fa) == sorted(fb)
    for name in fa:
        if name.endswith(".npy"):
            assert np.abs(np.load(fa[name]) - np.load(fb[name])).max() < 1e-4, name
    assert torch.get_num_threads() >= 1
