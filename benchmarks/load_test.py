"""Load test of the HTTP service, on loopback only, bounded in size.

Starts `clipseg serve` on 127.0.0.1 (the tiny random model by default) in a subprocess, or
uses --url of one already running on this machine; sends --requests requests with
--concurrency in flight (httpx), mixing known images (cache hits, some sent by sha256 only)
with fresh ones (backbone runs), and checks every answer belongs to its request: echoed
request id, image sha256 and size, the prompts in order, and for known images each
prompt's mean probability against a reference computed before the load. Answers 503
(queue full) are retried after Retry-After; a request is "lost" when it never gets a
200 (transport error, timeout, other status), "mixed" when its 200 does not match.

    python benchmarks/load_test.py --requests 300 --concurrency 16
    python benchmarks/load_test.py --url http://127.0.0.1:8000 --json results.json

Prints throughput, latency percentiles, lost/mixed counts; exit code 1 if any was lost or mixed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import ipaddress
import json
import os
import random
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import numpy as np

MAX_REQUESTS = 20_000
MAX_CONCURRENCY = 256
PROMPTS = ["a red circle", "a blue square", "the sky", "a small dog", "something round", "a wooden table",
           "the largest object", "a green triangle"]


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds, end to end incl. retries, successes only
    ok: int = 0
    lost: list[str] = field(default_factory=list)
    mixed: list[str] = field(default_factory=list)
    rejected_503: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    cache_hits_seen: int = 0


def _png(h: int, w: int, seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    a = (rng.random((h // 4 + 1, w // 4 + 1, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(a).resize((w, h), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "clipseg.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--weights", args.weights, "--workers", str(args.workers), "--max-queue", str(args.max_queue),
           "--cache-size", str(args.cache_size), "--timeout", str(args.timeout), "--log-level", "warning"]
    if args.server_threads:
        cmd += ["--threads", str(args.server_threads)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
        if time.time() > deadline:
            proc.kill()
            raise SystemExit("the server did not start in 120 s")
        time.sleep(0.2)


async def run(args) -> dict:
    import httpx

    rng = random.Random(args.seed)
    # known images: distinct sizes so that a mixed-up answer shows in its size too
    sizes = [(48 + 7 * i, 64 + 11 * i) for i in range(args.images)]
    known = [_png(h, w, 1000 + i) for i, (h, w) in enumerate(sizes)]
    shas = [hashlib.sha256(b).hexdigest() for b in known]

    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=args.url, timeout=args.client_timeout, limits=limits) as client:
        # reference: every prompt on every known image, one request each, before the load
        reference: dict[tuple[int, str], float] = {}
        for i, data in enumerate(known):
            r = await client.post("/segment", files={"image": ("ref.png", data, "image/png")},
                                  data={"prompt": PROMPTS, "request_id": f"ref-{i}"})
            r.raise_for_status()
            for res in r.json()["results"]:
                reference[(i, res["prompt"])] = res["mean_probability"]
        metrics_before = _parse_metrics((await client.get("/metrics")).text)

        # the requests
        plan = []
        for n in range(args.requests):
            prompts = rng.sample(PROMPTS, rng.randint(1, min(4, len(PROMPTS))))
            if rng.random() < args.fresh_fraction:
                h, w = rng.randint(40, 120), rng.randint(40, 120)
                plan.append({"rid": f"req-{n}", "kind": "fresh", "data": _png(h, w, 10_000 + n), "hw": (h, w),
                             "prompts": prompts})
            else:
                i = rng.randrange(len(known))
                by_hash = rng.random() < args.by_hash_fraction
                plan.append({"rid": f"req-{n}", "kind": "hash" if by_hash else "known", "img": i,
                             "data": None if by_hash else known[i], "hw": sizes[i], "prompts": prompts})
        stats = Stats()
        queue: asyncio.Queue = asyncio.Queue()
        for p in plan:
            queue.put_nowait(p)

        async def one(p: dict) -> None:
            sha = hashlib.sha256(p["data"]).hexdigest() if p["data"] is not None else shas[p["img"]]
            fields = {"prompt": p["prompts"], "request_id": p["rid"]}
            t0 = time.perf_counter()
            for attempt in range(args.retries + 1):
                try:
                    if p["data"] is not None:
                        r = await client.post("/segment", files={"image": ("x.png", p["data"], "image/png")}, data=fields)
                    else:
                        r = await client.post("/segment", data={**fields, "image_sha256": sha})
                        if r.status_code == 404:  # evicted from the cache: send the image
                            r = await client.post("/segment", files={"image": ("x.png", known[p["img"]], "image/png")},
                                                  data=fields)
                except (httpx.TransportError, httpx.TimeoutException) as e:
                    stats.lost.append(f"{p['rid']}: {type(e).__name__}: {e}")
                    return
                stats.statuses[r.status_code] = stats.statuses.get(r.status_code, 0) + 1
                if r.status_code == 503:
                    stats.rejected_503 += 1
                    await asyncio.sleep(float(r.headers.get("retry-after", "1")) * (0.5 + rng.random()))
                    continue
                break
            if r.status_code != 200:
                stats.lost.append(f"{p['rid']}: HTTP {r.status_code} {r.text[:200]}")
                return
            stats.latencies.append(time.perf_counter() - t0)
            problem = check(r.json(), p, sha, reference)
            if problem:
                stats.mixed.append(f"{p['rid']}: {problem}")
            else:
                stats.ok += 1
                stats.cache_hits_seen += bool(r.json()["image"]["cached"])

        async def worker() -> None:
            while True:
                try:
                    p = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await one(p)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        wall = time.perf_counter() - start
        metrics_after = _parse_metrics((await client.get("/metrics")).text)
        health = (await client.get("/health")).json()

    lat = np.array(stats.latencies) * 1000 if stats.latencies else np.zeros(1)
    delta = {k: metrics_after.get(k, 0) - metrics_before.get(k, 0) for k in
             ("clipseg_backbone_runs_total", "clipseg_image_cache_hits_total", "clipseg_image_cache_misses_total",
              "clipseg_rejected_total")}
    return {
        "url": args.url,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "ok": stats.ok,
        "lost": len(stats.lost),
        "mixed": len(stats.mixed),
        "rejected_503_then_retried": stats.rejected_503,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "wall_s": round(wall, 3),
        "throughput_rps": round(len(stats.latencies) / wall, 2) if wall > 0 else 0.0,
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1), "p95": round(float(np.percentile(lat, 95)), 1),
                       "p99": round(float(np.percentile(lat, 99)), 1), "max": round(float(lat.max()), 1),
                       "mean": round(float(lat.mean()), 1)},
        "server": {"backbone_runs": delta["clipseg_backbone_runs_total"],
                   "cache_hits": delta["clipseg_image_cache_hits_total"],
                   "cache_misses": delta["clipseg_image_cache_misses_total"],
                   "queue_full_rejections": delta["clipseg_rejected_total"],
                   "queue_after": health["queue"]},
        "fresh_requests": sum(p["kind"] == "fresh" for p in plan),
        "lost_examples": stats.lost[:5],
        "mixed_examples": stats.mixed[:5],
    }


def check(j: dict, p: dict, sha: str, reference: dict) -> str | None:
    if j.get("request_id") != p["rid"]:
        return f"request_id {j.get('request_id')!r} (expected {p['rid']!r})"
    img = j["image"]
    if img["sha256"] != sha:
        return f"image sha256 {img['sha256'][:12]} (expected {sha[:12]})"
    if (img["height"], img["width"]) != tuple(p["hw"]):
        return f"image size {img['height']}x{img['width']} (expected {p['hw'][0]}x{p['hw'][1]})"
    got = [r["prompt"] for r in j["results"]]
    if got != p["prompts"]:
        return f"prompts {got} (expected {p['prompts']})"
    for r in j["results"]:
        if r["segmentation"]["size"] != [img["height"], img["width"]]:
            return f"mask size {r['segmentation']['size']}"
        if p["kind"] != "fresh":
            ref = reference[(p["img"], r["prompt"])]
            if abs(r["mean_probability"] - ref) > 1e-4:
                return f"'{r['prompt']}' mean probability {r['mean_probability']:.6f}, reference {ref:.6f}"
    return None


def _parse_metrics(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        base = name.split("{", 1)[0]
        try:
            out[base] = out.get(base, 0.0) + float(value)
        except ValueError:
            pass
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a server already running on this machine (loopback only); default: start one")
    ap.add_argument("--requests", type=int, default=200, help=f"requests to send (at most {MAX_REQUESTS})")
    ap.add_argument("--concurrency", type=int, default=8, help=f"requests in flight (at most {MAX_CONCURRENCY})")
    ap.add_argument("--images", type=int, default=6, help="distinct known images")
    ap.add_argument("--fresh-fraction", type=float, default=0.25, help="share of requests with a never-seen image")
    ap.add_argument("--by-hash-fraction", type=float, default=0.3, help="share of known-image requests sent by sha256")
    ap.add_argument("--retries", type=int, default=20, help="retries of a request answered 503")
    ap.add_argument("--client-timeout", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", default="tiny:random", help="for the server this script starts")
    ap.add_argument("--workers", type=int, default=1, help="for the server this script starts")
    ap.add_argument("--max-queue", type=int, default=16, help="for the server this script starts")
    ap.add_argument("--cache-size", type=int, default=32, help="for the server this script starts")
    ap.add_argument("--timeout", type=float, default=60.0, help="server request timeout, for the server started here")
    ap.add_argument("--server-threads", type=int, default=1,
                    help="torch threads of the server started here (0 = torch's default); 1 suits the tiny model")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    if not 1 <= args.requests <= MAX_REQUESTS:
        ap.error(f"--requests must be in 1..{MAX_REQUESTS}")
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        ap.error(f"--concurrency must be in 1..{MAX_CONCURRENCY}")
    if args.url and not _is_loopback(args.url):
        ap.error(f"--url must be a loopback address (127.0.0.1, ::1, localhost), got {args.url}")
    proc = None
    if not args.url:
        proc, args.url = start_server(args)
    try:
        result = asyncio.run(run(args))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    lat = result["latency_ms"]
    print(f"{result['requests']} requests, concurrency {result['concurrency']}, against {result['url']}")
    print(f"  ok {result['ok']}  lost {result['lost']}  mixed up {result['mixed']}  "
          f"(503 answers retried: {result['rejected_503_then_retried']}; statuses {result['statuses']})")
    print(f"  throughput {result['throughput_rps']} req/s over {result['wall_s']} s")
    print(f"  latency ms: p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  max {lat['max']}")
    s = result["server"]
    print(f"  server: {s['backbone_runs']:g} backbone runs, {s['cache_hits']:g} cache hits, "
          f"{s['cache_misses']:g} misses; {result['fresh_requests']} requests had a fresh image")
    for line in result["lost_examples"] + result["mixed_examples"]:
        print("  !", line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 1 if result["lost"] or result["mixed"] else 0


if __name__ == "__main__":
    sys.exit(main())
