"""The model card (README.md) written beside a Hugging Face export: what the model was made
from, on which data, for how long, how well it scores, and how to load it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..constants import DEFAULT_THRESHOLD
from ..model.clipseg import CLIPSeg


@dataclass
class CardFacts:
    """What a model card says of a training run; every field may be unknown (None / empty)."""

    name: str | None = None  # the experiment's name
    base: str | None = None  # the weights fine-tuned (train --init), else None: a decoder trained from scratch
    backbone: str | None = None  # the CLIP weights the decoder was trained on
    dataset: str | None = None  # reader name (folder, phrasecut+, ...)
    data: str | None = None  # the data folder's name
    iterations: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    first_loss: float | None = None
    final_loss: float | None = None
    metrics: list[dict] = field(default_factory=list)  # `clipseg evaluate --out` result files


def _code(x: str | None) -> str:
    return f"`{x}`" if x else ""


def _loss(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.4f}"


def _metric_lines(results: list[dict]) -> list[str]:
    """A table row per evaluation result (the referring / own-data metrics at the fixed and the best t)."""
    rows = []
    for r in results:
        data = r.get("data") or r.get("dataset", "")
        for label, part in (("fixed t", r.get("at_threshold")), ("best t", r.get("best"))):
            if isinstance(part, dict) and "miou" in part:
                rows.append(f"| {r.get('protocol', '')} | {data} | {label} {part.get('threshold', 0):.2f} | "
                            f"{100 * part['miou']:.1f} | {100 * part.get('iou_fg', float('nan')):.1f} | "
                            f"{100 * part.get('ap', float('nan')):.1f} |")
        if "miou" in r and "at_threshold" not in r:
            rows.append(f"| {r.get('protocol', '')} | {data} | t {r.get('threshold', 0):.2f} | {100 * r['miou']:.1f} "
                        f"| - | {100 * r.get('ap', float('nan')):.1f} |")
    if not rows:
        return ["No evaluation was given (`clipseg export-hf ... --metrics RESULT.json` adds the results of "
                "`clipseg evaluate ... --out RESULT.json`)."]
    return ["| protocol | data | threshold | mIoU | IoU_FG | AP |", "|---|---|---|---|---|---|", *rows]


def model_card(model: CLIPSeg, facts: CardFacts, authors_file: str | None = None) -> str:
    """README.md of a Hugging Face export of `model`."""
    dec = model.config.decoder
    threshold = model.identity.threshold if model.identity.threshold is not None else DEFAULT_THRESHOLD
    title = facts.name or "CLIPSeg model"
    base_model = facts.base if facts.base and facts.base.count("/") == 1 and not facts.base.startswith((".", "/")) \
        else None  # a hub id
    front = ["---", "library_name: transformers", "pipeline_tag: image-segmentation",
             "tags:", "- clipseg", "- image-segmentation", "- vision"]
    if base_model:
        front.append(f"base_model: {base_model}")
    front.append("---")
    apostrophe = "'s"
    trained = [
        f"- fine-tuned from: `{facts.base}`" if facts.base else "- decoder trained from scratch (random initialisation)",
        f"- frozen CLIP backbone: {_code(facts.backbone or model.identity.backbone) or 'the base model' + apostrophe}",
        f"- data: {facts.dataset or '-'}" + (f" (`{facts.data}`)" if facts.data else ""),
        f"- iterations: {facts.iterations if facts.iterations is not None else '-'}"
        + (f" of batch {facts.batch_size}" if facts.batch_size else "") + (f", lr {facts.lr:g}" if facts.lr else ""),
        f"- training loss: {_loss(facts.first_loss)} -> {_loss(facts.final_loss)} (BCE)",
    ]
    lines = [
        *front, "", f"# {title}", "",
        "CLIPSeg (Lüddecke & Ecker, CVPR 2022): segments an image by a text or image prompt. "
        "Trained and exported with [clipseg](https://pypi.org/project/clipseg/).", "",
        "## Training", "", *trained, "",
        "## Architecture", "",
        f"- decoder: reduce_dim {dec.reduce_dim}, extract_layers {list(dec.extract_layers)}, "
        f"{'refined (complex) transposed convolution' if dec.refined else 'plain transposed convolution'}",
        f"- input size {model.config.input_size} px; recommended mask threshold {threshold:g} "
        "(`config.json` field `clipseg_threshold`)", "",
        "## Evaluation", "", *_metric_lines(facts.metrics), "",
        "## Use", "",
        "```python",
        "from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor",
        "processor = CLIPSegProcessor.from_pretrained(PATH)",
        "model = CLIPSegForImageSegmentation.from_pretrained(PATH)",
        "inputs = processor(text=['a cat'], images=[image], padding=True, return_tensors='pt')",
        f"mask = model(**inputs).logits.sigmoid() > {threshold:g}",
        "```", "",
        "or `clipseg segment photo.jpg -p 'a cat' --weights PATH` (the threshold is read from the folder).",
    ]
    if authors_file:
        lines += ["", f"`{authors_file}` is the decoder in the layout of the authors' repository "
                  "(timojl/clipseg): `CLIPDensePredT(version='ViT-B/16', reduce_dim="
                  f"{dec.reduce_dim}, extract_layers={list(dec.extract_layers)}, complex_trans_conv={dec.refined})` "
                  "then `model.load_state_dict(torch.load(FILE), strict=False)`; with this project: "
                  f"`clipseg.weights.load_clipseg('{authors_file}', backbone=CLIP_WEIGHTS"
                  + ("" if tuple(dec.extract_layers) == (3, 6, 9) else f", extract_layers={tuple(dec.extract_layers)}")
                  + ")`."]
    return "\n".join(lines) + "\n"
