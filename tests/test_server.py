"""The HTTP service: segmentation answers, the image cache, limits, queue, timeouts,
health/metrics/OpenAPI, and that it keeps serving after errors."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the server extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx is needed to test the server")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from clipseg import MixedPrompt, Predictor, VisualPrompt, is_present  # noqa: E402
from clipseg.io import rle  # noqa: E402
from clipseg import load as load_model  # noqa: E402
from clipseg.server import ServerSettings, create_app, serve_in_thread  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def png(h=30, w=44, seed=0, mode="RGB") -> bytes:
    a = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def loaded():
    return load_model("tiny:random")


@pytest.fixture(scope="module")
def reference(loaded):
    return Predictor(loaded)


@pytest.fixture()
def client(loaded):
    app = create_app(loaded, ServerSettings(max_body_bytes=300_000, max_pixels=200_000, max_prompts=5, cache_size=2))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def post(c, image=None, prompts=("a cat",), **data):
    files = {"image": ("x.png", image, "image/png")} if image is not None else None
    return c.post("/segment", files=files, data={"prompt": list(prompts), **data})


# ---------------------------------------------------------------- answers


def test_json_answer_matches_the_predictor(client, reference):
    img = png()
    r = post(client, img, ["a cat", "a dog"], threshold="0.4", outputs="rle,mask_png,prob_png", request_id="req-7")
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["request_id"] == "req-7" and r.headers["x-request-id"] == "req-7"
    assert j["image"]["width"] == 44 and j["image"]["height"] == 30 and j["image"]["cached"] is False
    import hashlib

    assert j["image"]["sha256"] == hashlib.sha256(img).hexdigest() == r.headers["x-image-sha256"]
    probs = reference.segment(img, ["a cat", "a dog"])
    assert [x["prompt"] for x in j["results"]] == ["a cat", "a dog"]
    for k, res in enumerate(j["results"]):
        m = probs[k] >= 0.4
        assert np.array_equal(rle.decode(res["segmentation"]), m)
        assert res["area"] == int(m.sum()) and res["bbox"] == rle.bbox(m)
        assert res["area_fraction"] == pytest.approx(m.mean()) and res["present"] is is_present(probs[k], 0.4)
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(res["mask_png"]))))
        assert np.array_equal(mask > 0, m)
        p16 = Image.open(io.BytesIO(base64.b64decode(res["prob_png"])))
        assert p16.mode == "I;16"
        assert np.abs(np.asarray(p16, dtype=np.float64) / 65535 - probs[k]).max() < 2e-4


def test_png_answers(client, reference):
    img = png(seed=1)
    probs = reference.segment(img, ["a cat", "a dog"])
    r = post(client, img, ["a cat"], format="png", threshold="0.5")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))) > 0, probs[0] >= 0.5)
    r = post(client, img, ["a cat"], format="png", kind="prob")
    p = Image.open(io.BytesIO(r.content))
    assert p.mode == "I;16" and np.abs(np.asarray(p, dtype=np.float64) / 65535 - probs[0]).max() < 2e-4
    r = post(client, img, ["a cat", "a dog"], format="png", kind="labels", none_threshold="0.0")
    lab = Image.open(io.BytesIO(r.content))
    assert lab.mode == "P" and np.array_equal(np.asarray(lab), probs.argmax(0) + 1)
    r = post(client, img, ["a cat", "a dog"], format="png", kind="mask")
    assert r.status_code == 422 and "kind=labels" in r.json()["detail"]


def support() -> tuple[bytes, bytes]:
    mask = np.zeros((40, 40), np.uint8)
    mask[5:20, 10:35] = 255
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, format="PNG")
    return png(40, 40, seed=3), buf.getvalue()


def prob(result: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(result["prob_png"]))), dtype=np.float64) / 65535


def test_prompts_as_json_field_and_visual_prompt(client, reference):
    img, (sup, mask) = png(seed=2), support()
    r = client.post("/segment", files={"image": ("x.png", img), "support_image": ("s.png", sup),
                                       "support_mask": ("m.png", mask)},
                    data={"prompts": json.dumps(["a cat"]), "outputs": "prob_png"})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["prompt"] for x in res] == ["a cat", "<visual prompt>"]
    expected = reference.segment(img, [VisualPrompt(sup, mask)])[0]
    assert np.abs(prob(res[1]) - expected).max() < 1e-3
    r = client.post("/segment", files={"image": ("x.png", img), "support_image": ("s.png", sup)})
    assert r.status_code == 422 and r.json()["error"] == "bad_prompt"


def test_text_weight_mixes_the_visual_prompt_and_the_cache_keeps_them_apart(client, reference):
    img, (sup, mask) = png(seed=7), support()
    visual = VisualPrompt(sup, mask)
    texts, mixed = ["a cat", "a dog"], [MixedPrompt("a cat", visual, 0.3), MixedPrompt("a dog", visual, 0.3)]
    expected, pure = reference.segment(img, mixed), reference.segment(img, [*texts, visual])
    files = {"support_image": ("s.png", sup), "support_mask": ("m.png", mask)}
    # plain text first: the image features (and the text embeddings) are cached
    plain = post(client, img, texts, outputs="prob_png").json()
    r = client.post("/segment", files=files, data={"image_sha256": plain["image"]["sha256"], "prompt": texts,
                                                   "text_weight": "0.3", "outputs": "prob_png"})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["image"]["cached"] is True and j["text_weight"] == 0.3
    assert [x["prompt"] for x in j["results"]] == ["a cat + <visual prompt> (w=0.3)", "a dog + <visual prompt> (w=0.3)"]
    for k, res in enumerate(j["results"]):  # one result per text, the mix, not a cached text or visual answer
        assert np.abs(prob(res) - expected[k]).max() < 2e-4
        assert np.abs(prob(res) - prob(plain["results"][k])).max() > 0.01
        assert np.abs(prob(res) - pure[2]).max() > 0.01
    again = post(client, None, texts, image_sha256=plain["image"]["sha256"], outputs="prob_png").json()
    assert again["text_weight"] is None and [x["prompt"] for x in again["results"]] == texts
    for k in range(2):
        assert np.abs(prob(again["results"][k]) - pure[k]).max() < 2e-4
    # one text + a visual prompt, mixed: one map, so format=png works
    r = client.post("/segment", files={"image": ("x.png", img), **files},
                    data={"prompt": ["a cat"], "text_weight": "0.3", "format": "png", "kind": "prob"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    got = np.asarray(Image.open(io.BytesIO(r.content)), dtype=np.float64) / 65535
    assert np.abs(got - expected[0]).max() < 2e-4


def test_text_weight_errors_are_422_json(client):
    img, (sup, mask) = png(), support()
    files = {"image": ("x.png", img), "support_image": ("s.png", sup), "support_mask": ("m.png", mask)}
    for w in ("1.5", "-0.1", "nan", "abc"):
        r = client.post("/segment", files=files, data={"prompt": ["x"], "text_weight": w})
        assert r.status_code == 422 and r.json()["error"] == "invalid_request" and "text_weight" in r.json()["detail"]
    r = post(client, img, ["x"], text_weight="0.5")
    assert r.status_code == 422 and r.json()["error"] == "bad_prompt" and "support_image" in r.json()["detail"]
    r = client.post("/segment", files=files, data={"text_weight": "0.5"})
    assert r.status_code == 422 and r.json()["error"] == "bad_prompt" and "'prompt'" in r.json()["detail"]
    r = client.post("/segment", files=files, data={"prompt": [f"p{i}" for i in range(5)], "text_weight": "0.5"})
    assert r.status_code == 200 and len(r.json()["results"]) == 5  # the limit counts mixed prompts, not + 1
    r = client.post("/segment", files=files, data={"prompt": [f"p{i}" for i in range(6)], "text_weight": "0.5"})
    assert r.status_code == 422 and r.json()["error"] == "too_many_prompts"
    r = client.post("/segment", files=files, data={"prompt": ["x", "y"], "text_weight": "0.5", "format": "png"})
    assert r.status_code == 422 and "2 prompts" in r.json()["detail"]
    r = client.post("/segment", files=files, data={"prompt": ["x"], "text_weight": ""})  # empty = not mixed
    assert r.status_code == 200 and [x["prompt"] for x in r.json()["results"]] == ["x", "<visual prompt>"]


# ---------------------------------------------------------------- the image cache


def test_cache_by_content_hash_saves_the_backbone(client):
    metrics = client.app.state.service.metrics
    img = png(seed=4)
    runs = metrics.get("clipseg_backbone_runs_total")
    a = post(client, img, ["a cat"]).json()
    b = post(client, img, ["a dog", "a bird"])  # same bytes, more prompts
    assert b.status_code == 200 and b.json()["image"]["cached"] is True and b.headers["x-cache"] == "hit"
    assert metrics.get("clipseg_backbone_runs_total") == runs + 1
    # by hash only, without uploading again
    c = post(client, None, ["a fish"], image_sha256=a["image"]["sha256"])
    assert c.status_code == 200 and c.json()["image"] == {**a["image"], "cached": True}
    assert metrics.get("clipseg_backbone_runs_total") == runs + 1
    assert metrics.get("clipseg_image_cache_hits_total") >= 2
    # unknown hash: 404 with a reason; wrong hash for the bytes: 422
    r = post(client, None, ["a fish"], image_sha256="0" * 64)
    assert r.status_code == 404 and r.json()["error"] == "image_not_cached"
    r = post(client, img, ["a fish"], image_sha256="1" * 64)
    assert r.status_code == 422 and r.json()["error"] == "sha256_mismatch"
    r = post(client, None, ["a fish"], image_sha256="xyz")
    assert r.status_code == 422
    # LRU of 2 images: a third evicts the oldest
    post(client, png(seed=5), ["x"])
    post(client, png(seed=6), ["x"])
    assert post(client, None, ["x"], image_sha256=a["image"]["sha256"]).status_code == 404


# ---------------------------------------------------------------- limits and errors


def test_limits_give_4xx_json(client):
    r = post(client, b"\0" * 400_000)
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    buf = io.BytesIO()
    Image.new("RGB", (500, 500), (9, 99, 199)).save(buf, format="PNG")
    r = post(client, buf.getvalue())  # 250 kpx > 200 kpx limit, body under the limit
    assert r.status_code == 413 and r.json()["error"] == "image_too_large" and "500x500" in r.json()["detail"]
    r = post(client, png(), [f"p{i}" for i in range(6)])
    assert r.status_code == 422 and r.json()["error"] == "too_many_prompts"
    r = post(client, png(), ["x" * 3000])
    assert r.status_code == 422 and r.json()["error"] == "bad_prompt"
    r = post(client, png(), ["x"], outputs="rle,jpeg")
    assert r.status_code == 422 and "jpeg" in r.json()["detail"]
    r = post(client, png(), ["x"], threshold="abc")
    assert r.status_code == 422 and r.json()["error"] == "invalid_request" and "threshold" in r.json()["detail"]
    r = client.post("/segment", data={"prompt": ["x"]})
    assert r.status_code == 422 and "image" in r.json()["detail"]
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.get("/segment")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    assert post(client, png(), ["x"]).status_code == 200


def test_internal_error_is_500_json_and_the_server_goes_on(client, monkeypatch):
    service = client.app.state.service
    calls = []
    original = service._segment

    def broken_once(predictor, job):
        if not calls:
            calls.append(1)
            raise RuntimeError("boom")
        return original(predictor, job)

    monkeypatch.setattr(service, "_segment", broken_once)
    r = post(client, png(), ["x"])
    assert r.status_code == 500 and r.json() == {"error": "internal_error", "detail": "RuntimeError: boom"}
    assert post(client, png(), ["x"]).status_code == 200


# ---------------------------------------------------------------- health, metrics, schema


def test_health_metrics_info_openapi_and_page(client):
    post(client, png(), ["x"])
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["model"] == "tiny:random" and h["queue"]["capacity"] == 17
    text = client.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain")
    body = text.text
    for name in ["clipseg_requests_total", "clipseg_request_duration_seconds_bucket", "clipseg_image_cache_hits_total",
                 "clipseg_image_cache_misses_total", "clipseg_queue_waiting", "clipseg_inflight"]:
        assert name in body
    assert 'clipseg_requests_total{path="/segment",status="200"}' in body
    for line in body.splitlines():  # Prometheus text format: comments or "name{labels} value"
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2 and float(line.rsplit(" ", 1)[1]) >= 0
    info = client.get("/info").json()
    assert info["model"]["input_size"] == 64 and info["limits"]["max_pixels"] == 200_000
    schema = client.get("/openapi.json").json()
    seg = schema["paths"]["/segment"]["post"]
    ref = seg["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    fields = schema["components"]["schemas"][ref]["properties"]
    assert {"image", "image_sha256", "prompt", "support_image", "support_mask", "text_weight", "threshold",
            "format"} <= set(fields)
    page = client.get("/")
    assert page.status_code == 200 and "<title>CLIPSeg</title>" in page.text
    assert client.get("/static/app.js").status_code == 200


# ---------------------------------------------------------------- queue and timeouts (real server, threads)


@pytest.fixture()
def slow_server(loaded):
    """A live server with 1 worker, 1 queue slot, whose inference waits for `gate`."""
    app = create_app(loaded, ServerSettings(workers=1, max_queue=1, request_timeout_s=0.5))
    service = app.state.service
    gate = threading.Event()
    original = service._segment

    def gated(predictor, job):
        if job.request_id and job.request_id.startswith("slow"):
            gate.wait(10)
        return original(predictor, job)

    service._segment = gated
    with serve_in_thread(app) as url:
        yield url, gate, service
    gate.set()


def test_queue_full_is_503_and_timeouts_then_recovers(slow_server):
    url, gate, service = slow_server
    img = png()
    results: dict[str, httpx.Response] = {}

    def send(rid, timeout=15):
        with httpx.Client(base_url=url, timeout=timeout) as c:
            results[rid] = c.post("/segment", files={"image": ("x.png", img)}, data={"prompt": ["x"], "request_id": rid})

    running = threading.Thread(target=send, args=("slow-1",))
    running.start()
    while service.running < 1:
        time.sleep(0.01)
    queued = threading.Thread(target=send, args=("slow-2",))
    queued.start()
    while service.pending < 2:
        time.sleep(0.01)
    send("third")  # 1 running + 1 waiting = capacity 2: refused at once
    r = results["third"]
    assert r.status_code == 503 and r.json()["error"] == "queue_full" and r.headers["retry-after"] == "1"
    running.join()
    queued.join()
    # the running one passed the 0.5 s limit while computing: 504; the waiting one never started: 503
    assert results["slow-1"].status_code == 504 and results["slow-1"].json()["error"] == "timeout"
    assert results["slow-2"].status_code == 503 and results["slow-2"].json()["error"] == "queue_timeout"
    gate.set()
    deadline = time.time() + 10
    while service.pending and time.time() < deadline:
        time.sleep(0.01)
    send("after")
    assert results["after"].status_code == 200 and results["after"].json()["request_id"] == "after"
    with httpx.Client(base_url=url) as c:
        m = c.get("/metrics").text
        assert 'clipseg_rejected_total{reason="queue_full"} 1' in m
        assert 'clipseg_timeouts_total{stage="inference"} 1' in m
        assert 'clipseg_timeouts_total{stage="queue"} 1' in m


def test_body_limit_on_a_live_server_streamed_and_declared(loaded):
    app = create_app(loaded, ServerSettings(max_body_bytes=100_000))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=20) as c:
        r = c.post("/segment", files={"image": ("x.png", b"\1" * 300_000)}, data={"prompt": ["x"]})
        assert r.status_code == 413 and r.json()["error"] == "body_too_large"

        def chunks():  # no Content-Length: counted while streaming
            for _ in range(30):
                yield b"\2" * 10_000

        r = c.post("/segment", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
        assert r.status_code == 413
        assert c.get("/health").status_code == 200


def test_slow_body_times_out_with_408(loaded):
    app = create_app(loaded, ServerSettings(request_timeout_s=0.5))
    with serve_in_thread(app) as url:
        host, port = url.rsplit("/", 1)[1].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"POST /segment HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                      b"Content-Length: 1000\r\n\r\n--x\r\n")  # ... and the rest never comes
            answer = b""
            while chunk := s.recv(65536):  # the head and the body may come in two segments
                answer += chunk
            answer = answer.decode()
        assert answer.startswith("HTTP/1.1 408") and '"error": "body_timeout"' in answer
        assert httpx.get(url + "/health").status_code == 200


# ---------------------------------------------------------------- `clipseg serve`


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_clipseg_serve_command_starts_and_answers(tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "clipseg.cli", "serve", "--weights", "tiny:random", "--port",
                             str(port), "--log-level", "warning"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.time() < deadline, "server did not start"
                time.sleep(0.2)
        assert r.json()["model"] == "tiny:random"
        r = httpx.post(f"http://127.0.0.1:{port}/segment", files={"image": ("x.png", png())},
                       data={"prompt": ["x"]}, timeout=30)
        assert r.status_code == 200 and r.json()["image"]["width"] == 44
    finally:
        proc.terminate()
        proc.wait(10)


def test_clipseg_serve_with_bad_weights_exits_2(tmp_path):
    from click.testing import CliRunner

    from clipseg.cli.main import cli

    bad = tmp_path / "model.pth"
    bad.write_bytes(os.urandom(256))
    res = CliRunner().invoke(cli, ["serve", "--weights", str(bad)])
    assert res.exit_code == 2 and "model.pth" in res.output and "Traceback" not in res.output


def test_load_test_script_small_run(tmp_path):
    """benchmarks/load_test.py end to end: its own server, concurrent requests, nothing lost or mixed."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "load_test.py"
    spec = importlib.util.spec_from_file_location("clipseg_load_test", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules[spec.name]
    out = tmp_path / "load.json"
    rc = mod.main(["--requests", "40", "--concurrency", "6", "--max-queue", "2", "--images", "3", "--json", str(out)])
    result = json.loads(out.read_text())
    assert rc == 0 and result["ok"] == 40 and result["lost"] == 0 and result["mixed"] == 0
    assert result["latency_ms"]["p50"] > 0 and result["throughput_rps"] > 0
    assert result["server"]["cache_hits"] > 0
    with pytest.raises(SystemExit):
        mod.main(["--url", "http://example.com:8000"])  # loopback only


# ---------------------------------------------------------------- hostile requests


@pytest.mark.parametrize("rid", ["a\r\nSet-Cookie: x=1", "\U0001F600", "x" * 129, "a b", "a\x00b"])
def test_request_id_is_validated_not_echoed_raw(client, rid):
    r = post(client, png(), request_id=rid)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request" and "request_id" in r.json()["detail"]
    assert post(client, png(), request_id="job-7.a:b_c").headers["X-Request-Id"] == "job-7.a:b_c"


def test_long_prompts_are_refused_before_tokenizing(loaded):
    app = create_app(loaded, ServerSettings())
    with TestClient(app, raise_server_exceptions=False) as c:
        r = post(c, png(), ["x" * 2048])
        assert r.status_code == 422 and "too long" in r.json()["detail"]
        assert "clipseg_backbone_runs_total 0\n" in app.state.service.metrics.render()  # refused before the image
        r = post(c, png(), ["a" * 300])  # at the limit: tokenized, then too many tokens or fine
        assert r.status_code in (200, 422)


def test_png_output_size_is_bounded_before_any_map_is_made(loaded):
    app = create_app(loaded, ServerSettings(max_output_pixels=30 * 44 * 2))
    with TestClient(app, raise_server_exceptions=False) as c:
        assert post(c, png(), ["a", "b"], outputs="mask_png").status_code == 200
        r = post(c, png(), ["a", "b", "c"], outputs="mask_png")
        assert r.status_code == 413 and r.json()["error"] == "output_too_large"
        assert post(c, png(), ["a", "b", "c"], outputs="rle").status_code == 200  # RLE is small


def test_streamed_maps_equal_the_predictor(client, reference):
    """Per-prompt streaming (one full-size map in memory) gives the same label map as predict()."""
    img = png(40, 52, seed=3)
    r = post(client, img, ["a cat", "a dog", "grass"], format="png", kind="labels", none_threshold="0.45")
    assert r.status_code == 200
    probs = reference.segment(img, ["a cat", "a dog", "grass"])
    expected = probs.argmax(0) + 1
    expected[probs.max(0) < 0.45] = 0
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), expected)


