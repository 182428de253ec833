"""Stage 3 of the world pipeline: the evaluation sets, each model's scores with the paper's
metrics, and the table."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from ..data.sample import Sample
from ..data.world import COLOUR_NAMES, SHAPE_CLASSES
from ..data.world.dataset import world_evaluation_sets
from ..data.world.tokenizer import WordTokenizer
from ..evaluation.metrics import MetricResult, negative_scores
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


def _metrics(r: MetricResult) -> dict[str, float]:
    return {"t": r.threshold, "miou": r.miou, "iou_fg": r.iou_fg, "iou_bin": r.iou_bin, "ap": r.ap}


def evaluate_world_model(model: CLIPSeg, tokenizer: WordTokenizer, sets: dict[str, Dataset],
                         batch_size: int = 64) -> dict[str, dict[str, float]]:
    """Scores of one model on the evaluation sets (best threshold by mIoU per task; negatives
    at the model's best referring threshold)."""
    from ..evaluation.predict import accumulate

    out: dict[str, dict[str, float]] = {}
    for task in (t for t in TASK_LABELS if t in sets):
        prompt = "visual" if task == "one_shot" else "text"
        counts = accumulate(model, tokenizer, sets[task], prompt, batch_size).groups["all"]
        out[task] = _metrics(counts.result(select="miou"))
    counts = accumulate(model, tokenizer, sets["negative"], "text", batch_size).groups["all"]
    out["negative"] = negative_scores(counts, out["referring"]["t"])
    return out


def format_table(rows: list[dict[str, Any]], clip_accuracy: dict[str, float] | None = None) -> str:
    """The paper-style table of the world pipeline (scores in percent)."""
    from ..evaluation.tables import grid, pct

    header = ["Task", "Model", "t", "mIoU", "IoU_FG", "IoU_BIN", "AP"]
    body = []
    for task, label in ((t, label) for t, label in TASK_LABELS.items() if rows and t in rows[0]):
        for k, r in enumerate(rows):
            m = r[task]
            body.append([label if k == 0 else "", r["label"], f"{m['t']:.2f}", pct(m["miou"]), pct(m["iou_fg"]),
                         pct(m["iou_bin"]), pct(m["ap"])])
    for k, r in enumerate(rows):
        n = r["negative"]
        body.append(["Negatives (absent things)" if k == 0 else "", r["label"], f"{n['t']:.2f}",
                     f"FP px {pct(n['fp_rate'])}", f"rejected {pct(n['rejected'])}", "", ""])
    note = ("t = best of the 49 thresholds by mIoU; mIoU over samples (referring) or over classes (the others); "
            "IoU_FG, IoU_BIN, AP (Simpson's rule over the 49 thresholds) from the summed pixel counts.\n"
            "Negatives: prompts of things absent from the scene, at the model's referring t: share of pixels "
            "predicted foreground (lower is better), share of samples with < 1 % foreground (higher is better).")
    if clip_accuracy:
        note += (f"\nPretrained CLIP, zero-shot classification among the {len(SHAPE_CLASSES)} classes "
                 f"(chance {pct(clip_accuracy['chance'])} %): single-object scenes seen {pct(clip_accuracy['seen'])} %, "
                 f"held-out {pct(clip_accuracy['unseen'])} %; close-ups of the same objects seen "
                 f"{pct(clip_accuracy.get('seen_views'))} %, held-out {pct(clip_accuracy.get('unseen_views'))} %"
                 + (f"; colours of the single-object scenes among {len(COLOUR_NAMES)} "
                    f"{pct(clip_accuracy['colour'])} %." if "colour" in clip_accuracy else "."))
    return grid("CLIPSeg on the generated world (scores in %)", header, body, note)
