"""Generalized zero-shot segmentation on Pascal VOC (paper Sec. 5.2, Tab. 4).

The binary model becomes a multi-label one as in the paper: one probability map per class
prompt, and every pixel takes the class of highest probability. Background follows the
authors' evaluation (CLIPSegMultiLabel): the prompt "background" is one more class whose
probability is multiplied by `background_factor` = 3. Scores: the confusion-matrix IoU of
each of the 21 labels; mIoU_S averages the seen classes (background included, as in the
ZS3/JoEm evaluator), mIoU_U the unseen ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset
from ..io.progress import progress_bar

from ..datasets import ZeroShotItem
from ..model.clipseg import CLIPSeg
from ..prompts import PromptEncoder
from ..tokenizer import Tokenizer
from .metrics import MultiClassIoU
from .predict import limited, loader
from .results import JsonResult


@dataclass
class ZeroShotResult(JsonResult):
    protocol = "zero_shot"

    n_unseen: int
    miou_seen: float
    miou_unseen: float
    harmonic: float
    class_iou: dict[str, float]  # "background" and the 20 classes
    images: int


def collate_items(items: list[ZeroShotItem]) -> dict:
    """Stack images (B, 3, H, W) and label maps (B, H, W); prompts and unseen from the first item."""
    return {
        "image": torch.stack([it.image for it in items]),
        "labels": torch.stack([it.labels for it in items]),
        "prompts": items[0].prompts,
        "class_names": items[0].class_names,
        "unseen": items[0].unseen,
    }


@torch.no_grad()
def label_maps(model: CLIPSeg, prompts: PromptEncoder, images: torch.Tensor, class_prompts: list[str],
               background_prompt: str, background_factor: float) -> torch.Tensor:
    """(B, 3, H, W) images -> (B, H, W) labels: 0 background, i + 1 = class_prompts[i]."""
    cond = prompts.encode_texts([background_prompt, *class_prompts])  # (1 + C, E)
    features = model.encode_image(images.to(prompts.device))
    maps = []
    for i in range(images.shape[0]):
        probs = torch.sigmoid(model.decode(features.select(i), cond).float())  # (1 + C, H, W)
        probs[0] *= background_factor
        maps.append(probs.argmax(0))
    return torch.stack(maps)


def evaluate_zero_shot(
    model: CLIPSeg,
    tokenizer: Tokenizer,
    dataset: Dataset,
    background_prompt: str = "background",
    background_factor: float = 3.0,
    batch_size: int = 4,
    num_workers: int = 0,
    limit: int | None = None,
    progress: bool = False,
) -> ZeroShotResult:
    """Score a data set of ZeroShotItems (PascalZeroShot)."""
    model.eval()
    prompts = PromptEncoder(model, tokenizer, truncate=True)
    scores: MultiClassIoU | None = None
    images = 0
    for batch in progress_bar(loader(limited(dataset, limit), batch_size, num_workers, collate_items), progress):
        if scores is None:
            names, unseen = ["background", *batch["class_names"]], batch["unseen"]
            scores = MultiClassIoU(len(names))
        pred = label_maps(model, prompts, batch["image"], batch["prompts"], background_prompt, background_factor)
        scores.update(pred.cpu(), batch["labels"])
        images += len(pred)
    if scores is None:
        raise ValueError("the data set is empty")
    seen = [i for i in range(len(names)) if i not in unseen]
    s, u = scores.miou(seen), scores.miou(unseen)
    harmonic = 2 * s * u / (s + u) if s + u > 0 else 0.0
    return ZeroShotResult(len(unseen), s, u, harmonic, dict(zip(names, scores.iou().tolist())), images)
