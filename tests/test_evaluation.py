"""Evaluation runners: a perfect predictor scores 1.0, an inverted one 0; tables and CLI work."""

from __future__ import annotations

import json

import pytest
import torch

from clipseg.data.datasets import ZeroShotItem
from clipseg.data.sample import Sample
from clipseg.evaluation import (
    evaluate_generalized,
    evaluate_one_shot,
    evaluate_referring,
    evaluate_visual_prompts,
    evaluate_zero_shot,
    render,
)
from clipseg.evaluation.cli import main_evaluate
from clipseg.evaluation.visual_prompts import UNMODIFIED
from clipseg.model import CLIPSeg, ImageFeatures, build_clipseg, variant_config
from clipseg.tokenizer import CLIPTokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


CLASSES = ["cat", "dog", "sofa"]  # label values 1, 2, 3; "background" is 0
SIZE = 32


class Oracle(CLIPSeg):
    """Knows the answer: channel 0 of an image holds its label map, a prompt's conditional
    holds the label value it names (text: looked up; support: channel 0 of the support).
    decode -> +-20 logits where the label map equals the prompt's value (or its opposite)."""

    def __init__(self, tokenizer, sign: float = 1.0):
        super().__init__(variant_config("tiny"))
        ctx = self.config.clip.text.context_length
        names = ["background", *CLASSES]
        self.values = {tuple(tokenizer(n, context_length=ctx)[0].tolist()): float(i) for i, n in enumerate(names)}
        self.sign = sign

    def encode_image(self, pixels):
        return ImageFeatures([pixels], (pixels.shape[-2], pixels.shape[-1]))

    def encode_text(self, ids):
        values = torch.tensor([self.values.get(tuple(row.tolist()), -1.0) for row in ids.cpu()])
        return values[:, None].expand(-1, self.config.clip.embed_dim).clone()

    def encode_visual_prompt(self, pixels):
        return pixels[:, 0, 0, 0][:, None].expand(-1, self.config.clip.embed_dim).clone()

    def decode(self, features, cond):
        labels = features.activations[0][:, 0]  # (1|N, H, W)
        hit = labels == cond[:, :1, None]  # (N, H, W)
        return self.sign * torch.where(hit, 20.0, -20.0)


def label_image(labels: torch.Tensor) -> torch.Tensor:
    """(H, W) label map -> (3, H, W) 'image' with the labels in channel 0."""
    return torch.stack([labels.float(), torch.zeros_like(labels, dtype=torch.float), torch.zeros_like(labels, dtype=torch.float)])


def scene(i: int) -> torch.Tensor:
    """(SIZE, SIZE) label map: background with a square of each class at a varying place."""
    labels = torch.zeros(SIZE, SIZE, dtype=torch.long)
    for c in range(len(CLASSES)):
        y, x = (3 * i + 5 * c) % (SIZE - 8), (7 * i + 9 * c) % (SIZE - 8)
        labels[y : y + 8, x : x + 8] = c + 1
    return labels


def samples(n: int, with_support: bool = False, negatives: bool = False) -> list[Sample]:
    out = []
    for i in range(n):
        labels = scene(i)
        c = i % len(CLASSES)
        mask = (labels == c + 1).float()[None]
        support = torch.full((3, SIZE, SIZE), float(c + 1)) if with_support else None
        out.append(Sample(label_image(labels), mask, CLASSES[c], support, class_name=CLASSES[c]))
    if negatives:  # a phrase naming nothing in the image: empty target
        labels = torch.zeros(SIZE, SIZE, dtype=torch.long)
        out.append(Sample(label_image(labels), torch.zeros(1, SIZE, SIZE), "dog", None, "neg", is_negative=True))
    return out


@pytest.fixture(scope="module")
def tokenizer():
    return CLIPTokenizer()


def test_referring_perfect_and_inverted(tokenizer):
    data = samples(7, negatives=True)
    perfect = evaluate_referring(Oracle(tokenizer), tokenizer, data, batch_size=3)
    assert perfect.samples == 8
    r = perfect.at_threshold
    assert r.threshold == pytest.approx(0.3) and (r.miou, r.iou_fg, r.ap) == (1.0, 1.0, 1.0)
    inverted = evaluate_referring(Oracle(tokenizer, sign=-1.0), tokenizer, data, batch_size=3).at_threshold
    assert inverted.iou_fg == 0.0 and inverted.ap < 0.5


