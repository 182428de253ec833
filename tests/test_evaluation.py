"""Evaluation runners: a perfect predictor scores 1.0, an inverted one 0; tables and CLI work."""

from __future__ import annotations

import re

import json

import pytest
import torch

from clipseg.datasets import ZeroShotItem
from clipseg.datasets.sample import Sample
from clipseg.evaluation import (
    evaluate_generalized,
    evaluate_one_shot,
    evaluate_referring,
    evaluate_visual_prompts,
    evaluate_zero_shot,
    render,
)
from clipseg.cli.train import main_evaluate
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
    rows = [line.split() for line in text.splitlines()]
    assert ["oracle", "0.30", "100.0", "100.0", "100.0"] in rows  # the paper's fixed t
    best = ref.to_dict()["best"]["threshold"]  # and the best t beside it, when it is another
    assert best == 0.3 or ["oracle", "(best", "t)", f"{best:.2f}", "100.0", "100.0", "100.0"] in rows
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


# --- visual prompt engineering: per-sample candidates, folds, LVIS --------------------------------
def test_visual_prompts_use_each_samples_candidates(tokenizer):
    """The baseline and a variant's delta equal a direct softmax over each sample's own candidates."""
    from dataclasses import replace

    import torch.nn.functional as F

    from clipseg.datasets import ObjectSample
    from clipseg.evaluation.visual_prompts import table2_variants
    from clipseg.prompts import engineer_visual_prompt

    torch.manual_seed(0)
    model = build_clipseg("tiny").eval()
    cands = [("cat", "dog"), ("dog", "sofa", "cat"), ("sofa", "cat")]
    data = [ObjectSample(s.image, s.mask, s.phrase, None, s.class_name, candidates=cands[i % 3])
            for i, s in enumerate(samples(6))]  # fmt: skip
    crop = table2_variants()["crop"]
    result = evaluate_visual_prompts(model, tokenizer, data, variants={"crop": crop})

    def p_object(config):
        out = []
        with torch.no_grad():
            for s in data:
                pixels = engineer_visual_prompt(s.image, s.mask[0], replace(config, size=64), model.config.mean,
                                                model.config.std)  # fmt: skip
                image = F.normalize(model.encode_visual_prompt(pixels[None]).float(), dim=-1)
                ids = tokenizer([f"a photo of a {n}." for n in s.candidates], context_length=16)
                text = F.normalize(model.encode_text(ids).float(), dim=-1)
                out.append((model.clip.logit_scale.exp() * image @ text.t()).softmax(-1)[0, 0].item())
        return 100 * sum(out) / len(out)

    base = p_object(UNMODIFIED)
    assert result.baseline == pytest.approx(base, rel=1e-4)
    assert result.delta["crop"] == pytest.approx(p_object(crop) - base, rel=1e-3, abs=1e-4)
    shared = evaluate_visual_prompts(model, tokenizer, samples(6), variants={"crop": crop})  # all 3 names each
    assert shared.baseline != pytest.approx(result.baseline, rel=1e-3)


def test_visual_prompts_score_every_fold(tokenizer):
    from clipseg.evaluation import evaluate_visual_prompts_folds, table2_variants

    torch.manual_seed(0)
    model = build_clipseg("tiny")
    folds = [samples(3), samples(6)[3:]]
    variants = {"unchanged": UNMODIFIED, "crop": table2_variants()["crop"]}
    result = evaluate_visual_prompts_folds(model, tokenizer, folds, ["fold 0", "fold 1"], variants=variants)
    one = [evaluate_visual_prompts(model, tokenizer, f, variants=variants) for f in folds]
    assert [p["name"] for p in result.parts] == ["fold 0", "fold 1"] and result.samples == 6
    assert [p["samples"] for p in result.parts] == [3, 3]
    for part, alone in zip(result.parts, one):
        assert part["baseline"] == pytest.approx(alone.baseline) and part["delta"] == pytest.approx(alone.delta)
    assert result.parts[0]["baseline"] != pytest.approx(result.parts[1]["baseline"])
    assert result.baseline == pytest.approx((one[0].baseline + one[1].baseline) / 2)
    for v in variants:
        assert result.delta[v] == pytest.approx((one[0].delta[v] + one[1].delta[v]) / 2)
    text = render([{"model": "tiny", "dataset": "pascal5i", **result.to_dict()}])
    assert "tiny fold 0" in text and "tiny fold 1" in text and "tiny mean" in text and "data: pascal5i" in text


