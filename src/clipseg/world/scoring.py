"""Stage 3 of the world pipeline: the evaluation sets, each model's scores with the paper's
metrics, and the table."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from ..datasets.sample import Sample
from ..worldgen import COLOUR_NAMES, SHAPE_CLASSES
from ..worldgen import generate_scene
from ..worldgen.dataset import SEED_OFFSETS, scene_tensor, world_evaluation_sets
from ..tokenizer.word import WordTokenizer
from ..evaluation.bootstrap import SampleCounts, paired_difference
from ..model.clipseg import CLIPSeg
from .config import TASK_LABELS, WorldPipelineConfig


class ListDataset(Dataset):
    def __init__(self, items: list[Sample]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Sample:
        return self.items[i]


def evaluation_sets(config: WorldPipelineConfig) -> dict[str, Dataset]:
    """The four evaluation sets, generated once (fixed seeds) and held in memory."""
    sets = world_evaluation_sets(config.eval_size, seed=config.seed, scene=config.scene, split=config.split)
    return {task: ListDataset([ds[i] for i in range(len(ds))]) for task, ds in sets.items()}


@torch.no_grad()
def sample_counts(model: CLIPSeg, tokenizer: WordTokenizer, dataset: Dataset, prompt: str = "text",
                  batch_size: int = 64, per_sample_keys: bool = False) -> SampleCounts:
    """Per-sample threshold counts of `model` on `dataset` (keys: class names, or each sample's
    own id with `per_sample_keys`, for the per-sample mIoU of referring expressions)."""
    from ..datasets.sample import collate
    from ..evaluation.predict import predict_probs
    from ..prompts import PromptEncoder

    model.eval()
    prompts = PromptEncoder(model, tokenizer, truncate=True)
    out = SampleCounts()
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(start, min(len(dataset), start + batch_size))])
        probs = predict_probs(model, prompts, batch, prompt).cpu()
        keys = [f"{start + k}" for k in range(len(probs))] if per_sample_keys else batch["class_name"]
        out.add(probs, batch["mask"][:, 0], keys, batch["valid"][:, 0])
    return out


def score_world_model(model: CLIPSeg, tokenizer: WordTokenizer, sets: dict[str, Dataset],
                      batch_size: int = 64) -> dict[str, SampleCounts]:
    """Per-sample counts of one model on every evaluation set (the raw material of the table)."""
    return {task: sample_counts(model, tokenizer, data, "visual" if task == "one_shot" else "text", batch_size,
                                per_sample_keys=task in ("referring", "negative"))
            for task, data in sets.items()}


def summarize(counts: dict[str, dict[str, SampleCounts]], labels: dict[str, str], n_boot: int = 1000,
              seed: int = 0) -> list[dict[str, Any]]:
    """Rows of the table: per model and task the metrics at the best threshold by mIoU, their 95 %
    bootstrap intervals, and for the first model the paired differences to the others.

    counts: model -> task -> SampleCounts (all models on the same samples).
    """
    rows = []
    names = list(counts)
    for name in names:
        row: dict[str, Any] = {"model": name, "label": labels.get(name, name)}
        for task, sc in counts[name].items():
            if task == "negative":
                continue
            ci = sc.bootstrap(n_boot, seed)
            row[task] = {**sc.score(), "n": len(sc), "ci": {m: list(v) for m, v in ci.items()}}
        neg = counts[name].get("negative")
        if neg is not None and "referring" in row:
            row["negative"] = neg.negatives(row["referring"]["t"], n_boot, seed)
        rows.append(row)
    first = names[0]
    rows[0]["vs"] = {other: {task: paired_difference(counts[first][task], counts[other][task], n_boot, seed)
                             for task in counts[first] if task != "negative"} for other in names[1:]}
    return rows


@torch.no_grad()
def prompt_use(model: CLIPSeg, tokenizer: WordTokenizer, config: WorldPipelineConfig, classes: str = "held_out",
               n_scenes: int = 150) -> float:
    """How much the model's maps depend on the prompt: over scenes of `classes` ("seen" or
    "held_out") with two or more classes, for each object and each other class present, whether
    the object's mean probability under its own class's prompt exceeds that under the other's
    (ties count half). 0.5 = prompt-blind, 1.0 = every object prefers its own name."""
    if classes not in ("seen", "held_out"):
        raise ValueError(f"classes must be 'seen' or 'held_out', not {classes!r}")
    pool = config.split.seen_classes() if classes == "seen" else config.split.unseen_classes()
    model.eval()
    wins, pairs, seed = 0.0, 0, SEED_OFFSETS["prompt_use"] + (0 if classes == "seen" else 5_000_000)
    for _ in range(n_scenes):
        while True:  # the next scene with at least two classes
            scene = generate_scene(seed, config.scene, pool)
            seed += 1
            names = sorted({o.shape for o in scene.objects})
            if len(names) >= 2:
                break
        tokens = tokenizer([f"a photo of a {c}." for c in names])
        probs = model.decode(model.encode_image(scene_tensor(scene)[None]), model.encode_text(tokens)).sigmoid()
        for obj in (o for o in scene.objects if o.mask.any()):  # probs: (len(names), H, W)
            inside = probs[:, torch.from_numpy(obj.mask)].mean(dim=1)  # (len(names),) mean prob per prompt
            own = inside[names.index(obj.shape)]
            for k, c in enumerate(names):
                if c != obj.shape:
                    wins += float(own > inside[k]) + 0.5 * float(own == inside[k])
                    pairs += 1
    return wins / max(pairs, 1)


def _with_ci(m: dict[str, Any], key: str) -> str:
    from ..evaluation.tables import pct

    lo, hi = m["ci"][key]
    return f"{pct(m[key])} [{pct(lo)}, {pct(hi)}]"


def format_table(rows: list[dict[str, Any]], clip_accuracy: dict[str, Any] | None = None, title: str = "") -> str:
    """The paper-style table of the world pipeline (scores in percent, 95 % bootstrap intervals)."""
    from ..evaluation.tables import grid, pct

    header = ["Task", "Model", "t", "mIoU [95 % CI]", "IoU_FG", "AP [95 % CI]"]
    body = []
    for task, label in ((t, label) for t, label in TASK_LABELS.items() if rows and t in rows[0]):
        for k, r in enumerate(rows):
            m = r[task]
            body.append([label + f" n={m['n']}" if k == 0 else "", r["label"], f"{m['t']:.2f}", _with_ci(m, "miou"),
                         pct(m["iou_fg"]), _with_ci(m, "ap")])
    for k, r in enumerate(rows):
        use = r.get("prompt_use")
        if use:
            body.append(["Prompt use: own name > another's (0.5 = blind)" if k == 0 else "", r["label"], "",
                         f"seen {use['seen']:.2f}, held-out {use['held_out']:.2f}", "", ""])
    for k, r in enumerate(rows):
        n = r.get("negative")
        if n:
            lo, hi = n["ci"]["rejected"]
            body.append([f"Negatives (absent things) n={n['n']}" if k == 0 else "", r["label"], f"{n['t']:.2f}",
                         f"rejected {pct(n['rejected'])} [{pct(lo)}, {pct(hi)}]", f"FP px {pct(n['fp_rate'])}", ""])
    note = ("t = best of the 49 thresholds by mIoU; mIoU over samples (referring) or over classes (the others); "
            "IoU_FG and AP (Simpson's rule over the 49 thresholds) from the summed pixel counts; [95 % CI] = "
            "percentile interval of 1000 bootstrap resamples of the samples, threshold selection included.\n"
            "Negatives: prompts of things absent from the scene, at the model's referring t: share of samples "
            "with < 1 % foreground (higher is better), share of pixels predicted foreground (lower is better).")
    if rows and "vs" in rows[0]:
        for other, tasks in rows[0]["vs"].items():
            label = next(r["label"] for r in rows if r["model"] == other)
            parts = [f"{task} {100 * d['diff']:+.1f} [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}]"
                     for task, d in tasks.items()]
            note += f"\n{rows[0]['label']} minus {label}, mIoU points, paired bootstrap: " + "; ".join(parts)
    if clip_accuracy:
        note += (f"\nPretrained CLIP, zero-shot classification among the {len(SHAPE_CLASSES)} classes "
                 f"(chance {pct(clip_accuracy['chance'])} %): close-ups all {pct(clip_accuracy['views_all'])} %, "
                 f"held-out {pct(clip_accuracy['views_held_out'])} %; whole one-object scenes all "
                 f"{pct(clip_accuracy['scenes_all'])} %; colour among {len(COLOUR_NAMES)} "
                 f"{pct(clip_accuracy['colour'])} %.")
    return grid(title or "CLIPSeg on the generated world (scores in %)", header, body, note)
