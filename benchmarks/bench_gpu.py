"""Batch throughput on a GPU: clipseg against the Hugging Face port, fp32 / fp16 / bf16.

    python benchmarks/bench_gpu.py --out benchmarks/results            # on a CUDA machine
    python benchmarks/bench_gpu.py --tiny --device cpu --out /tmp/gpu  # smoke run anywhere

One process, one run, all cases interleaved in every repeat (so the ratios compare like with
like). It builds the HF model with random weights (rd64-refined layout, ViT-B/16) and ours
from the same state dict, checks on the device in float32 (TF32 off) that the logits agree
(max |diff| < 1e-3), then for batches of B images (default 1, 8, 32), one conditional each
(precomputed, given to HF as `conditional_embeddings`):

- HF in float32 (as its docs show), HF with its weights in float16 (`model.half()`);
- ours in float32 and under fp16 / bf16 autocast (`clipseg.inference.precision`, the path
  `clipseg segment --device cuda` takes);

images/s (median over the repeats, CUDA synchronised), peak memory allocated, and for the
low-precision runs the largest probability difference and the mask IoU (threshold 0.5)
against our float32 maps on the same batch. Writes <out>/gpu.json and <out>/gpu.md.
The issue's goal: ours in fp16 at batch 32 at least 3x HF's batch throughput.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see bench_inference.py)

import torch  # noqa: E402

import bench_inference as bi  # noqa: E402  (benchmarks/bench_inference.py: the models, same layout)
import common  # noqa: E402
from clipseg.inference.precision import autocast_context  # noqa: E402

PARITY_TOL = 1e-3  # float32 on a GPU (TF32 off), HF and ours from one state dict


def parity(hf, ours, size: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    pixels = torch.randn(2, 3, size, size, generator=g).to(device)
    ids = torch.randint(1, 400, (2, 8), generator=g).to(device)
    with torch.inference_mode():
        cond = ours.encode_text(ids)
        a = hf(pixel_values=pixels, conditional_embeddings=cond).logits
        b = ours.decode(ours.encode_image(pixels), cond)
    diff = float((a.reshape(b.shape) - b).abs().max())
    return {"max_abs_diff": diff, "ok": diff < PARITY_TOL}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--tiny", action="store_true", help="tiny models: a quick smoke run, numbers meaningless")
    ap.add_argument("--out", type=Path, default=bi.ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    hf = bi.make_hf(args.tiny)
    ours = bi.make_ours(hf).to(device)
    hf = hf.to(device)
    size = ours.config.input_size
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    res: dict = {"environment": {**common.environment(), "device": str(device),
                                 "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None},
                 "parity": parity(hf, ours, size, device), "batches": {}}
    print(f"parity (float32): max |diff| {res['parity']['max_abs_diff']:.2e}", flush=True)
    if not res["parity"]["ok"]:
        print("parity failed: the timings would compare different computations", file=sys.stderr)
        return 1
    half_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16  # fp16 matmuls are slow on CPU
    hf_half = bi.make_hf(args.tiny).to(device).to(half_dtype)
    g = torch.Generator().manual_seed(1)
    for bs in args.batches:
        pixels = torch.randn(bs, 3, size, size, generator=g).to(device)
        with torch.inference_mode():
            cond = ours.encode_text(torch.randint(1, 400, (bs, 8), generator=g).to(device))
            reference = ours.decode(ours.encode_image(pixels), cond).sigmoid()
        outputs: dict = {}

        def ours_at(dtype):
            def run():
                with torch.inference_mode(), autocast_context(dtype, device):
                    outputs[dtype] = ours.decode(ours.encode_image(pixels), cond).float().sigmoid()
            return run

        def hf_run():
            with torch.inference_mode():
                hf(pixel_values=pixels, conditional_embeddings=cond)

        def hf_half_run():
            with torch.inference_mode():
                hf_half(pixel_values=pixels.to(half_dtype), conditional_embeddings=cond.to(half_dtype))

        cases = {"hf_fp32": hf_run, f"hf_{str(half_dtype)[6:]}_weights": hf_half_run, "ours_fp32": ours_at(None),
                 "ours_fp16_autocast": ours_at(torch.float16), "ours_bf16_autocast": ours_at(torch.bfloat16)}
        if device.type != "cuda":
            del cases["ours_fp16_autocast"]
        peaks: dict[str, float] = {}
        for k, fn in cases.items():  # warm-up, and the peak memory of one run
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            bi.timed(fn, sync)
            if device.type == "cuda":
                peaks[k] = torch.cuda.max_memory_allocated(device) / 2**20
        times = bi.run_interleaved({k: (None, fn) for k, fn in cases.items()}, args.repeats, warmup=0, sync=sync)
        row = {}
        for k, v in times.items():
            med = statistics.median(v)
            row[k] = {"median_s": med, "images_per_s": bs / med, "peak_mib": peaks.get(k)}
        for dtype, name in ((torch.float16, "ours_fp16_autocast"), (torch.bfloat16, "ours_bf16_autocast")):
            if name in row:
                got, ref = outputs[dtype], reference
                inter = ((got >= 0.5) & (ref >= 0.5)).sum().item()
                union = ((got >= 0.5) | (ref >= 0.5)).sum().item()
                row[name]["max_prob_diff"] = float((got - ref).abs().max())
                row[name]["mask_iou_vs_fp32"] = inter / union if union else 1.0
        best_ours = max((k for k in row if k.startswith("ours_")), key=lambda k: row[k]["images_per_s"])
        row["best_ours"] = best_ours
        row["vs_hf_fp32"] = row[best_ours]["images_per_s"] / row["hf_fp32"]["images_per_s"]
        row["vs_hf_best"] = row[best_ours]["images_per_s"] / max(row[k]["images_per_s"] for k in cases if k.startswith("hf"))
        res["batches"][str(bs)] = row
        print(f"  batch {bs:2d}: " + ", ".join(f"{k} {row[k]['images_per_s']:.1f}" for k in cases)
              + f" img/s; best ours / HF fp32 {row['vs_hf_fp32']:.2f}x, / best HF {row['vs_hf_best']:.2f}x", flush=True)
    common.write_results(args.out, "gpu", res, markdown(res))
    return 0


def markdown(res: dict) -> str:
    env = res["environment"]
    lines = [f"GPU batch throughput ({env['gpu'] or env['device']}, torch {env['torch']}; parity "
             f"max |diff| {res['parity']['max_abs_diff']:.1e} in float32), images/s, median:", ""]
    first = next(iter(res["batches"].values()))
    cases = [k for k in first if isinstance(first[k], dict)]
    lines += ["| batch | " + " | ".join(cases) + " | best ours / HF fp32 | best ours / best HF |",
              "|---" * (len(cases) + 3) + "|"]
    for bs, row in res["batches"].items():
        cells = []
        for k in cases:
            c = f"{row[k]['images_per_s']:.1f}"
            if "mask_iou_vs_fp32" in row[k]:
                c += f" (IoU {row[k]['mask_iou_vs_fp32']:.3f})"
            cells.append(c)
        lines.append(f"| {bs} | " + " | ".join(cells) + f" | {row['vs_hf_fp32']:.2f}x | {row['vs_hf_best']:.2f}x |")
    last = res["batches"][max(res["batches"], key=int)]
    lines += ["", f"Goal (batch {max(res['batches'], key=int)}): best ours at least 3x HF's batch throughput: "
              f"{last['vs_hf_fp32']:.2f}x HF fp32, {last['vs_hf_best']:.2f}x HF's best "
              f"({'met' if last['vs_hf_fp32'] >= 3 else 'NOT met'} against HF fp32)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