def _raw(url: str, data: bytes, wait: float) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=wait + 5) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            return b"<held open>"
    return b"".join(chunks)


def test_incomplete_headers_get_408_and_the_connection_closed(loaded):
    app = create_app(loaded, ServerSettings(header_timeout_s=0.5, keep_alive_s=0.5))
    with serve_in_thread(app) as url:
        t0 = time.monotonic()
        answer = _raw(url, b"POST /segment HTTP/1.1\r\nHost: x\r\nContent-Le", wait=3)
        assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < 3
        # a complete request on the same kind of connection is answered as usual
        ok = httpx.get(url + "/health", timeout=5)
        assert ok.status_code == 200
        # after a response, a keep-alive connection that sends half a request is closed too
        answer = _raw(url, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHo", wait=3)
        assert answer.count(b"HTTP/1.1 200") == 1 and answer != b"<held open>"


def test_unknown_words_are_reported_in_the_json(tmp_path):
    """A word-tokenizer model (the generated world's) reads unknown words as <unk>: the answer says so."""
    from clipseg.tokenizer.word import WordTokenizer

    torch_model = load_model("tiny:random")
    words = WordTokenizer(["a", "red", "circle"], context_length=torch_model.config.clip.text.context_length)
    app = create_app(torch_model, ServerSettings(), tokenizer=words)
    with TestClient(app) as c:
        j = post(c, png(), ["a red circle", "a purple cat"]).json()
    assert [r.get("unknown_words") for r in j["results"]] == [None, ["purple", "cat"]]
    assert len(j["warnings"]) == 1 and "purple, cat" in j["warnings"][0]
