"""`python -m clipseg.world`: run the offline world pipeline, or segment a generated scene.

    python -m clipseg.world run [--preset default] [--cache-dir DIR] [--force] [--json OUT]
    python -m clipseg.world demo "a photo of a red star." --out star.png [--scene-seed 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .pipeline import MODEL_NAMES, PRESETS, run_pipeline, segment_demo, world_config


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m clipseg.world", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("run", "demo"):
        s = sub.add_parser(name)
        s.add_argument("--preset", default="default", choices=sorted(PRESETS))
        s.add_argument("--cache-dir", default=None, help="model cache (default $CLIPSEG_WORLD_CACHE or ~/.cache/clipseg/world)")
        s.add_argument("--threads", type=int, default=None, help="torch threads (default: the preset's)")
        s.add_argument("--quiet", action="store_true")
        if name == "run":
            s.add_argument("--force", action="store_true", help="recompute every stage")
            s.add_argument("--json", default=None, help="also write the result as JSON here")
        else:
            s.add_argument("prompt")
            s.add_argument("--out", default="world_demo.png")
            s.add_argument("--scene-seed", type=int, default=0)
            s.add_argument("--image", default=None, help="segment this image instead of a generated scene")
            s.add_argument("--model", default="clipseg", choices=MODEL_NAMES)
            s.add_argument("--threshold", type=float, default=0.5)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {"threads": args.threads} if args.threads is not None else {}
    config = world_config(args.preset, **overrides)
    if args.command == "run":
        t0 = time.perf_counter()
        result = run_pipeline(config, progress=not args.quiet, cache_dir=args.cache_dir, force=args.force)
        print(result.table)
        stages = ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items())
        print(f"\nwall time {time.perf_counter() - t0:.0f} s" + (f" ({stages})" if stages else " (all cached)"))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(result.to_dict(), f, indent=1)
        return 0
    result = segment_demo(args.prompt, args.out, scene_seed=args.scene_seed, config=config, cache_dir=args.cache_dir,
                          progress=not args.quiet, model=args.model, threshold=args.threshold, image=args.image)
    if result.unknown_words:
        print(f"warning: words outside the world's vocabulary: {', '.join(result.unknown_words)}", file=sys.stderr)
    if result.objects:
        print(f"scene {result.scene_seed}: " + "; ".join(result.objects))
    print(f"'{result.prompt}': {100 * result.foreground:.1f} % of pixels above {result.threshold} -> {result.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
