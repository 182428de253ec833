"""Inference speed of clipseg against the Hugging Face port (transformers.CLIPSegForImageSegmentation).

    nice -n 5 python benchmarks/bench_inference.py --repeats 5 --out benchmarks/results
    python benchmarks/bench_inference.py --tiny --repeats 1 --out /tmp/bench   # smoke run

What it does, in one process and one run (so that the ratios compare like with like on a
shared machine):

1. Builds the HF model with random weights (rd64-refined layout, ViT-B/16, the last
   upsampling layer scaled so logits have a trained model's few-unit magnitude) and ours
   from the same state dict (`clipseg.weights.convert.to_ours`); checks that the logits are
   equal (max |diff| < 1e-4) through the raw model and the Predictor, else exits 1.
2. One image x N prompts (N = 1, 5, 20), all variants interleaved in every repeat, after
   one warm-up run each; medians over the repeats:
   - HF as its docs show: `processor(text=prompts, images=[image] * N, padding=True)` then
     `model(**inputs)` under torch.inference_mode - pixel_values repeated N times, ids
     padded to the longest prompt. The processor is NOT timed (inputs prepared once).
   - ours through the public API: `Predictor.set_image(image)` + `predict(prompts)`, "cold"
     (a fresh Predictor: empty text-embedding cache) and "warm" (prompts cached). This
     includes our preprocessing of the already 352x352 image, tokenization and sigmoid
     (HF's numbers include none of these).
   - ours through the raw model: `encode_image` + `encode_text` + `decode` (cold) or
     `encode_image` + `decode` with cached conditionals (warm); tokenization not timed.
3. Batches of B images (B = 1, 8, 32), one conditional each (precomputed for both; HF
   gets them as `conditional_embeddings`): throughput in images/s, and peak memory
   measured in a fresh subprocess per case: the peak resident set size (Linux VmHWM, reset
   to the current RSS just before the batch via /proc/self/clear_refs; ru_maxrss where that
   is not possible), reported whole and as its growth over the loaded model (tracemalloc
   does not see torch's allocations).
4. ONNX: export (three graphs), check onnxruntime == PyTorch (< 1e-4), time 1x1 and 1x20
   (cold / warm) beside the PyTorch Predictor.
5. Lower precision on CPU: bfloat16 weights and dynamic int8 Linear layers; mask IoU
   against float32 on generated scenes (threshold 0.5) and speed; a path is "kept" only
   if IoU > 0.98.
6. The limit: this CPU's fp32 GEMM rate at ViT-B/16's MLP shape (485 x 768 by 768 x 3072)
   and the rate the image encoder reaches (its FLOPs, counted from the config, over its
   time); best of the repeats for both, since a shared machine only ever slows things down.
7. A folder run of --folder-images generated 640x480 JPEGs through `Segmenter` (the code
   of `clipseg segment`): sequential (batch 1, decoding in the main thread) against batched
   (batch 8, 2 DataLoader workers, writing on a thread), same model, masks written.
8. Command line start-up: `clipseg --help` and `clipseg --version`, best of 5.

torch.set_num_threads(--threads, default 2) for both. OMP_WAIT_POLICY defaults to PASSIVE
(see below) unless set in the environment. Writes <out>/inference.json and
<out>/inference.md (the markdown table of the README).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

# Before torch loads OpenMP. On a shared, oversubscribed CPU the OpenMP default (threads
# spin at every barrier) makes parallel timings collapse and wander - measured here: the
# text encoder for 20 prompts took 1.46 s with 2 spinning threads vs 0.13 s with passive
# waiting. Passive waiting applies to HF and ours alike (same process); onnxruntime gets
# the equivalent (no spinning). Set OMP_WAIT_POLICY yourself to measure otherwise.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # hf_reference: the HF model the parity tests compare against

import common  # noqa: E402  (benchmarks/common.py)
from clipseg import CLIPTokenizer, Predictor  # noqa: E402
from clipseg.io.transforms import InputTransform  # noqa: E402
from clipseg.worldgen import SceneConfig, generate_scene, referring_phrases  # noqa: E402
from clipseg.model import build_clipseg  # noqa: E402
from clipseg.model.fast_cpu import optimize_for_cpu  # noqa: E402
from clipseg.weights.convert import to_ours  # noqa: E402
from hf_reference import make_hf_clipseg  # noqa: E402
from clipseg.weights.hf_config import clipseg_config_from_hf  # noqa: E402

PARITY_TOL = 1e-4
IOU_KEEP = 0.98


PROMPTS = [
    "a red circle", "the blue square on the left", "a photo of a star", "something round",
    "a green triangle", "the large heart", "a small yellow object", "the striped shape",
    "a photo of a cat", "the object at the top", "a purple hexagon", "two circles",
    "the dotted square", "an orange star on the right", "the smallest object", "a cross",
    "the background", "a black arrow", "a pink ring", "the shape in the middle",
]


# ----------------------------------------------------------------------------- models
def make_hf(tiny: bool, seed: int = 0, scale_last: bool = True):
    """Random HF CLIPSegForImageSegmentation, rd64-refined layout (the tests' reference model:
    the released CIDAS/clipseg-rd64-refined layout, or a tiny one for smoke runs)."""
    return make_hf_clipseg(refined=True, size="tiny" if tiny else "full", seed=seed, scale_last=scale_last)


def ours_config(hf):
    cfg = clipseg_config_from_hf(hf.config.to_dict())
    if cfg.clip.vision.image_size < 224:  # the tiny smoke-run layout: small images too
        cfg.input_size = cfg.clip.vision.image_size
    return cfg


def make_ours(hf):
    sd, layout = to_ours(hf.state_dict())
    assert layout == "hf-clipseg", layout
    model = build_clipseg(ours_config(hf)).eval()
    model.load_state_dict(sd, strict=True)
    return optimize_for_cpu(model)  # as clipseg.load gives it


# ---------------------------------------------------------------------------- timing
def timed(fn, sync=None) -> float:
    """Wall time of fn(); `sync` (e.g. torch.cuda.synchronize) runs before and after it."""
    if sync is not None:
        sync()
    t = time.perf_counter()
    fn()
    if sync is not None:
        sync()
    return time.perf_counter() - t


def summarize(times: list[float]) -> dict:
    return {"median_s": statistics.median(times), "min_s": min(times), "runs_s": [round(t, 4) for t in times]}


def run_interleaved(cases: dict, repeats: int, warmup: int = 1, sync=None) -> dict[str, list[float]]:
    """Time every case once per repeat, in turn (so machine load hits all alike).

    cases: name -> (setup, fn); setup() runs untimed before each fn() (may be None); sync: see timed.
    """
    out = {name: [] for name in cases}
    for rep in range(warmup + repeats):
        for name, (setup, fn) in cases.items():
            if setup is not None:
                setup()
            t = timed(fn, sync)
            if rep >= warmup:
                out[name].append(t)
    return out


def ratio(a: dict, b: dict) -> float:
    return a["median_s"] / b["median_s"]


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median over repeats of a_i / b_i (robust to load changing between repeats)."""
    return statistics.median(x / y for x, y in zip(a, b))


