"""`python -m clipseg.evaluation PROTOCOL --weights W --data ROOT ...` and `... tables FILE...`.

Protocols (paper tables): visual-prompts (2), referring (3), zero-shot (4), one-shot (5, 6),
one-shot-text (7), generalized (8). Each run prints its table and can write its result as
JSON (--out); `tables` prints the paper-style tables of several such files together.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from ..training.cli import load_tokenizer
from ..training.data import build_dataset
from .generalized import evaluate_generalized
from .one_shot import evaluate_one_shot
from .referring import evaluate_referring
from .tables import render
from .visual_prompts import evaluate_visual_prompts
from .zero_shot import evaluate_zero_shot

# protocol -> (default data set, default split)
PROTOCOLS = {
    "visual-prompts": ("pascal5i", "val"),
    "referring": ("phrasecut", "test"),
    "zero-shot": ("pascal-zeroshot", "val"),
    "one-shot": ("pascal5i", "val"),
    "one-shot-text": ("pascal5i", "val"),
    "generalized": ("lvis-generalized", "val"),
}
FOLDED = ("pascal5i", "coco20i")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m clipseg.evaluation", description=__doc__.splitlines()[0])
    p.add_argument("protocol", choices=[*PROTOCOLS, "tables"])
    p.add_argument("files", nargs="*", help="tables: result JSON files")
    p.add_argument("--weights", help="CLIPSeg weights (anything clipseg.weights.load_clipseg reads)")
    p.add_argument("--backbone", help="CLIP weights for decoder-only files")
    p.add_argument("--data", default="", help="data set root folder")
    p.add_argument("--dataset", help="reader name (clipseg.training.data.DATASETS); default per protocol")
    p.add_argument("--split", help="default per protocol")
    p.add_argument("--options", default="{}", help="reader options as JSON, e.g. '{\"n_unseen\": 4}'")
    p.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3], help="Pascal-5i / COCO-20i folds")
    p.add_argument("--threshold", type=float, help="fixed threshold (default: 0.3 referring, else the best)")
    p.add_argument("--tokenizer", default="clip")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--limit", type=int, help="evaluate the first N items only (visual-prompts: default 1600)")
    p.add_argument("--device", default="cuda" if _cuda() else "cpu")
    p.add_argument("--name", help="row name in the tables (default: the weights' file name)")
    p.add_argument("--out", help="write the result as JSON here")
    p.add_argument("--no-progress", action="store_true")
    return p


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def evaluate(args: argparse.Namespace) -> dict:
    """Run one protocol; the result dict with "model" and "dataset" added."""
    from ..weights import load_clipseg

    dataset_name, split = PROTOCOLS[args.protocol]
    dataset_name, split = args.dataset or dataset_name, args.split or split
    model = load_clipseg(args.weights, backbone=args.backbone, device=args.device)
    tokenizer = load_tokenizer(args.tokenizer)
    options = json.loads(args.options)
    size = model.config.input_size

    def data(fold: int | None = None):
        extra = {"fold": fold} if fold is not None else {}
        return build_dataset(dataset_name, args.data, split, {**options, **extra}, size)

    common = dict(limit=args.limit, progress=not args.no_progress)
    run = dict(batch_size=args.batch_size, num_workers=args.num_workers, **common)
    folds = [data(f) for f in args.folds] if dataset_name in FOLDED else [data()]
    if args.protocol == "visual-prompts":
        result = evaluate_visual_prompts(model, tokenizer, folds[0], **{**common, "limit": args.limit or 1600})
    elif args.protocol == "referring":
        result = evaluate_referring(model, tokenizer, folds[0], threshold=args.threshold or 0.3, **run)
    elif args.protocol == "zero-shot":
        result = evaluate_zero_shot(model, tokenizer, folds[0], **run)
    elif args.protocol in ("one-shot", "one-shot-text"):
        prompt = "text" if args.protocol == "one-shot-text" else "visual"
        result = evaluate_one_shot(model, tokenizer, folds, prompt, threshold=args.threshold, **run)
    else:
        result = evaluate_generalized(model, tokenizer, folds[0], threshold=args.threshold, **run)
    return {"model": args.name or Path(args.weights).name, "dataset": dataset_name, **result.to_dict()}


def main_evaluate(argv: Sequence[str] | None = None) -> list[dict]:
    """Command line entry; returns the result dicts it printed."""
    args = parser().parse_args(argv)
    if args.protocol == "tables":
        results = [json.loads(Path(f).read_text()) for f in args.files]
    else:
        if not args.weights:
            raise SystemExit("--weights is required")
        results = [evaluate(args)]
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(results[0], indent=2) + "\n")
    print(render(results))
    return results
