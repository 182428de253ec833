"""Speed of the CLIPSeg decoder training step (iterations/s), CPU or GPU.

    nice -n 5 python benchmarks/bench_training.py --out benchmarks/results          # CPU: few iterations
    python benchmarks/bench_training.py --iterations 50 --out benchmarks/results    # on a GPU
    python benchmarks/bench_training.py --tiny --batch 4 --iterations 1 --warmup 0  # smoke run

One step, as `clipseg.training.trainer` does it (paper appendix: batch 64, 352 px, AdamW,
BCE with logits, mixed precision, frozen backbone), on random images, masks and
conditionals (text embeddings come from the prompt cache in real training, so they cost
nothing here either):

    with torch.inference_mode(), autocast:  features = model.encode_image(images)
    with autocast:                          logits = model.decoder(features, cond)
    loss = bce(logits, masks); loss.backward(); optimizer.step()

The frozen backbone runs under inference mode (no autograd bookkeeping, stops after the
deepest extracted layer); its activations are cloned out of inference mode for the
decoder's autograd. Precisions compared in the same run: float32 and autocast (bfloat16 on
CPU; bfloat16 or float16 with a GradScaler on CUDA). Reported: iterations/s of the full
step, and the split between backbone and decoder forward+backward+optimizer (the latter is
the step's cost when features are precomputed). Peak memory: CUDA max_memory_allocated,
or the process's peak RSS on CPU (Linux VmHWM, reset before each precision's run).
Writes <out>/training.json and <out>/training.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

# Before torch loads OpenMP: passive waiting keeps timings sane on a shared, oversubscribed
# CPU (see bench_inference.py). Set OMP_WAIT_POLICY yourself to measure otherwise.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

import common  # noqa: E402  (benchmarks/common.py)
from clipseg.model import build_clipseg  # noqa: E402
from clipseg.model.fast_cpu import optimize_for_cpu  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        common.reset_peak_rss()


def peak_mib(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return common.proc_status_mib("VmHWM:")


def amp_dtypes(device: torch.device, amp: str) -> list[torch.dtype | None]:
    """Precisions to run: None = float32."""
    if amp == "off":
        return [None]
    if amp == "bf16":
        return [None, torch.bfloat16]
    if amp == "fp16":
        return [None, torch.float16]
    if device.type == "cuda":
        return [None, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16]
    return [None, torch.bfloat16]


def run_precision(model, device, dtype, batch, iterations, warmup, seed=0) -> dict:
    cfg = model.config
    size = cfg.input_size
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, size, size, generator=g).to(device)
    masks = (torch.rand(batch, size, size, generator=g) > 0.7).float().to(device)
    cond = torch.randn(batch, cfg.clip.embed_dim, generator=g).to(device)
    decoder = model.decoder
    optimizer = torch.optim.AdamW([p for p in decoder.parameters() if p.requires_grad], lr=1e-3, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    model.train()  # decoder in train mode (dropout); the backbone stays in eval mode

    def autocast():
        return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()

    backbone_s, decoder_s, total_s, losses = [], [], [], []
    reset_peak(device)
    for it in range(warmup + iterations):
        sync(device)
        t0 = time.perf_counter()
        with torch.inference_mode(), autocast():
            feats = model.encode_image(images)
        acts = [a.clone() for a in feats.activations]  # normal tensors, usable by autograd
        sync(device)
        t1 = time.perf_counter()
        with autocast():
            logits = decoder(acts, cond.to(acts[0].dtype), feats.grid)
        loss = F.binary_cross_entropy_with_logits(logits.float(), masks)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        sync(device)
        t2 = time.perf_counter()
        losses.append(float(loss.detach()))
        if it >= warmup:
            backbone_s.append(t1 - t0)
            decoder_s.append(t2 - t1)
            total_s.append(t2 - t0)
    step = statistics.median(total_s)
    dec = statistics.median(decoder_s)
    return {
        "precision": "float32" if dtype is None else f"autocast {str(dtype).replace('torch.', '')}",
        "iterations": iterations, "warmup": warmup, "batch": batch,
        "step_median_s": step, "iterations_per_s": 1 / step,
        "backbone_median_s": statistics.median(backbone_s), "decoder_median_s": dec,
        "decoder_only_iterations_per_s": 1 / dec,
        "images_per_s": batch / step,
        "peak_memory_mib": peak_mib(device),
        "steps_s": [round(t, 4) for t in total_s],
        "losses": [round(x, 5) for x in losses],
    }


def markdown(res: dict) -> str:
    env = res["environment"]
    mem_kind = "CUDA max allocated" if env["device"].startswith("cuda") else "peak RSS of the process"
    lines = [
        f"Decoder training step, batch {res['batch']}, {res['input_size']} px, {res['variant']}, on "
        f"{env['device_name']} (torch {env['torch']}, threads {env['torch_threads']}, OMP_WAIT_POLICY="
        f"{env['OMP_WAIT_POLICY']}); frozen backbone under "
        f"inference mode; medians of {res['iterations']} steps after {res['warmup']} warm-up.",
        "",
        f"| precision | it/s | s/step | backbone s | decoder fwd+bwd+AdamW s | decoder-only it/s | images/s | "
        f"peak MiB ({mem_kind}) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["runs"]:
        mem = f"{r['peak_memory_mib']:.0f}" if r["peak_memory_mib"] is not None else "-"
        lines.append(
            f"| {r['precision']} | {r['iterations_per_s']:.3f} | {r['step_median_s']:.2f} | "
            f"{r['backbone_median_s']:.2f} | {r['decoder_median_s']:.2f} | {r['decoder_only_iterations_per_s']:.3f} | "
            f"{r['images_per_s']:.1f} | {mem} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=None, help="timed steps (default: 20 on GPU, 2 on CPU)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 3 on GPU, 1 on CPU)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    ap.add_argument("--amp", default="auto", choices=["auto", "off", "bf16", "fp16"],
                    help="precisions: float32 plus this autocast dtype (auto: bf16, or fp16 on GPUs without bf16)")
    ap.add_argument("--variant", default="rd64-uni-refined")
    ap.add_argument("--threads", type=int, default=2, help="torch threads on CPU")
    ap.add_argument("--tiny", action="store_true", help="the tiny model: a smoke run, numbers meaningless")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    iterations = args.iterations or (20 if device.type == "cuda" else 2)
    warmup = args.warmup if args.warmup is not None else (3 if device.type == "cuda" else 1)
    torch.manual_seed(0)
    model = optimize_for_cpu(build_clipseg("tiny" if args.tiny else args.variant)).to(device)  # as the trainer runs it
    runs = []
    for dtype in amp_dtypes(device, args.amp):
        r = run_precision(model, device, dtype, args.batch, iterations, warmup)
        print(f"{r['precision']}: {r['iterations_per_s']:.3f} it/s ({r['step_median_s']:.2f} s/step: backbone "
              f"{r['backbone_median_s']:.2f} s, decoder {r['decoder_median_s']:.2f} s)", flush=True)
        runs.append(r)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{common.cpu_model()} ({os.cpu_count()} cores, shared)")
    res = {
        "environment": {**common.environment(), "device": str(device), "device_name": name},
        "variant": "tiny" if args.tiny else args.variant, "batch": args.batch, "input_size": model.config.input_size,
        "iterations": iterations, "warmup": warmup, "runs": runs,
    }
    common.write_results(args.out, "training", res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