# -------------------------------------------------------------------------- helpers
class Bench:
    def __init__(self, args):
        self.args = args
        self.tiny = args.tiny
        self.hf = make_hf(self.tiny)
        self.ours = make_ours(self.hf)
        self.cfg = self.ours.config
        self.size = self.cfg.input_size
        self.ctx = self.cfg.clip.text.context_length
        self.tokenizer = CLIPTokenizer()
        self.transform = InputTransform(size=self.size, multiple=self.cfg.clip.vision.patch_size,
                                        mean=self.cfg.mean, std=self.cfg.std)
        scene = generate_scene(0, SceneConfig(image_size=self.size))
        self.image = scene.image  # uint8 (S, S, 3): already at the input size
        from PIL import Image

        self.pixels = self.transform(Image.fromarray(self.image))[None]  # (1, 3, S, S)
        self.prompts = PROMPTS

    def hf_text_inputs(self, prompts):
        """input_ids / attention_mask as HF's processor gives them with padding=True."""
        ids = self.tokenizer(prompts, context_length=self.ctx)
        lengths = ids.argmax(dim=-1) + 1
        length = int(lengths.max())
        ids = ids[:, :length].clone()
        mask = (torch.arange(length)[None] < lengths[:, None]).long()
        ids[mask == 0] = self.tokenizer.eot_token  # HF's CLIP tokenizer pads with <|endoftext|>
        return ids, mask

    def our_ids(self, prompts):
        return self.tokenizer(prompts, context_length=self.ctx)


