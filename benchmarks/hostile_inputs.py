"""Hostile and careless input, tried for real: prints a table of what happened.

Categories: checkpoint files (memory bombs, truncated, wrong formats, symlinks, pickles),
Hugging Face folders (bad index / config), command lines with bad weights or checkpoints,
output naming (colliding inputs and prompts), HTTP requests (header injection, long
prompts, huge images x many prompts, slow headers, slow bodies, nested JSON), ONNX export
folders (damaged graphs, FIFOs, device links, malformed descriptions, vocabularies),
embedded vocabularies (too many words, too large), standard input (endless zeros, endless
lines, too many prompts, closed). Every loader case runs in a fresh
subprocess that reports its peak memory above the baseline taken right before the load.

    python benchmarks/hostile_inputs.py [--json out.json]

A case is "clear" when it ends in the documented error (CheckpointError / exit 2 with one
line naming the file / the HTTP status), and "bad" otherwise (a traceback, a crash, a
silent success, a lost output, or more than 200 MB of memory for a rejected file).
Exit code 1 if any case is bad.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # hostile_files: the generators shared with the tests
MEMORY_LIMIT_MB = 200.0

# ---------------------------------------------------------------- loader cases (subprocess)

# The peak resident memory of the probe process (MB), the start of every probe script below.
_HWM = r"""
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
"""

def _outcome_probe(setup: str, call: str, expected: str) -> str:
    """A probe script: `setup` (imports, before the memory baseline), then `call`, printing as
    JSON its outcome (`expected` when that error was raised), peak memory above the baseline
    and seconds."""
    body = "\n".join("    " + line for line in call.strip().splitlines())
    return _HWM + f"""
import json, sys, time
{setup.strip()}
base, t0 = hwm(), time.perf_counter()
try:
{body}
    out = {{"outcome": "loaded"}}
except {expected} as e:
    out = {{"outcome": "{expected}", "message": str(e)}}
except BaseException as e:
    out = {{"outcome": type(e).__name__, "message": str(e)[:300]}}
