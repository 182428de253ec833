"""The visual-prompt analysis (paper Tab. 2) for both crop styles, on the generated world.

The paper measures, with the real CLIP on 1,600 LVIS objects, how much each way of
engineering the example image raises CLIP's probability of the object's name. Without LVIS
and the real CLIP here, this runs the same protocol (`clipseg.evaluation.visual_prompts`)
with the project's world CLIP on world scenes (an object of a held-out class, the class names of the world
as candidates), once with the authors' crop (`style="authors"`, the default: rectangle +
zero padding + nearest resize) and once with the square window of real context
(`style="square-context"`), and prints ΔP(object) per Tab. 2 row for each.

    python benchmarks/visual_prompt_styles.py [--samples 400] [--json out.json]

The world CLIP is the pipeline's (trained once and cached, about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import torch


def main(argv=None) -> int:
    from clipseg.worldgen.dataset import WorldSegmentationConfig, WorldSegmentationDataset
    from clipseg.evaluation.visual_prompts import evaluate_visual_prompts, table2_variants
    from clipseg.world.pipeline import build_world_model, pretrained_clip, world_config

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=400, help="objects (of the held-out classes) per style")
    ap.add_argument("--preset", default="full")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    config = world_config(args.preset)
    clip, tokenizer, info = pretrained_clip(config)
    model = build_world_model("clipseg", config, clip).eval()  # its decoder is not used here
    data = WorldSegmentationDataset(WorldSegmentationConfig(mode="zero_shot", size=args.samples, seed=config.seed + 77,
                                                            scene=config.scene, split=config.split))
    names = list(config.split.classes)
    results = {}
    for style in ("authors", "square-context"):
        variants = {k: replace(v, style=style) for k, v in table2_variants().items()}
        with torch.inference_mode():
            r = evaluate_visual_prompts(model, tokenizer, data, class_names=names, variants=variants, progress=False)
        results[style] = {"baseline": r.baseline, "delta": r.delta, "samples": r.samples}
    rows = list(table2_variants())
    print(f"world CLIP ({'cached' if info.get('loaded') else 'trained now'}), {results['authors']['samples']} objects, "
          f"candidates: the {len(names)} class names; P(object) of the unmodified image "
          f"{results['authors']['baseline']:.2f} %")
    print("| Tab. 2 row | ΔP authors (default) | ΔP square-context |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {row} | {results['authors']['delta'][row]:+.2f} | {results['square-context']['delta'][row]:+.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