# ---------------------------------------------------------------------------- parity
def check_parity(b: Bench) -> dict:
    prompts = b.prompts[:3]
    n = len(prompts)
    ids, mask = b.hf_text_inputs(prompts)
    with torch.inference_mode():
        ref = b.hf(pixel_values=b.pixels.repeat(n, 1, 1, 1), input_ids=ids, attention_mask=mask).logits
        raw = b.ours.decode(b.ours.encode_image(b.pixels), b.ours.encode_text(b.our_ids(prompts)))
    predictor = Predictor(b.ours, b.tokenizer)
    predictor.set_image(b.image)
    api = predictor.predict_logits(prompts)
    res = {
        "prompts": n,
        "max_abs_logit": float(ref.abs().max()),
        "max_abs_diff_raw": float((raw - ref).abs().max()),
        "max_abs_diff_predictor": float((api - ref).abs().max()),
        "tolerance": PARITY_TOL,
    }
    res["ok"] = res["max_abs_diff_raw"] < PARITY_TOL and res["max_abs_diff_predictor"] < PARITY_TOL
    return res


# --------------------------------------------------------------------- prompt cases
def bench_prompts(b: Bench, counts, repeats) -> dict:
    results = {}
    for n in counts:
        prompts = b.prompts[:n]
        hf_ids, hf_mask = b.hf_text_inputs(prompts)
        hf_pixels = b.pixels.repeat(n, 1, 1, 1)
        ids = b.our_ids(prompts)
        warm_pred = Predictor(b.ours, b.tokenizer)
        warm_pred.set_image(b.image)
        warm_pred.predict(prompts)  # fills its cache
        with torch.inference_mode():
            cached_cond = b.ours.encode_text(ids)
        state = {}

        def fresh():
            state["p"] = Predictor(b.ours, b.tokenizer)

        def hf_run():
            with torch.inference_mode():
                b.hf(pixel_values=hf_pixels, input_ids=hf_ids, attention_mask=hf_mask).logits

        def pred_cold():
            p = state["p"]
            p.set_image(b.image)
            p.predict(prompts)

        def pred_warm():
            warm_pred.set_image(b.image)
            warm_pred.predict(prompts)

        def raw_cold():
            with torch.inference_mode():
                b.ours.decode(b.ours.encode_image(b.pixels), b.ours.encode_text(ids))

        def raw_warm():
            with torch.inference_mode():
                b.ours.decode(b.ours.encode_image(b.pixels), cached_cond)

        cases = {
            "hf": (None, hf_run),
            "ours_predictor_cold": (fresh, pred_cold),
            "ours_predictor_warm": (None, pred_warm),
            "ours_raw_cold": (None, raw_cold),
            "ours_raw_warm": (None, raw_warm),
        }
        times = run_interleaved(cases, repeats)
        r = {k: summarize(v) for k, v in times.items()}
        r["speedup"] = {k: ratio(r["hf"], r[k]) for k in cases if k != "hf"}
        r["speedup_paired"] = {k: paired_ratio(times["hf"], times[k]) for k in cases if k != "hf"}
        results[str(n)] = r
        print(f"  1 image x {n:2d} prompts: HF {r['hf']['median_s']:.3f}s | ours cold "
              f"{r['ours_predictor_cold']['median_s']:.3f}s ({r['speedup']['ours_predictor_cold']:.2f}x) | warm "
              f"{r['ours_predictor_warm']['median_s']:.3f}s ({r['speedup']['ours_predictor_warm']:.2f}x)", flush=True)
    return results


# ---------------------------------------------------------------------- batch cases
MEMORY_CHILD = r"""
import json, resource, sys, torch
sys.path.insert(0, {src!r})
sys.path.insert(0, {bench_dir!r})
torch.set_num_threads({threads})
import bench_inference as bi
from common import proc_status_mib, reset_peak_rss
which, batch, tiny = {which!r}, {batch}, {tiny}
hf = bi.make_hf(tiny, scale_last=False)  # memory does not depend on the weights' values
model = hf if which == "hf" else bi.optimize_for_cpu(bi.build_clipseg(bi.ours_config(hf)).eval())
if which != "hf":
    del hf
import gc; gc.collect()
pixels = torch.randn(batch, 3, {size}, {size})
cond = torch.randn(batch, {embed})

method = "VmHWM after reset" if reset_peak_rss() else "ru_maxrss"
before = proc_status_mib("VmRSS:")
with torch.inference_mode():
    if which == "hf":
        model(pixel_values=pixels, conditional_embeddings=cond).logits
    else:
        model.decode(model.encode_image(pixels), cond)
peak = proc_status_mib("VmHWM:") if method.startswith("VmHWM") else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"rss_before_mib": before, "peak_rss_mib": peak, "method": method}}))
"""