def _weights(tmp_path):
    from clipseg.weights import save_clipseg

    torch.manual_seed(0)
    return str(save_clipseg(build_clipseg("tiny"), tmp_path / "tiny.safetensors"))


CPU = ["--device", "cpu", "--no-progress"]


def test_visual_prompts_command_lvis_default_and_pascal_folds(tmp_path, capsys):
    from fixtures_datasets import write_lvis_objects, write_voc

    weights = _weights(tmp_path)
    write_lvis_objects(tmp_path / "lvis")
    (lvis,) = main_evaluate(["visual-prompts", "--weights", weights, "--data", str(tmp_path / "lvis"), *CPU])
    assert lvis["dataset"] == "lvis-objects" and lvis["samples"] == 2 and len(lvis["delta"]) == 10
    assert "Table 2" in capsys.readouterr().out
    write_voc(tmp_path / "VOC2012")
    argv = ["visual-prompts", "--weights", weights, "--dataset", "pascal5i", "--data", str(tmp_path / "VOC2012"),
            "--folds", "0", "--folds", "2", *CPU]  # fmt: skip
    (voc,) = main_evaluate(argv)
    assert [p["name"] for p in voc["parts"]] == ["fold 0", "fold 2"] and voc["samples"] == 16
    f0, f2 = voc["parts"]
    assert f0["delta"] != f2["delta"]  # fold 2 holds one class (motorbike): P(object) = 1 for every prompt
    assert all(d == pytest.approx(0.0, abs=1e-4) for d in f2["delta"].values()) and f2["baseline"] == pytest.approx(100)
    assert voc["delta"]["crop"] == pytest.approx((f0["delta"]["crop"] + f2["delta"]["crop"]) / 2)
    assert "fold 2" in capsys.readouterr().out


# --- your own data: split-less lists -------------------------------------------------------------
def test_own_data_referring_equals_numpy(tmp_path, capsys):
    """`referring` on a folder without split: metrics equal a direct numpy computation (mIoU over samples)."""
    import numpy as np

    from clipseg.datasets import FolderConfig, PhraseFolder
    from clipseg.io.transforms import resize_maps
    from clipseg.evaluation.metrics import THRESHOLDS, average_precision
    from clipseg.weights import load_clipseg
    from fixtures_datasets import write_phrase_folder

    root = tmp_path / "mine"
    rows = [("a.jpg", "a.png", "red mug"), ("b.jpg", "b.png", "a red mug"), ("c.jpg", "", "unicorn")]
    write_phrase_folder(root, rows)  # c.jpg: a negative (empty mask)
    weights = _weights(tmp_path)
    argv = ["referring", "--weights", weights, "--dataset", "folder", "--data", str(root), "--batch-size", "1", *CPU]
    (auto,) = main_evaluate(argv)
    out = capsys.readouterr()
    assert "no 'test' list or split column" in out.err and "mIoU over samples" in out.out
    (explicit,) = main_evaluate([*argv, "--split", "none"])
    assert auto == explicit and auto["split"] is None and auto["samples"] == 3 and auto["miou_over"] == "sample"

    model = load_clipseg(weights, device="cpu").eval()
    counts = []  # per sample (4, 49): TP, FP, FN, TN
    with torch.no_grad():
        for s in PhraseFolder(root, None, FolderConfig(image_size=SIZE * 2)):
            cond = model.encode_text(CLIPTokenizer()([s.phrase], context_length=16))
            logits = model.decode(model.encode_image(s.image[None]), cond)
            p = torch.sigmoid(resize_maps(logits.float(), tuple(s.mask.shape[-2:])))[0].numpy()
            t = s.mask[0].numpy() > 0.5
            pred = p[None] > THRESHOLDS[:, None, None]  # (49, H, W)
            counts.append(np.stack([(pred & t).sum((1, 2)), (pred & ~t).sum((1, 2)), (~pred & t).sum((1, 2)),
                                    (~pred & ~t).sum((1, 2))]))  # fmt: skip
    counts = np.stack(counts).astype(float)  # (3, 4, 49)
    union = counts[:, 0] + counts[:, 1] + counts[:, 2]
    iou = np.where(union > 0, counts[:, 0] / np.maximum(union, 1), 1.0)  # (3, 49); empty union = 1
    total = counts.sum(0)
    k = int(np.argmin(np.abs(THRESHOLDS - 0.3)))
    r = auto["at_threshold"]
    assert r["threshold"] == pytest.approx(0.3) and r["num_keys"] == 3
    assert r["miou"] == pytest.approx(iou[:, k].mean())
    assert r["iou_fg"] == pytest.approx(total[0, k] / (total[0, k] + total[1, k] + total[2, k]))
    assert r["ap"] == pytest.approx(average_precision(total))
    assert auto["best"]["miou"] == pytest.approx(iou.mean(0).max())