out.update(peak_mb=hwm() - base, seconds=time.perf_counter() - t0)
print(json.dumps(out))
"""


_PROBE = _outcome_probe("""
sys.path.insert(0, sys.argv[3])
from clipseg.weights import CheckpointError, load_clipseg, read_backbone
import torch  # noqa: F401  (imported before the baseline)
target, kind = sys.argv[1], sys.argv[2]
""", """(read_backbone if kind == "backbone" else load_clipseg)(target)""", "CheckpointError")


def _probe(target: Path, kind: str = "model") -> dict:
    r = subprocess.run([sys.executable, "-c", _PROBE, str(target), kind, str(ROOT / "tests")],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"outcome": f"crash (exit {r.returncode})", "message": r.stderr[-300:], "peak_mb": float("nan")}


def checkpoint_cases(tmp: Path) -> dict[str, Path]:
    import torch
    from safetensors.torch import save_file

    import hostile_files as H

    cases = {name: make(tmp / f"h{i}.bin") for i, (name, make) in enumerate(H.HOSTILE_FILES.items())}
    good = tmp / "good.safetensors"
    save_file({"decoder.film_mul.weight": torch.zeros(64, 512)}, str(good),
              metadata={"format": "clipseg", "clipseg_config": "{}"})
    data = good.read_bytes()
    (tmp / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    cases["truncated safetensors"] = tmp / "trunc.safetensors"
    torch.save({"decoder.film_mul.weight": torch.zeros(64, 512)}, tmp / "z.pth")
    z = (tmp / "z.pth").read_bytes()
    (tmp / "trunc.pth").write_bytes(z[: len(z) // 2])
    cases["truncated torch.save zip"] = tmp / "trunc.pth"
    (tmp / "empty.pth").write_bytes(b"")
    cases["empty file"] = tmp / "empty.pth"
    (tmp / "noise.pth").write_bytes(os.urandom(4096))
    cases["random bytes"] = tmp / "noise.pth"
    secret = tmp / "secret.txt"
    secret.write_text("SECRET-TOKEN-1234")
    (tmp / "link.pth").symlink_to(secret)
    cases["symlink to a text file (bytes must not be echoed)"] = tmp / "link.pth"
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp / 'pwned'}",))

    with open(tmp / "evil.pth", "wb") as f:
        pickle.dump({"decoder.film_mul.weight": Evil()}, f)
    cases["legacy pickle that runs a command"] = tmp / "evil.pth"
    with zipfile.ZipFile(tmp / "evilzip.pth", "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(Evil()))
        zf.writestr("archive/version", "3\n")
    cases["torch zip whose pickle runs a command"] = tmp / "evilzip.pth"
    (tmp / "x.json.pth").write_text(json.dumps({"a": 1}))
    cases["JSON renamed .pth"] = tmp / "x.json.pth"
    save_file({"decoder.film_mul.weight": torch.zeros(2, 2), "clip.visual.conv1.weight": torch.zeros(2, 2)},
              str(tmp / "noconfig.safetensors"), metadata={"format": "clipseg"})
    cases["native safetensors without clipseg_config"] = tmp / "noconfig.safetensors"
    for label, cfg in {"clipseg_config invalid JSON": "{not json",
                       "clipseg_config with wrong types": json.dumps({"clip": {"vision": {"width": "wide"}}}),
                       "clipseg_config that is a list": "[1, 2]"}.items():
        path = tmp / f"cfg{len(cases)}.safetensors"
        save_file({"decoder.film_mul.weight": torch.zeros(2, 2)}, str(path),
                  metadata={"format": "clipseg", "clipseg_config": cfg})
        cases[label] = path
    return cases


def folder_cases(tmp: Path) -> dict[str, Path]:
    import hostile_files as H

    (tmp / "outside.safetensors").write_bytes(b"")
    return {
        "index.json is a list": H.hf_folder(tmp / "f1", index=["model.safetensors"]),
        "index.json with non-string shard names": H.hf_folder(tmp / "f2", index={"weight_map": {"a": 5}}),
        "index.json pointing outside (../x)": H.hf_folder(tmp / "f3", index={"weight_map": {"a": "../outside.safetensors"}}),
        "index.json with an absolute path": H.hf_folder(tmp / "f4", index={"weight_map": {"a": "/etc/hostname"}}),
        "config.json is a list": H.hf_folder(tmp / "f5", config=[1, 2]),
        "clipseg_config of wrong type in config.json": H.hf_folder(tmp / "f6", config={"clipseg_config": "x"},
                                                                  index={"weight_map": {"a": "m.safetensors"}}),
        "HF config with a 1e6-layer model": H.hf_folder(tmp / "f7", config={"vision_config": {"num_hidden_layers": 10**6}},
                                                        index={"weight_map": {"a": "m.safetensors"}}),
    }


def run_loader_category(cases: dict[str, Path], tmp: Path) -> list[dict]:
    rows = []
    for name, path in cases.items():
        r = _probe(path)
        msg = r.get("message", "")
        clear = r["outcome"] == "CheckpointError" and (str(path) in msg or path.name in msg)
        problems = []
        if not clear:
            problems.append(f"{r['outcome']}: {msg[:120]}")
        if "SECRET-TOKEN" in msg:
            problems.append("echoed file bytes")
        if r.get("peak_mb", 0) > MEMORY_LIMIT_MB:
            problems.append(f"{r['peak_mb']:.0f} MB")
        if (tmp / "pwned").exists():
            problems.append("RAN HOSTILE CODE")
        rows.append({"case": name, "clear": clear and not problems, "problems": problems,
                     "peak_mb": r.get("peak_mb"), "seconds": r.get("seconds")})
    return rows


# ---------------------------------------------------------------- ONNX export folders (subprocess)

_ONNX_PROBE = _outcome_probe("""
from clipseg.export.onnx_predictor import OnnxPredictor
import onnxruntime  # noqa: F401  (imported before the baseline)
""", """
p = OnnxPredictor(sys.argv[1])
p.set_image(__import__("numpy").zeros((32, 32, 3), "uint8"))
p.predict(["w"])
""", "ValueError")


def onnx_cases(tmp: Path) -> list[dict]:
    import shutil

    import torch

    from clipseg import build_clipseg
    from clipseg.export import export_onnx
    from clipseg.tokenizer.word import WordTokenizer

    torch.manual_seed(0)
    base = tmp / "onnx-export"
    export_onnx(build_clipseg("tiny").eval(), base, input_size=64)

    def meta_edit(**fields):
        def edit(d: Path) -> None:
            m = json.loads((d / "clipseg_onnx.json").read_text())
            for k, v in fields.items():
                if v is None:
                    m.pop(k, None)
                else:
                    m[k] = v
            (d / "clipseg_onnx.json").write_text(json.dumps(m))
        return edit

    def tokenizer(write) -> callable:
        def edit(d: Path) -> None:
            meta_edit(tokenizer="tokenizer.json")(d)
            write(d / "tokenizer.json")
        return edit

    def padded_vocabulary(d: Path) -> None:
        m = json.loads((d / "clipseg_onnx.json").read_text())
        m["model_config"]["clip"]["text"]["vocab_size"] = 165
        m["tokenizer"] = "tokenizer.json"
        (d / "clipseg_onnx.json").write_text(json.dumps(m))
        words = ["".join(chr(97 + (i // 26 ** k) % 26) for k in range(3)) for i in range(200)]
        WordTokenizer(words, 16).save(d / "tokenizer.json")

    cases = {
        "decoder.onnx truncated": lambda d: (d / "decoder.onnx").write_bytes((d / "decoder.onnx").read_bytes()[:60000]),
        "decoder.onnx empty": lambda d: (d / "decoder.onnx").write_bytes(b""),
        "decoder.onnx random": lambda d: (d / "decoder.onnx").write_bytes(os.urandom(5000)),
        "decoder.onnx a directory": lambda d: ((d / "decoder.onnx").unlink(), (d / "decoder.onnx").mkdir()),
        "decoder.onnx a FIFO": lambda d: ((d / "decoder.onnx").unlink(), os.mkfifo(d / "decoder.onnx")),
        "tokenizer.json a FIFO": tokenizer(lambda p: os.mkfifo(p)),
        "tokenizer.json -> /dev/zero": tokenizer(lambda p: p.symlink_to("/dev/zero")),
        "tokenizer.json of 200,000 nested [": tokenizer(lambda p: p.write_text("[" * 200_000)),
        "tokenizer.json of 40 MiB": tokenizer(lambda p: open(p, "wb").truncate(40 << 20)),
        "200 words for a 165-row embedding": padded_vocabulary,
        "no 'files'": meta_edit(files=None),
        "no 'tensors'": meta_edit(tensors=None),
        "'files' a list": meta_edit(files=["decoder.onnx"]),
        "'tokenizer' a number": meta_edit(tokenizer=5),
        "context_length 'x'": meta_edit(context_length="x"),
        "context_length 10^13": meta_edit(context_length=10 ** 13),
        "context_length 100,000,000": meta_edit(context_length=100_000_000),
        "clipseg_onnx.json nested": lambda d: (d / "clipseg_onnx.json").write_text("[" * 200_000),
    }
    rows = []
    for name, damage in cases.items():
        d = tmp / f"onnx-{len(rows)}"
        shutil.copytree(base, d)
        damage(d)
        try:
            r = subprocess.run([sys.executable, "-c", _ONNX_PROBE, str(d)], capture_output=True, text=True, timeout=60)
            out = json.loads(r.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            out = {"outcome": "hang (60 s)", "message": "", "peak_mb": None}
        except (IndexError, json.JSONDecodeError):
            out = {"outcome": f"crash (exit {r.returncode})", "message": r.stderr[-300:], "peak_mb": None}
        problems = [] if out["outcome"] == "ValueError" else [f"{out['outcome']}: {out.get('message', '')[:120]}"]
        if out.get("peak_mb") and out["peak_mb"] > MEMORY_LIMIT_MB:
            problems.append(f"{out['peak_mb']:.0f} MB")
        rows.append({"case": name, "clear": not problems, "problems": problems, "peak_mb": out.get("peak_mb"),
                     "seconds": out.get("seconds")})
    return rows


def vocabulary_cases(tmp: Path) -> dict[str, Path]:
    """Native files whose embedded word vocabulary does not fit (loaded by `_probe`)."""
    from safetensors.torch import load_file, save_file

    from clipseg import build_clipseg, save_clipseg

    model = build_clipseg("tiny")
    plain = save_clipseg(model, tmp / "vocab-base.safetensors") or tmp / "vocab-base.safetensors"
    tensors = load_file(plain)
    rows = model.config.clip.text.vocab_size

    def with_vocabulary(name: str, words: list[str]) -> Path:
        from safetensors import safe_open

        with safe_open(plain, "pt") as f:
            meta = dict(f.metadata() or {})
        meta["tokenizer"] = json.dumps({"format": "clipseg-word-tokenizer", "words": words, "context_length": 8})
        path = tmp / name
        save_file(tensors, path, metadata=meta)
        return path

    def word(i: int, n: int = 6) -> str:
        return "".join(chr(97 + (i // 26 ** k) % 26) for k in range(n))

    return {
        f"vocabulary of {rows + 10} words, {rows} embedding rows": with_vocabulary("vocab-big.safetensors",
                                                                                   [word(i) for i in range(rows + 10)]),
        "90 MB vocabulary of 100,000 words": with_vocabulary("vocab-90mb.safetensors",
                                                             [word(i, 6) * 150 for i in range(100_000)]),
    }


# ---------------------------------------------------------------- standard input (subprocess)

_CLI_PROBE = _HWM + r"""
import atexit, json, sys, time
from clipseg.cli.main import main
import clipseg.runs.folder, clipseg.editing, clipseg.prompts.expression  # what `segment` imports: not input memory
base, t0 = hwm(), time.perf_counter()
atexit.register(lambda: sys.__stderr__.write("\nPROBE " + json.dumps({"peak_mb": hwm() - base,
                                                                      "seconds": time.perf_counter() - t0}) + "\n"))
