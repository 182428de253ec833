"""`clipseg evaluate PROTOCOL --weights W --data ROOT ...` and `... tables FILE...`.

Protocols (paper tables): visual-prompts (2), referring (3), zero-shot (4), one-shot (5, 6),
one-shot-text (7), generalized (8). Each run prints its table and can write its result as
JSON (--out); `tables` prints the paper-style tables of several such files together.

Your own data (`--dataset folder` or `coco-folder`): `--split none` reads every row of
phrases.csv / .jsonl (annotations.json); without --split the protocol's split is used when
there is a list for it (phrases_test.csv, or a split column), else every row. `referring`
on own data averages mIoU over samples.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import datasets as ds
from .train_run import command_tokenizer, fail, load_weights
from ..training.data import DATASETS, build_dataset
from ..evaluation.generalized import evaluate_generalized
from ..evaluation.one_shot import evaluate_one_shot
from ..evaluation.referring import evaluate_referring
from ..evaluation.tables import render
from ..evaluation.visual_prompts import evaluate_visual_prompts_folds
from ..evaluation.zero_shot import evaluate_zero_shot

# protocol -> (default data set, default split)
PROTOCOLS = {
    "visual-prompts": ("lvis-objects", "val"),  # the paper's Tab. 2 data: 1,600 LVIS objects
    "referring": ("phrasecut", "test"),
    "zero-shot": ("pascal-zeroshot", "val"),
    "one-shot": ("pascal5i", "val"),
    "one-shot-text": ("pascal5i", "val"),
    "generalized": ("lvis-generalized", "val"),
}
FOLDED = ("pascal5i", "coco20i")
OWN_DATA = ("folder", "coco-folder")  # split-less lists allowed
NO_SPLIT = ("none", "null", "all")  # --split values that read a folder's plain list



@dataclass
class EvalArgs:
    """What `clipseg evaluate` takes (see `clipseg.cli.evaluate` for each option's meaning)."""

    protocol: str
    files: Sequence[str] = ()
    weights: str | None = None
    backbone: str | None = None
    data: str = ""
    dataset: str | None = None
    split: str | None = None
    options: str = "{}"
    folds: Sequence[int] = (0, 1, 2, 3)
    threshold: float | None = None
    tokenizer: str = "auto"
    batch_size: int = 16
    num_workers: int = 0
    limit: int | None = None
    device: str = "auto"
    name: str | None = None
    out: str | None = None
    no_progress: bool = False


def resolve_split(name: str, root: str, given: str | None, default: str, options: dict, size: int):
    """(data set, split) for --split `given`. Own-data folders: 'none' reads the plain list; no
    --split tries the protocol's split and falls back to the plain list when there is neither a
    list for that split nor a split column (a note goes to stderr)."""
    if name in OWN_DATA and given is not None and given.lower() in NO_SPLIT:
        return build_dataset(name, root, None, options, size), None
    if name in OWN_DATA and given is None:
        try:
            return build_dataset(name, root, default, options, size), default
        except ds.NoSplitError:
            print(f"note: no '{default}' list or split column in '{root}': evaluating every listed sample "
                  "(--split none)", file=sys.stderr)  # fmt: skip
            return build_dataset(name, root, None, options, size), None
    split = given or default
    return build_dataset(name, root, split, options, size), split


def evaluate(args: "EvalArgs") -> dict:
    """Run one protocol; the result dict with "model", "dataset" and "split" added."""
    dataset_name, default_split = PROTOCOLS[args.protocol]
    dataset_name = args.dataset or dataset_name
    if dataset_name not in DATASETS:
        fail(f"unknown data set '{dataset_name}'; known: {', '.join(DATASETS)}")
    try:
        options = json.loads(args.options)
    except json.JSONDecodeError as e:
        fail(f"--options is not valid JSON: {e}")
    model = load_weights(args.weights, args.backbone, device=args.device)
    tokenizer = command_tokenizer(args.tokenizer, model)
    size = model.config.input_size

    try:  # bad lists, missing files, unknown options: one line naming the problem, no traceback
        if dataset_name in FOLDED:
            split = args.split or default_split
            if args.protocol == "visual-prompts":  # the query image and mask suffice: skip making supports
                options = {"with_support": False, **options}
            folds = [build_dataset(dataset_name, args.data, split, {**options, "fold": f}, size) for f in args.folds]
            names = [f"fold {f}" for f in args.folds]
        else:
            data, split = resolve_split(dataset_name, args.data, args.split, default_split, options, size)
            folds, names = [data], [dataset_name]
    except (FileNotFoundError, ValueError, TypeError) as e:
        fail(f"cannot read the {dataset_name} data: {e}")

    common = dict(limit=args.limit, progress=not args.no_progress)
    run = dict(batch_size=args.batch_size, num_workers=args.num_workers, **common)
    if args.protocol == "visual-prompts":
        result = evaluate_visual_prompts_folds(model, tokenizer, folds, names,
                                               **{**common, "limit": args.limit or 1600})  # fmt: skip
    elif args.protocol == "referring":
        miou_over = "sample" if dataset_name in OWN_DATA else "key"
        result = evaluate_referring(model, tokenizer, folds[0], threshold=args.threshold or 0.3, miou_over=miou_over,
                                    **run)  # fmt: skip
    elif args.protocol == "zero-shot":
        result = evaluate_zero_shot(model, tokenizer, folds[0], **run)
    elif args.protocol in ("one-shot", "one-shot-text"):
        prompt = "text" if args.protocol == "one-shot-text" else "visual"
        result = evaluate_one_shot(model, tokenizer, folds, prompt, threshold=args.threshold, **run)
    else:
        result = evaluate_generalized(model, tokenizer, folds[0], threshold=args.threshold, **run)
    data = {"data": Path(args.data).resolve().name} if dataset_name in OWN_DATA else {}  # the tables' title
    return {"model": args.name or Path(args.weights).name, "dataset": dataset_name, "split": split, **data,
            **result.to_dict()}  # fmt: skip


def run_evaluate(args: EvalArgs) -> list[dict]:
    """Evaluate (or, protocol "tables", tabulate result files); prints the table and returns the results."""
    if args.protocol == "tables":
        results = [json.loads(Path(f).read_text()) for f in args.files]
    else:
        if not args.weights:
            fail("--weights is required")
        results = [evaluate(args)]
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(results[0], indent=2) + "\n")
    print(render(results))
    return results