def _fails_with(capsys, pattern: str, args: list[str]) -> None:
    """main_evaluate ends with a clear message (exit 2 and one stderr line, or SystemExit(message))."""
    with pytest.raises(SystemExit) as info:
        main_evaluate(args)
    err = capsys.readouterr().err
    message = err if info.value.code == 2 else str(info.value.code)
    assert re.search(pattern, message), message
    assert "Traceback" not in err


def test_own_data_errors_name_the_problem(tmp_path, capsys):
    from fixtures_datasets import write_phrase_folder

    root = tmp_path / "mine"
    write_phrase_folder(root, [("a.jpg", "a.png", "mug"), ("b.jpg", "a.png", "cup")])
    weights = _weights(tmp_path)
    base = ["referring", "--weights", weights, "--dataset", "folder", "--data", str(root), *CPU]
    _fails_with(capsys, r"phrases.csv' has no split column, so split 'val' cannot be selected", [*base, "--split", "val"])
    (root / "phrases.csv").write_text("image,mask,phrase,split\na.jpg,a.png,mug,train\nb.jpg,a.png,cup,val\n")
    _fails_with(capsys, r"no samples of split 'test' \(its split column holds: train, val\)", base)
    (val,) = main_evaluate([*base, "--split", "val"])
    assert val["split"] == "val" and val["samples"] == 1
    (root / "phrases.csv").write_text("a.jpg,a.png,mug\nb.jpg,cup\n")
    _fails_with(capsys, r"phrases.csv:2: expected 3 fields", [*base, "--split", "none"])
    (root / "phrases.csv").write_text("a.jpg,gone.png,mug\n")
    _fails_with(capsys, r"phrases.csv:1: mask 'gone.png' not found", base)
    (root / "phrases.csv").unlink()
    _fails_with(capsys, r"no list file: expected .*phrases.csv", [*base, "--split", "none"])


def test_referring_miou_over_samples(tokenizer):
    """Two samples of one phrase, one right and one half wrong: per-sample mean vs pooled key IoU."""
    data = samples(3)[:1] * 2
    wrong = data[1].mask.clone()
    wrong[0, :, : SIZE // 2] = 0  # target only partly matches what the oracle finds
    data = [data[0], Sample(data[1].image, wrong, data[1].phrase, None, data[1].class_name)]
    hit, target = data[0].mask.sum().item(), wrong.sum().item()
    per_sample = evaluate_referring(Oracle(tokenizer), tokenizer, data, miou_over="sample").at_threshold
    per_key = evaluate_referring(Oracle(tokenizer), tokenizer, data).at_threshold
    assert per_sample.num_keys == 2 and per_key.num_keys == 1
    assert per_sample.miou == pytest.approx((1 + target / hit) / 2)
    assert per_key.miou == pytest.approx((hit + target) / (2 * hit))
    with pytest.raises(ValueError, match="miou_over"):
        evaluate_referring(Oracle(tokenizer), tokenizer, data, miou_over="phrase")


def test_evaluate_with_bad_weights_exits_2_with_one_line(tmp_path, capsys):
    from fixtures_datasets import write_phrase_folder

    root = tmp_path / "mine"
    write_phrase_folder(root, [("a.jpg", "a.png", "mug")])
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    for weights in (bad, tmp_path / "missing.pth", tmp_path):
        _fails_with(capsys, re.escape(str(weights)),
                    ["referring", "--weights", str(weights), "--dataset", "folder", "--data", str(root), *CPU])


def test_command_line_lists_every_protocol():
    from clipseg.cli.train import PROTOCOL_NAMES
    from clipseg.cli.evaluate_run import PROTOCOLS

    assert set(PROTOCOL_NAMES) == set(PROTOCOLS) | {"tables"}