def measure_memory(b: Bench, which: str, batch: int) -> dict:
    """Peak resident memory of one batch in a fresh process: (peak RSS, growth over the loaded model)."""
    code = MEMORY_CHILD.format(
        src=str(ROOT / "src"), threads=b.args.threads, which=which, batch=batch, tiny=b.tiny,
        bench_dir=str(Path(__file__).resolve().parent), size=b.size, embed=b.cfg.clip.embed_dim,
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    m["inference_growth_mib"] = m["peak_rss_mib"] - m["rss_before_mib"]
    return m


def bench_batches(b: Bench, sizes, hf_sizes, repeats, memory: bool) -> dict:
    results = {}
    g = torch.Generator().manual_seed(0)
    for bs in sizes:
        pixels = torch.randn(bs, 3, b.size, b.size, generator=g)
        with torch.inference_mode():
            cond = b.ours.encode_text(b.our_ids([b.prompts[i % len(b.prompts)] for i in range(bs)]))

        def ours_run():
            with torch.inference_mode():
                b.ours.decode(b.ours.encode_image(pixels), cond)

        def hf_run():
            with torch.inference_mode():
                b.hf(pixel_values=pixels, conditional_embeddings=cond).logits

        cases = {"ours": (None, ours_run)}
        if bs in hf_sizes:
            cases["hf"] = (None, hf_run)
        reps = repeats if bs <= 8 else max(1, min(repeats, 3))
        times = run_interleaved(cases, reps)
        r = {}
        for k, v in times.items():
            s = summarize(v)
            s["images_per_s"] = bs / s["median_s"]
            if memory:
                s["memory"] = measure_memory(b, k, bs)
            r[k] = s
        if "hf" in r:
            r["speedup"] = ratio(r["hf"], r["ours"])
        results[str(bs)] = r
        line = f"  batch {bs:2d}: ours {r['ours']['images_per_s']:.2f} img/s"
        if "hf" in r:
            line += f" | HF {r['hf']['images_per_s']:.2f} img/s ({r['speedup']:.2f}x)"
        print(line, flush=True)
    return results


# ---------------------------------------------------------------------------- ONNX
def bench_onnx(b: Bench, repeats) -> dict:
    try:
        import onnxruntime  # noqa: F401

        from clipseg.export import OnnxPredictor, export_onnx
    except ImportError as e:
        return {"skipped": f"onnx/onnxruntime not installed ({e})"}
    out = Path(tempfile.mkdtemp(prefix="clipseg-onnx-"))
    t = time.perf_counter()
    export_onnx(b.ours, out, input_size=b.size)
    export_s = time.perf_counter() - t
    spinning = os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE"
    onnx = OnnxPredictor(out, b.tokenizer, threads=b.args.threads, allow_spinning=spinning)
    torch_pred = Predictor(b.ours, b.tokenizer)
    prompts20 = b.prompts[:20]
    onnx.set_image(b.image)
    torch_pred.set_image(b.image)
    diff = float(np.abs(onnx.predict_logits(prompts20) - torch_pred.predict_logits(prompts20).numpy()).max())
    res = {"export_s": export_s, "max_abs_diff_vs_pytorch": diff, "ok": diff < PARITY_TOL,
           "exporter": "torch.onnx.export(dynamo=False)", "onnxruntime": onnxruntime.__version__,
           "sizes_mib": {p.name: p.stat().st_size / 2**20 for p in out.glob("*.onnx")}}
    for n in (1, 20):
        prompts = b.prompts[:n]
        state = {}

        def fresh_onnx():
            onnx.text_cache.clear()

        def fresh_torch():
            state["p"] = Predictor(b.ours, b.tokenizer)

        def run(p):
            def f():
                p_ = state["p"] if p is None else p
                p_.set_image(b.image)
                p_.predict(prompts)
            return f

        cases = {
            "pytorch_cold": (fresh_torch, run(None)),
            "onnx_cold": (fresh_onnx, run(onnx)),
            "pytorch_warm": (None, run(torch_pred)),
            "onnx_warm": (None, run(onnx)),
        }
        torch_pred.predict(prompts)
        times = run_interleaved(cases, repeats)
        r = {k: summarize(v) for k, v in times.items()}
        r["onnx_vs_pytorch"] = {"cold": ratio(r["pytorch_cold"], r["onnx_cold"]),
                                "warm": ratio(r["pytorch_warm"], r["onnx_warm"])}
        res[str(n)] = r
        print(f"  ONNX 1x{n}: pytorch warm {r['pytorch_warm']['median_s']:.3f}s | onnxruntime warm "
              f"{r['onnx_warm']['median_s']:.3f}s | cold {r['pytorch_cold']['median_s']:.3f}s vs "
              f"{r['onnx_cold']['median_s']:.3f}s", flush=True)
    for p in out.iterdir():
        p.unlink()
    out.rmdir()
    return res


# ------------------------------------------------------------------- low precision
def scene_prompts(scene, limit: int = 4) -> list[str]:
    texts = []
    for i in range(len(scene.objects)):
        for p in referring_phrases(scene, i):
            if p.text not in texts:
                texts.append(p.text)
    return texts[:limit]


def bench_low_precision(b: Bench, repeats: int, scenes: int) -> dict:
    variants = {"fp32": b.ours, "bf16": copy.deepcopy(b.ours).to(torch.bfloat16)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization deprecation notice
        variants["int8_dynamic"] = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(b.ours), {torch.nn.Linear}, dtype=torch.qint8
        )
    preds = {k: Predictor(m, b.tokenizer) for k, m in variants.items()}
    inter = {k: 0 for k in variants}
    union = {k: 0 for k in variants}
    maxdiff = {k: 0.0 for k in variants}
    for s in range(scenes):
        scene = generate_scene(1000 + s, SceneConfig(image_size=b.size))
        prompts = scene_prompts(scene)
        ref = None
        for k, p in preds.items():
            p.set_image(scene.image)
            logits = p.predict_logits(prompts).float()
            if ref is None:
                ref = logits
            pos, ref_pos = logits > 0, ref > 0  # probability 0.5
            inter[k] += int((pos & ref_pos).sum())
            union[k] += int((pos | ref_pos).sum())
            maxdiff[k] = max(maxdiff[k], float((logits - ref).abs().max()))
    res = {}
    for n in (1, 20):
        prompts = b.prompts[:n]
        for p in preds.values():
            p.predict(prompts)  # warm caches

        def run(p):
            def f():
                p.set_image(b.image)
                p.predict(prompts)
            return f

        cases = {k: (None, run(p)) for k, p in preds.items()}
        if n == 1:  # HF in the same interleaving: the lower-precision paths against HF float32
            ids, mask = b.hf_text_inputs(prompts)

            def hf_run():
                with torch.inference_mode():
                    b.hf(pixel_values=b.pixels, input_ids=ids, attention_mask=mask).logits

            cases["hf"] = (None, hf_run)
        times = run_interleaved(cases, repeats)
        for k, v in times.items():
            res.setdefault(k, {})[f"1x{n}_warm"] = summarize(v)
    for k in variants:
        iou = inter[k] / max(union[k], 1)
        res[k].update({"mask_iou_vs_fp32": iou, "max_abs_logit_diff": maxdiff[k], "kept": iou > IOU_KEEP})
        for n in (1, 20):
            res[k][f"speedup_vs_fp32_1x{n}"] = ratio(res["fp32"][f"1x{n}_warm"], res[k][f"1x{n}_warm"])
        res[k]["speedup_vs_hf_1x1"] = ratio(res["hf"]["1x1_warm"], res[k]["1x1_warm"])
    res["scenes"] = scenes
    res["iou_threshold"] = IOU_KEEP
    for k in variants:
        print(f"  {k}: IoU vs fp32 {res[k]['mask_iou_vs_fp32']:.4f}, 1x1 warm {res[k]['1x1_warm']['median_s']:.3f}s, "
              f"1x20 warm {res[k]['1x20_warm']['median_s']:.3f}s", flush=True)
    return res


# ---------------------------------------------------------------------------- report
# ------------------------------------------------------------- compute rate (the limit)
def encoder_flops(cfg) -> float:
    """Multiply-adds x 2 of encode_image at the input size: patch embedding and the blocks run."""
    vis = cfg.clip.vision
    n = 1 + (cfg.input_size // vis.patch_size) ** 2
    d, hidden = vis.width, int(vis.width * vis.mlp_ratio)
    per_block = 2 * n * (4 * d * d + 2 * d * hidden) + 2 * 2 * n * n * d  # qkv+out, MLP; scores and values
    blocks = max(cfg.decoder.extract_layers) + 1
    return 2 * (n - 1) * 3 * vis.patch_size ** 2 * d + blocks * per_block


def bench_compute_rate(b: Bench, repeats: int) -> dict:
    vis = b.cfg.clip.vision
    n, d, hidden = 1 + (b.size // vis.patch_size) ** 2, vis.width, int(vis.width * vis.mlp_ratio)
    a, w = torch.randn(n, d), torch.randn(d, hidden)
    gemm = [timed(lambda: torch.mm(a, w)) for _ in range(max(10, 5 * repeats))]
    with torch.inference_mode():
        enc = [timed(lambda: b.ours.encode_image(b.pixels)) for _ in range(max(3, repeats))]
    gemm_rate = 2 * n * d * hidden / min(gemm) / 1e9
    flops = encoder_flops(b.cfg)
    enc_rate = flops / min(enc) / 1e9
    return {"gemm_shape": [n, d, hidden], "gemm_gflops": gemm_rate, "encoder_gflop": flops / 1e9,
            "encoder_s_best": min(enc), "encoder_s_median": statistics.median(enc), "encoder_gflops": enc_rate,
            "encoder_fraction_of_gemm": enc_rate / gemm_rate}


# ------------------------------------------------------------------------ folder run
def bench_folder(b: Bench, images: int) -> dict:
    from PIL import Image

    from clipseg.runs.folder import Segmenter, SegmentOptions

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "in"
        root.mkdir()
        for i in range(images):
            scene = generate_scene(i, SceneConfig(image_size=480))
            Image.fromarray(scene.image).resize((640, 480)).save(root / f"{i:04d}.jpg", quality=90)
        predictor = Predictor(b.ours, b.tokenizer)
        runs = {}
        for name, batch, workers in (("sequential", 1, 0), ("batched", 8, 2)):
            opts = SegmentOptions(out_dir=Path(tmp) / name, outputs=("mask",), batch_size=batch, workers=workers,
                                  progress=False)
            seg = Segmenter(predictor, ["a red circle", "something round"], ["a red circle", "something round"], opts)
            t0 = time.perf_counter()
            summary = seg.run([root])
            runs[name] = {"seconds": time.perf_counter() - t0, "done": summary.done, "failed": len(summary.failed),
                          "batch_size": batch, "workers": workers}
            runs[name]["images_per_s"] = summary.done / runs[name]["seconds"]
    runs["speedup"] = runs["sequential"]["seconds"] / runs["batched"]["seconds"]
    runs["images"] = images
    return runs


def bench_cli_startup() -> dict:
    exe = Path(sys.executable).with_name("clipseg")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "clipseg.cli"]
    out = {}
    for flag in ("--help", "--version"):
        out[flag] = min(timed(lambda: subprocess.run([*cmd, flag], capture_output=True, check=True)) for _ in range(5))
    return out


def environment(args) -> dict:
    import transformers

    return {
        **common.environment(), "transformers": transformers.__version__, "dtype": "float32",
        "weights": "random (same for both)", "tiny": args.tiny, "repeats": args.repeats,
    }


def fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def markdown(res: dict) -> str:
    env = res["environment"]
    layout = "tiny test layout" if env["tiny"] else "rd64-refined layout, ViT-B/16, 352x352"
    lines = [
        f"Measured on {env['cpu']} ({env['cpu_count']} cores, shared; torch threads = {env['torch_threads']}), "
        f"torch {env['torch']}, transformers {env['transformers']}, float32, random weights ({layout}), "
        f"OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}. "
        f"Medians of {env['repeats']} runs after a warm-up, all variants interleaved in the same run; "
        f"speed-up = HF median / ours median. Load average {res['load_before']} before, {res['load_after']} after.",
        "",
        f"Parity: max |logit diff| vs HF = {res['parity']['max_abs_diff_predictor']:.2e} (Predictor), "
        f"{res['parity']['max_abs_diff_raw']:.2e} (raw model); logits up to {res['parity']['max_abs_logit']:.2f}.",
        "",
        "**One image, N text prompts** (seconds; HF = one batched `model(**processor(text=prompts, "
        "images=[image]*N, padding=True))`, processor not timed; ours = `Predictor.set_image` + `predict`, "
        "preprocessing and tokenization included; cold = empty text-embedding cache, warm = prompts cached)",
        "",
        "| prompts | HF | ours cold | ours warm | speed-up cold | speed-up warm | raw model cold | raw model warm |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, r in res["prompts"].items():
        lines.append(
            f"| {n} | {fmt(r['hf']['median_s'])} | {fmt(r['ours_predictor_cold']['median_s'])} | "
            f"{fmt(r['ours_predictor_warm']['median_s'])} | **{r['speedup']['ours_predictor_cold']:.2f}x** | "
            f"**{r['speedup']['ours_predictor_warm']:.2f}x** | {fmt(r['ours_raw_cold']['median_s'])} "
            f"({r['speedup']['ours_raw_cold']:.2f}x) | {fmt(r['ours_raw_warm']['median_s'])} "
            f"({r['speedup']['ours_raw_warm']:.2f}x) |"
        )
    lines += [
        "",
        "**Batches of images**, one conditional each (text embeddings precomputed for both, HF via "
        "`conditional_embeddings`). Peak memory: peak RSS (VmHWM) of a fresh subprocess per case "
        "(whole process, model included; in brackets the growth during the batch).",
        "",
        "| batch | ours s | ours img/s | ours peak RSS MiB | HF s | HF img/s | HF peak RSS MiB | speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def mem(m):
        if not m:
            return "-"
        if "error" in m:
            return "error"
        return f"{m['peak_rss_mib']:.0f} (+{m['inference_growth_mib']:.0f})"

    for bs, r in res["batches"].items():
        o, h = r["ours"], r.get("hf")
        lines.append(
            f"| {bs} | {fmt(o['median_s'])} | {o['images_per_s']:.2f} | {mem(o.get('memory'))} | "
            + (f"{fmt(h['median_s'])} | {h['images_per_s']:.2f} | {mem(h.get('memory'))} | {r['speedup']:.2f}x |"
               if h else "- | - | - | - |")
        )
    onnx = res.get("onnx", {})
    if onnx and "skipped" not in onnx:
        lines += [
            "",
            f"**ONNX** (`clipseg.export.export_onnx`, three graphs; onnxruntime {onnx['onnxruntime']}, same threads). "
            f"Max |logit diff| onnxruntime vs PyTorch: {onnx['max_abs_diff_vs_pytorch']:.2e}. "
            "Both through their predictors (set_image + predict).",
            "",
            "| case | PyTorch cold | onnxruntime cold | PyTorch warm | onnxruntime warm |",
            "|---|---:|---:|---:|---:|",
        ]
        for n in ("1", "20"):
            r = onnx[n]
            lines.append(
                f"| 1 image x {n} | {fmt(r['pytorch_cold']['median_s'])} | {fmt(r['onnx_cold']['median_s'])} | "
                f"{fmt(r['pytorch_warm']['median_s'])} | {fmt(r['onnx_warm']['median_s'])} |"
            )
    elif onnx:
        lines += ["", f"ONNX: skipped ({onnx['skipped']})."]
    low = res.get("low_precision")
    if low:
        lines += [
            "",
            f"**Lower precision on CPU** (Predictor, warm cache). Mask IoU vs float32 at probability 0.5 over "
            f"{low['scenes']} generated scenes; a path is kept only if IoU > {low['iou_threshold']}.",
            "",
            "| variant | mask IoU vs fp32 | max logit diff | 1x1 s | 1x20 s | speed-up vs fp32 (1x1 / 1x20) | "
            "1x1 vs HF fp32 | kept |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for k in ("fp32", "bf16", "int8_dynamic"):
            r = low[k]
            lines.append(
                f"| {k} | {r['mask_iou_vs_fp32']:.4f} | {r['max_abs_logit_diff']:.3f} | {fmt(r['1x1_warm']['median_s'])} | "
                f"{fmt(r['1x20_warm']['median_s'])} | {r['speedup_vs_fp32_1x1']:.2f}x / {r['speedup_vs_fp32_1x20']:.2f}x | "
                f"{r['speedup_vs_hf_1x1']:.2f}x | {'yes' if r['kept'] else 'no'} |"
            )
        lines.append(f"\n(HF float32, 1 image x 1 prompt, in the same interleaving: "
                     f"{fmt(low['hf']['1x1_warm']['median_s'])} s.)")
    goals = res.get("goals")
    if "compute_rate" in res:
        c = res["compute_rate"]
        n, d, h = c["gemm_shape"]
        lines += ["", f"**Against the limit** (best of the repeats): fp32 GEMM {n}x{d} by {d}x{h} at "
                      f"{c['gemm_gflops']:.0f} GFLOP/s; the image encoder ({c['encoder_gflop']:.1f} GFLOP) in "
                      f"{c['encoder_s_best']:.3f} s = {c['encoder_gflops']:.0f} GFLOP/s, "
                      f"**{100 * c['encoder_fraction_of_gemm']:.0f} %** of the GEMM rate."]
    if "folder" in res:
        f = res["folder"]
        lines += ["", f"**Folder run** of {f['images']} generated 640x480 JPEGs, 2 prompts, masks written: "
                      f"sequential (batch 1, no workers) {f['sequential']['seconds']:.1f} s "
                      f"({f['sequential']['images_per_s']:.2f} img/s), batched (batch 8, 2 workers, writer thread) "
                      f"{f['batched']['seconds']:.1f} s ({f['batched']['images_per_s']:.2f} img/s): "
                      f"**{f['speedup']:.2f}x**."]
    if "cli_startup_s" in res:
        lines += ["", "**Command line start-up**: " + ", ".join(f"`clipseg {k}` {v:.2f} s"
                                                               for k, v in res["cli_startup_s"].items()) + "."]
    if goals:
        lines += ["", "Goals: " + "; ".join(f"{k}: {v['measured']:.2f}x (goal >= {v['goal']}x, "
                                            f"{'met' if v['met'] else 'NOT met'})" for k, v in goals.items()) + "."]
    return "\n".join(lines) + "\n"


def goals(res: dict) -> dict:
    out = {}
    p = res["prompts"]
    if "20" in p:
        out["1x20 cold"] = p["20"]["speedup"]["ours_predictor_cold"]
        out["1x20 warm"] = p["20"]["speedup"]["ours_predictor_warm"]
    if "1" in p:
        out["1x1 cold"] = p["1"]["speedup"]["ours_predictor_cold"]
        out["1x1 warm"] = p["1"]["speedup"]["ours_predictor_warm"]
    if "compute_rate" in res:
        out["encoder / GEMM rate"] = res["compute_rate"]["encoder_fraction_of_gemm"]
    if "folder" in res:
        out["folder run batched / sequential"] = res["folder"]["speedup"]
    target = {"1x20 cold": 10, "1x20 warm": 10, "1x1 cold": 1.3, "1x1 warm": 1.3, "encoder / GEMM rate": 0.9,
              "folder run batched / sequential": 1.3}
    return {k: {"measured": v, "goal": target[k], "met": v >= target[k]} for k, v in out.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per case (after one warm-up)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--threads", type=int, default=2, help="torch (and onnxruntime) intra-op threads")
    ap.add_argument("--tiny", action="store_true", help="tiny models: a quick smoke run, numbers meaningless")
    ap.add_argument("--prompts", type=int, nargs="+", default=[1, 5, 20])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--hf-batches", type=int, nargs="+", default=[1, 8], help="batch sizes also timed with HF")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--no-low-precision", action="store_true")
    ap.add_argument("--scenes", type=int, default=8, help="generated scenes for the low-precision IoU")
    ap.add_argument("--folder-images", type=int, default=None,
                    help="images of the folder-run case (default 200, 12 with --tiny; 0 = skip)")
    args = ap.parse_args(argv)
    if args.folder_images is None:
        args.folder_images = 12 if args.tiny else 200

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    res = {"load_before": common.load()}
    print(f"building HF and ours ({'tiny' if args.tiny else 'rd64-refined, ViT-B/16'}), threads={args.threads}",
          flush=True)
    b = Bench(args)
    res["environment"] = environment(args)
    res["parity"] = parity = check_parity(b)
    print(f"parity: max |diff| predictor {parity['max_abs_diff_predictor']:.2e}, raw {parity['max_abs_diff_raw']:.2e}",
          flush=True)
    if not parity["ok"]:
        print(f"FAILED: outputs differ from HF by more than {PARITY_TOL}", file=sys.stderr)
        return 1
    print("one image x N prompts", flush=True)
    res["prompts"] = bench_prompts(b, args.prompts, args.repeats)
    print("batches of images", flush=True)
    res["batches"] = bench_batches(b, args.batches, set(args.hf_batches), args.repeats, not args.no_memory)
    if not args.no_onnx:
        print("ONNX", flush=True)
        res["onnx"] = bench_onnx(b, args.repeats)
        if res["onnx"].get("ok") is False:
            print("FAILED: onnxruntime outputs differ from PyTorch", file=sys.stderr)
            return 1
    if not args.no_low_precision:
        print("lower precision", flush=True)
        res["low_precision"] = bench_low_precision(b, args.repeats, 2 if args.tiny else args.scenes)
    print("compute rate against this CPU's GEMM rate", flush=True)
    res["compute_rate"] = bench_compute_rate(b, args.repeats)
    if args.folder_images:
        print(f"folder run of {args.folder_images} images", flush=True)
        res["folder"] = bench_folder(b, args.folder_images)
    res["cli_startup_s"] = bench_cli_startup()
    if not args.tiny:  # the tiny layout's numbers say nothing about the goals
        res["goals"] = goals(res)
    res["load_after"] = common.load()
    common.write_results(args.out, "inference", res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
