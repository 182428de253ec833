"""Hostile input on standard input, the HTTP service and folder-run workers: one clear error
each, bounded memory, no hang, no orphaned processes."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from clipseg.weights.registry import ASSETS_DIR
from hostile_files import open_slow_bodies

SCENE = ASSETS_DIR / "world" / "example-scene.png"
CLI = [sys.executable, "-m", "clipseg"]


def _run(args, stdin=None, input_bytes=None, timeout=120):
    return subprocess.run([*CLI, *args], input=input_bytes, stdin=stdin, capture_output=True, timeout=timeout)


def _peak_rss_mib(pid_status: str) -> float:
    for line in pid_status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---------------------------------------------------------------- standard input


def test_zeros_on_standard_input_are_refused_from_their_first_bytes(tmp_path):
    """`head -c 1500000000 /dev/zero | clipseg segment - -p cat`: refused after 64 KiB."""
    proc = subprocess.Popen([*CLI, "segment", "-", "-p", "cat", "-w", "world", "-o", str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sent = 0
    chunk = bytes(1 << 20)
    try:
        while sent < 1500 << 20:
            proc.stdin.write(chunk)
            sent += len(chunk)
    except BrokenPipeError:
        pass
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert b"standard input is not an image" in err and b"Traceback" not in err
    assert sent < 200 << 20  # it stopped reading long before the 1.5 GB


def test_a_long_stream_after_an_image_header_is_cut_at_the_limit(tmp_path):
    from clipseg.cli.inputs import MAX_STDIN_IMAGE_BYTES

    data = SCENE.read_bytes() + bytes(MAX_STDIN_IMAGE_BYTES)
    r = _run(["segment", "-", "-p", "cat", "-w", "world", "-o", str(tmp_path)], input_bytes=data)
    assert r.returncode == 2 and b"standard input holds more than 128 MiB" in r.stderr


def test_closed_stdin_and_a_doubled_dash_are_one_line(tmp_path):
    r = subprocess.run([*CLI, "segment", "-", "-p", "cat", "-w", "world"], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
    assert r.returncode == 2 and b"standard input is empty" in r.stderr
    code = ("import os, sys, subprocess; os.close(0); "
            f"sys.exit(subprocess.run({[*CLI, 'segment', '-', '-p', 'cat', '-w', 'world']!r}, stdin=None).returncode)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert r.returncode == 2 and b"standard input is closed" in r.stderr and b"Traceback" not in r.stderr
    r = _run(["segment", "-", "-", "-p", "cat"], input_bytes=SCENE.read_bytes())
    assert r.returncode == 2 and b"given more than once" in r.stderr


def test_a_huge_prompt_line_is_refused_without_tokenizing_it(tmp_path):
    t0 = time.perf_counter()
    r = _run(["segment", str(SCENE), "--prompts-file", "-", "-w", "world", "-o", str(tmp_path)],
             input_bytes=b"x" * (20 << 20) + b"\n")
    assert r.returncode == 2 and b"line 1 is longer than 1000 characters" in r.stderr
    assert time.perf_counter() - t0 < 30
    no_newline = _run(["segment", str(SCENE), "--prompts-file", "-", "-w", "world"], input_bytes=b"y" * (50 << 20))
    assert no_newline.returncode == 2 and b"longer than 1000" in no_newline.stderr


def test_too_many_prompts_are_refused_before_the_model_loads(tmp_path):
    lines = "\n".join(f"prompt {i}" for i in range(50_000)).encode()
    r = _run(["segment", str(SCENE), "--prompts-file", "-", "-w", "/nonexistent.safetensors"], input_bytes=lines)
    assert r.returncode == 2 and b"more than 1000 prompts" in r.stderr and b"cannot load" not in r.stderr


# ---------------------------------------------------------------- HTTP


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from clipseg import load
    from clipseg.server.app import create_app

    return TestClient(create_app(load("world")))


def test_nested_prompts_json_is_422(client):
    r = client.post("/segment", files={"image": ("s.png", SCENE.read_bytes())}, data={"prompts": "[" * 100_000})
    assert r.status_code == 422 and r.json()["error"] == "bad_prompt" and "nested too deeply" in r.json()["detail"]


def test_image_sha256_is_looked_up_as_it_is_checked(client):
    first = client.post("/segment", files={"image": ("s.png", SCENE.read_bytes())}, data={"prompt": "a heart"})
    sha = first.json()["image"]["sha256"]
    spaced = f"  {sha.upper()} "
    r = client.post("/segment", data={"image_sha256": spaced, "prompt": "a heart"})
    assert r.status_code == 200 and r.json()["image"]["cached"]
    r = client.post("/segment", files={"image": ("s.png", SCENE.read_bytes())},
                    data={"image_sha256": spaced, "prompt": "a heart"})
    assert r.status_code == 200


def test_a_relative_weights_path_is_not_shown(tmp_path, monkeypatch):
    from clipseg import build_clipseg, load, save_clipseg
    from clipseg.server.app import public_description

    monkeypatch.chdir(tmp_path)
    (tmp_path / "SECRETDIR").mkdir()
    save_clipseg(build_clipseg("tiny"), tmp_path / "SECRETDIR" / "model.safetensors")
    shown = json.dumps(public_description(load("SECRETDIR/model.safetensors")))
    assert "SECRETDIR" not in shown and "model.safetensors" in shown


def test_slow_bodies_cannot_hold_every_connection():
    """Slow clients over the connection limit are answered 503 and closed at once; a normal
    request is answered meanwhile."""
    pytest.importorskip("fastapi")
    import httpx

    from clipseg import load
    from clipseg.server import ServerSettings, create_app, serve_in_thread

    app = create_app(load("world"), ServerSettings(max_connections=8))
    with serve_in_thread(app) as url:
        host, port = url.rsplit("//", 1)[1].split(":")
        slow = open_slow_bodies(host, int(port), 20)  # headers, then a body that never comes
        time.sleep(0.5)
        t0 = time.perf_counter()
        r = httpx.get(url + "/health", timeout=10)
        assert r.status_code in (200, 503) and time.perf_counter() - t0 < 5
        for s in slow:
            s.close()
        time.sleep(0.5)
        assert httpx.get(url + "/health", timeout=10).status_code == 200


def test_repeated_accept_errors_are_logged_once_per_interval():
    from clipseg.server.runner import quiet_repeated_accept_errors

    f = quiet_repeated_accept_errors()
    assert quiet_repeated_accept_errors() is f  # added once
    records = [logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource",
                                 None, None) for _ in range(1000)]
    passed = sum(f.filter(r) for r in records)
    assert passed <= 1


# ---------------------------------------------------------------- folder-run workers


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
def test_workers_exit_when_the_run_is_killed(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    img = Image.open(SCENE)
    for i in range(400):
        img.save(src / f"{i:04d}.png")
    proc = subprocess.Popen([*CLI, "segment", str(src), "-p", "a heart", "-w", "world", "--workers", "2",
                             "-o", str(tmp_path / "o"), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    workers: list[int] = []
    while time.time() < deadline and len(workers) < 2:
        workers = _children(proc.pid)
        time.sleep(0.1)
    assert len(workers) >= 2, "the workers did not start"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 15
    alive = workers
    while time.time() < deadline and alive:
        alive = [w for w in alive if Path(f"/proc/{w}").exists() and "zombie" not in
                 Path(f"/proc/{w}/status").read_text().lower()]
        time.sleep(0.2)
    assert not alive, f"workers {alive} outlived the killed run"
