"""Masks for editing: the post-processing time of a 12-megapixel image per operation, next to
the model's own time for that image (set_image + predict of one prompt at full resolution),
measured in the same run:

    python benchmarks/bench_editing.py [--size 4000x3000] [--repeats 3]

Models: the shipped world model, and ViT-B/16 CLIPSeg (rd64-uni-refined) with random
weights (the real architecture's speed; its masks mean nothing). The probability map the
operations run on is the world model's answer on its example scene scaled to the size.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import clipseg
from clipseg.editing import MaskOptions, cutout, edit_map, find_regions
from clipseg.editing import morphology as mo
from clipseg.inference import Predictor
from clipseg.model import build_clipseg
from clipseg.weights.registry import ASSETS_DIR

from common import environment, write_results


def best_of(fn, repeats: int) -> float:
    """The fastest of `repeats` runs after one warm-up, in ms."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="4000x3000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    image = Image.open(ASSETS_DIR / "world" / "example-scene.png").convert("RGB").resize((w, h), Image.BILINEAR)
    prompt = "a red circle"

    models = {"world": clipseg.load("world"), "ViT-B/16 (random weights)": build_clipseg("rd64-uni-refined").eval()}
    model_ms = {}
    for name, model in models.items():
        p = Predictor(model)
        model_ms[name] = best_of(lambda: (p.set_image(image), p.predict([prompt])), args.repeats)
    world = Predictor(models["world"])
    world.set_image(image)
    prob = world.predict([prompt])[0]
    t = world.threshold
    mask = prob >= t
    rgb = np.asarray(image)

    ops = {
        "threshold (p >= t)": lambda: prob >= t,
        "smooth 10 px + threshold (blurs near the mask only)": lambda: mo.smoothed_mask(prob, 10, t),
        "(smooth 10 px of the whole map, for reference)": lambda: mo.smooth(prob, 10),
        "fill holes": lambda: mo.fill_holes(mask),
        "min area 5000 px": lambda: mo.remove_small_regions(mask, 5000),
        "grow 16 px": lambda: mo.grow(mask, 16),
        "grow 100 px": lambda: mo.grow(mask, 100),
        "shrink 16 px": lambda: mo.grow(mask, -16),
        "invert": lambda: ~mask,
        "feather 10 px": lambda: mo.feather(mask, 10),
        "cut-out (RGBA)": lambda: cutout(rgb, mask),
        "regions (boxes)": lambda: find_regions(mask, padding=16),
        "all of them (edit_map)": lambda: edit_map(prob, t, MaskOptions(smooth=10, fill_holes=True, min_area=5000,
                                                                       grow=16, invert=False, feather=10)),
        "all of them, on a mask of most of the image (1 - p)": lambda: edit_map(
            1 - prob, t, MaskOptions(smooth=10, fill_holes=True, min_area=5000, grow=16, feather=10)),
    }
    op_ms = {name: best_of(fn, args.repeats) for name, fn in ops.items()}
    ref = model_ms["ViT-B/16 (random weights)"]
    lines = [f"# Masks for editing: post-processing of a {w}x{h} image ({w * h / 1e6:.0f} Mpx)", "",
             f"{environment()['cpu']}, torch threads {torch.get_num_threads()}; best of {args.repeats}; "
             f"mask area {mask.mean():.1%} of the image.", "",
             "| model (set_image + predict, 1 prompt, full resolution) | ms |", "|---|---:|"]
    lines += [f"| {name} | {ms:.0f} |" for name, ms in model_ms.items()]
    lines += ["", "| operation | ms | / ViT-B/16 model time | / world model time |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {ms:.1f} | {ms / ref:.3f} | {ms / model_ms['world']:.3f} |" for name, ms in op_ms.items()]
    write_results(args.out, "editing", {"size": [w, h], "environment": environment(), "model_ms": model_ms,
                                        "operation_ms": op_ms}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