sys.argv = ["clipseg", *sys.argv[1:]]
main()
"""


def stdin_cases(tmp: Path) -> list[dict]:
    scene = ROOT / "src" / "clipseg" / "assets" / "world" / "example-scene.png"

    def zeros():
        return (b"\0" * (1 << 20) for _ in range(1500))

    cases = {
        "1.5 GB of zeros as the image": (["segment", "-", "-p", "cat", "-w", "world"], zeros, "not an image"),
        "a 20 MB prompt line": (["segment", str(scene), "--prompts-file", "-", "-w", "world"],
                                lambda: [b"x" * (20 << 20) + b"\n"], "longer than 1000"),
        "2 GB prompts file without a newline": (["segment", str(scene), "--prompts-file", "-", "-w", "world"],
                                                lambda: (b"y" * (1 << 20) for _ in range(2048)), "longer than 1000"),
        "50,000 prompts": (["segment", str(scene), "--prompts-file", "-", "-w", "world"],
                           lambda: [("\n".join(f"p {i}" for i in range(50_000))).encode()], "more than 1000 prompts"),
        "closed standard input": (["segment", "-", "-p", "cat", "-w", "world"], None, "standard input is closed"),
        "'-' twice": (["segment", "-", "-", "-p", "cat"], lambda: [scene.read_bytes()], "more than once"),
    }
    rows = []
    for name, (args, feed, words) in cases.items():
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _CLI_PROBE, *args, "-o", str(tmp / "stdin-out")],
                                stdin=subprocess.PIPE if feed else None, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=None if feed else (lambda: os.close(0)))  # no feed: a closed stdin
        if feed is not None:
            try:
                for chunk in feed():
                    proc.stdin.write(chunk)
            except (BrokenPipeError, OSError):
                pass
            try:
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            proc.stdin = None
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            err = b"hang"
        text = err.decode(errors="replace")
        probe = json.loads(text.rsplit("PROBE ", 1)[1]) if "PROBE " in text else {}
        problems = []
        if proc.returncode != 2 or words not in text or "Traceback" in text:
            problems.append(f"exit {proc.returncode}: {text[-160:]}")
        if probe.get("peak_mb", 0) > MEMORY_LIMIT_MB:
            problems.append(f"{probe['peak_mb']:.0f} MB")
        rows.append({"case": name, "clear": not problems, "problems": problems, "peak_mb": probe.get("peak_mb"),
                     "seconds": time.perf_counter() - t0})
    return rows

# ---------------------------------------------------------------- command lines


def cli_cases(tmp: Path) -> list[dict]:
    import numpy as np
    from PIL import Image

    img = tmp / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((24, 24, 3)) * 255).astype(np.uint8)).save(img)
    bad = tmp / "bad.pth"
    bad.write_bytes(b"PK\x03\x04 garbage")
    (tmp / "run").mkdir(exist_ok=True)
    (tmp / "run" / "checkpoint.pt").write_bytes(b"\x80\x02 truncated")
    exp = tmp / "exp.json"
    exp.write_text(json.dumps({"name": "t", "model": {"variant": "tiny", "backbone": "random"},
                               "data": {"dataset": "world", "options": {"size": 4}},
                               "train": {"iterations": 2, "batch_size": 2, "out_dir": str(tmp / "run"),
                                         "num_workers": 0}}))
    runs = {
        "segment --weights <corrupt>": ["segment", str(img), "-p", "x", "--weights", str(bad), "-o", str(tmp / "o")],
        "info --weights <missing>": ["info", "--weights", str(tmp / "missing.safetensors")],
        "evaluate --weights <corrupt>": ["evaluate", "referring", "--weights", str(bad), "--dataset", "folder",
                                         "--data", str(tmp)],
        "train --init <corrupt>": ["train", "--config", str(exp), "--init", str(bad), "--no-progress"],
        "train --resume <corrupt checkpoint.pt>": ["train", "--config", str(exp), "--resume", "--no-progress"],
    }
    rows = []
    for name, args in runs.items():
        r = subprocess.run([sys.executable, "-m", "clipseg.cli", *args], capture_output=True, text=True, timeout=300)
        out = r.stdout + r.stderr
        clear = r.returncode == 2 and "Traceback" not in out and ("bad.pth" in out or "missing" in out
                                                                  or "checkpoint.pt" in out)
        rows.append({"case": name, "clear": clear, "problems": [] if clear else [f"exit {r.returncode}: {out[-160:]}"]})
    return rows


def naming_cases(tmp: Path) -> list[dict]:
    import numpy as np
    from PIL import Image

    def img(path: Path, seed: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.random.default_rng(seed).random((16, 16, 3)) * 255).astype(np.uint8)).save(path, "PNG")

    def segment(*args) -> tuple[int, str]:
        r = subprocess.run([sys.executable, "-m", "clipseg.cli", "segment", *map(str, args), "--weights", "tiny:random",
                            "--no-progress"], capture_output=True, text=True, timeout=300)
        return r.returncode, r.stdout + r.stderr

    def outputs(folder: Path) -> int:
        return sum(1 for p in folder.rglob("*") if p.is_file() and p.name != "prompts.json")

    rows = []
    img(tmp / "cam1" / "0001.jpg", 1), img(tmp / "cam2" / "0001.jpg", 2)
    code, _ = segment(tmp / "cam1", tmp / "cam2", "-p", "cat", "-o", tmp / "n1")
    rows.append(("same name in two folders", code == 0 and outputs(tmp / "n1") == 2))
    for i, n in enumerate(["a.jpg", "a.png", "a.jpg.png"]):
        img(tmp / "ext" / n, i)
    code, _ = segment(tmp / "ext", "-p", "cat", "-o", tmp / "n2")
    rows.append(("a.jpg, a.png, a.jpg.png", code == 0 and outputs(tmp / "n2") == 3))
    img(tmp / "dot" / "x.jpg", 1), img(tmp / "dot" / "x.a.jpg", 2)
    code, _ = segment(tmp / "dot", "-p", "a.b", "-p", "b", "-o", tmp / "n3")
    rows.append(("x.jpg / x.a.jpg with prompts a.b and b", code == 0 and outputs(tmp / "n3") == 4))
    segment(tmp / "dot" / "x.jpg", "-p", "cat", "-p", "dog", "--labels", "-o", tmp / "n4")
    code, _ = segment(tmp / "dot" / "x.jpg", "-p", "dog", "-p", "cat", "--labels", "-o", tmp / "n4")
    legend = json.loads((tmp / "n4" / "prompts.json").read_text())
    rows.append(("resume with the prompts in another order", code == 0 and len(legend["sets"]) == 2
                 and outputs(tmp / "n4") == 2))  # one label map per order, each with its own legend entry
    return [{"case": c, "clear": ok, "problems": [] if ok else ["outputs lost or mislabelled"]} for c, ok in rows]


# ---------------------------------------------------------------- HTTP


def http_cases() -> list[dict]:
    import httpx
    import numpy as np
    from PIL import Image

    from clipseg import load as load_model
    from clipseg.server import ServerSettings, create_app, serve_in_thread

    def png(h, w, black=False) -> bytes:
        a = np.zeros((h, w, 3), np.uint8) if black else (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG", optimize=True)
        return buf.getvalue()

    rows = []
    app = create_app(load_model("tiny:random"), ServerSettings(header_timeout_s=2.0))
    small = png(32, 32)
    with serve_in_thread(app) as url, httpx.Client(timeout=120) as c:
        def post(prompts, image=small, **data):
            return c.post(url + "/segment", files={"image": ("x.png", image, "image/png")},
                          data={"prompt": prompts, **data})

        for label, rid in {"request_id with CR/LF": "a\r\nSet-Cookie: x", "request_id emoji": "\U0001F600",
                           "request_id of 129 chars": "x" * 129, "request_id with NUL": "a\x00b"}.items():
            r = post(["a cat"], request_id=rid)
            rows.append({"case": label, "clear": r.status_code == 422, "problems": [] if r.status_code == 422
                         else [f"status {r.status_code}"]})
        t0 = time.perf_counter()
        r = post(["x" * 2048])
        ms = (time.perf_counter() - t0) * 1000
        ok = r.status_code == 422 and ms < 100
        rows.append({"case": f"2 KB one-word prompt ({ms:.0f} ms)", "clear": ok, "problems": [] if ok else [f"{r.status_code}, {ms:.0f} ms"]})
        big = png(6324, 6324, black=True)
        before = _rss_hwm()
        r = post([f"prompt {i}" for i in range(32)], image=big, outputs="rle")
        grew = _rss_hwm() - before
        ok = r.status_code in (200, 413) and grew < 1500
        rows.append({"case": f"{len(big) // 1024} KB black 6324x6324 PNG x 32 prompts (peak +{grew:.0f} MB, status "
                             f"{r.status_code})", "clear": ok, "problems": [] if ok else [f"{grew:.0f} MB"]})
        import socket

        host, port = url.removeprefix("http://").rsplit(":", 1)
        t0 = time.perf_counter()
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"POST /segment HTTP/1.1\r\nHost: x\r\nContent-")
            try:
                answer = s.recv(4096)
            except socket.timeout:
                answer = b""
        held = time.perf_counter() - t0
        ok = answer.startswith(b"HTTP/1.1 408") and held < 5
        rows.append({"case": f"incomplete headers (answered after {held:.1f} s)", "clear": ok,
                     "problems": [] if ok else ["held open"]})
        r = c.post(url + "/segment", files={"image": ("x.png", small, "image/png")}, data={"prompts": "[" * 100_000})
        ok = r.status_code == 422
        rows.append({"case": "'prompts' of 100,000 nested [", "clear": ok, "problems": [] if ok else [r.text[:100]]})
        sha = post(["a cat"]).json()["image"]["sha256"]
        r = c.post(url + "/segment", data={"image_sha256": f"  {sha} ", "prompt": "a cat"})
        ok = r.status_code == 200 and r.json()["image"]["cached"]
        rows.append({"case": "image_sha256 with spaces around it", "clear": ok, "problems": [] if ok else [r.text[:100]]})
    slow_app = create_app(load_model("tiny:random"), ServerSettings(max_connections=16))
    with serve_in_thread(slow_app) as url:
        import socket

        host, port = url.removeprefix("http://").rsplit(":", 1)
        from hostile_files import open_slow_bodies

        slow = open_slow_bodies(host, int(port), 60)
        time.sleep(0.5)
        t0 = time.perf_counter()
        try:
            status = httpx.get(url + "/health", timeout=10).status_code
        except httpx.HTTPError as e:
            status = type(e).__name__
        waited = time.perf_counter() - t0
        for s in slow:
            s.close()
        ok = status in (200, 503) and waited < 5
        rows.append({"case": f"60 slow bodies, 16 connections allowed (a request answered {status} in {waited:.2f} s)",
                     "clear": ok, "problems": [] if ok else [f"{status} after {waited:.1f} s"]})
    return rows


def _rss_hwm() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="also write every case here")
    args = ap.parse_args(argv)
    categories: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        categories["checkpoint files"] = run_loader_category(checkpoint_cases(tmp), tmp)
        categories["Hugging Face folders"] = run_loader_category(folder_cases(tmp), tmp)
        categories["command lines"] = cli_cases(tmp)
        categories["output naming"] = naming_cases(tmp)
        categories["HTTP requests"] = http_cases()
        categories["ONNX export folders"] = onnx_cases(tmp)
        categories["embedded vocabularies"] = run_loader_category(vocabulary_cases(tmp), tmp)
        categories["standard input"] = stdin_cases(tmp)
    print("| category | cases | clear errors / right results | bad | peak memory per rejected file |")
    print("|---|---|---|---|---|")
    bad_total = 0
    for name, rows in categories.items():
        bad = [r for r in rows if not r["clear"]]
        bad_total += len(bad)
        peaks = [r["peak_mb"] for r in rows if r.get("peak_mb") is not None]
        peak = f"max {max(peaks):.0f} MB, median {sorted(peaks)[len(peaks) // 2]:.0f} MB" if peaks else "-"
        print(f"| {name} | {len(rows)} | {len(rows) - len(bad)} | {len(bad)} | {peak} |")
    for name, rows in categories.items():
        print(f"\n{name}:")
        for r in rows:
            mem = f" ({r['peak_mb']:.0f} MB, {r['seconds']:.2f} s)" if r.get("peak_mb") is not None else ""
            print(f"  {'ok ' if r['clear'] else 'BAD'} {r['case']}{mem}" + (f": {r['problems']}" if r["problems"] else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(categories, indent=1, default=str))
    return 1 if bad_total else 0


if __name__ == "__main__":
    raise SystemExit(main())