def test_one_shot_visual_and_text(tokenizer):
    folds = [samples(6, with_support=True), samples(5, with_support=True)]
    visual = evaluate_one_shot(Oracle(tokenizer), tokenizer, folds, prompt="visual", batch_size=4)
    assert (visual.miou, visual.iou_bin, visual.ap) == (1.0, 1.0, 1.0) and len(visual.folds) == 2
    assert visual.samples == 11 and visual.skipped == 0
    text = evaluate_one_shot(Oracle(tokenizer), tokenizer, folds[:1], prompt="text", threshold=0.5)
    assert text.threshold == 0.5 and text.miou == 1.0
    missing = samples(4, with_support=True) + samples(2)  # two queries without a support image
    assert evaluate_one_shot(Oracle(tokenizer), tokenizer, [missing], batch_size=4).skipped == 2


def test_generalized_groups_by_subset(tokenizer):
    data = samples(6)
    subset_of = {"cat": "affordances", "dog": "affordances", "sofa": "meronymy"}
    result = evaluate_generalized(Oracle(tokenizer), tokenizer, data, subset_of=subset_of)
    assert sorted(result.subsets) == ["affordances", "meronymy"]
    assert result.subsets["affordances"].num_keys == 2 and result.subsets["meronymy"].miou == 1.0


def test_zero_shot_perfect(tokenizer):
    items = [
        ZeroShotItem(label_image(scene(i)), scene(i), str(i), list(CLASSES), list(CLASSES), unseen=(3,))
        for i in range(3)
    ]
    result = evaluate_zero_shot(Oracle(tokenizer), tokenizer, items, batch_size=2)
    assert (result.miou_seen, result.miou_unseen, result.harmonic) == (1.0, 1.0, 1.0)
    assert result.n_unseen == 1 and result.images == 3 and list(result.class_iou) == ["background", *CLASSES]


def test_visual_prompt_analysis(tokenizer):
    torch.manual_seed(0)
    model = build_clipseg("tiny")
    data = samples(4)
    same = evaluate_visual_prompts(model, tokenizer, data, variants={"unchanged": UNMODIFIED})
    assert same.samples == 4 and same.delta["unchanged"] == pytest.approx(0.0, abs=1e-4)
    full = evaluate_visual_prompts(model, tokenizer, data)
    assert len(full.delta) == 10 and 0 < full.baseline < 100
    assert all(-100 <= d <= 100 for d in full.delta.values())


def test_tables_render_like_the_paper(tokenizer):
    ref = evaluate_referring(Oracle(tokenizer), tokenizer, samples(3))
    shot = evaluate_one_shot(Oracle(tokenizer), tokenizer, [samples(3, with_support=True)])
    text = render([
        {"model": "oracle", **ref.to_dict()},
        {"model": "oracle", "dataset": "pascal5i", **shot.to_dict()},
    ])  # fmt: skip
    assert "Table 3" in text and "Table 5" in text
    assert "oracle  0.30  100.0   100.0  100.0" in text
    json.loads(ref.to_json())


def test_command_line(tmp_path, capsys):
    from clipseg.weights import save_clipseg

    torch.manual_seed(0)
    weights = save_clipseg(build_clipseg("tiny"), tmp_path / "tiny.safetensors")
    out = tmp_path / "referring.json"
    argv = ["referring", "--weights", str(weights), "--dataset", "world", "--split", "referring",
            "--options", '{"size": 4}', "--batch-size", "2", "--device", "cpu", "--out", str(out), "--no-progress"]  # fmt: skip
    (result,) = main_evaluate(argv)
    assert result["model"] == "tiny.safetensors" and result["samples"] == 4
    assert 0 <= result["at_threshold"]["iou_fg"] <= 1
    assert "Table 3" in capsys.readouterr().out
    main_evaluate(["tables", str(out)])
    assert "tiny.safetensors" in capsys.readouterr().out
