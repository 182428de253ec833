"""The practitioner's round trip: fine-tune an HF-layout model with `clipseg train --init`, publish it
with `clipseg export-hf`, load the result with transformers (same logits) and the authors' file with
this project's authors' loader (same weights)."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import clipseg
from clipseg.cli.main import cli
from clipseg.tokenizer import CLIPTokenizer
from clipseg.weights import load_clipseg

from fixtures_datasets import write_phrase_folder
from hf_reference import make_hf_clipseg, token_ids

transformers = pytest.importorskip("transformers")


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    """An HF folder (random weights, the CIDAS layout), fine-tuned for 3 steps by `clipseg train --init`."""
    root = tmp_path_factory.mktemp("roundtrip")
    make_hf_clipseg(refined=True, seed=3).save_pretrained(root / "hf")
    write_phrase_folder(root / "data", [(f"im{k}.png", f"m{k}.png", "a red square") for k in range(4)])
    (root / "exp.json").write_text(json.dumps({
        "name": "roundtrip", "data": {"dataset": "folder", "split": None},
        "train": {"iterations": 3, "batch_size": 2, "log_every": 1, "num_workers": 0, "out_dir": str(root / "run")}}))
    res = _run("train", "--config", root / "exp.json", "--data", root / "data", "--init", root / "hf")
    assert res.exit_code == 0, res.output
    return root


def test_train_init_records_the_base_and_prints_a_summary(fine_tuned):
    record = json.loads((fine_tuned / "run" / "experiment.json").read_text())
    assert record["init"] == str(fine_tuned / "hf")
    assert record["trained"]["config"]["decoder"]["refined"] is True  # the HF model's, not the model section's
    before = clipseg.load(fine_tuned / "hf")
    after = clipseg.load(fine_tuned / "run" / "model.safetensors")
    changed = [k for k, v in after.state_dict().items() if not torch.equal(v, before.state_dict()[k])]
    assert changed and all(k.startswith("decoder.") for k in changed)  # the decoder trained, the backbone frozen


def test_export_hf_loads_in_transformers_with_the_same_logits(fine_tuned, tmp_path):
    weights = fine_tuned / "run" / "model.safetensors"
    out = tmp_path / "published"
    res = _run("export-hf", out, "--weights", weights)
    assert res.exit_code == 0, res.output
    ours = clipseg.load(weights)
    hf = transformers.CLIPSegForImageSegmentation.from_pretrained(out).eval()
    processor = transformers.CLIPSegProcessor.from_pretrained(out)

    prompts = ["a red square", "the cat's hat!"]
    hf_ids = processor(text=prompts, padding="max_length", max_length=16, return_tensors="pt").input_ids
    our_ids = CLIPTokenizer(context_length=16)(prompts)
    for hf_row, our_row in zip(hf_ids.tolist(), our_ids.tolist()):  # equal up to the first EOT (then padding)
        end = our_row.index(49407) + 1
        assert hf_row[:end] == our_row[:end]

    torch.manual_seed(0)
    pixels = torch.randn(2, 3, 352, 352)
    ids = token_ids(2, 16)
    with torch.no_grad():
        ref = hf(pixel_values=pixels, input_ids=ids).logits
        got = ours(pixels, text_ids=ids)
    assert ref.abs().max() > 0.1
    assert (got - ref).abs().max() < 1e-4
    # the processor's pixels are ours: same size, same mean / std
    assert processor.image_processor.size == {"height": 352, "width": 352}
    assert tuple(processor.image_processor.image_mean) == ours.config.mean

    card = (out / "README.md").read_text()
    assert f"fine-tuned from: `{fine_tuned / 'hf'}`" in card and "iterations: 3 of batch 2" in card
    losses = [float(r.split(",")[1]) for r in (fine_tuned / "run" / "train_log.csv").read_text().splitlines()[1:]]
    assert f"{losses[0]:.4f} -> {losses[-1]:.4f}" in card

    # the folder also loads back into this project, threshold and input size included
    back = clipseg.load(out)
    with torch.no_grad():
        assert (back(pixels, text_ids=ids) - got).abs().max() < 1e-5


def test_export_hf_authors_layout_loads_through_the_authors_loader(fine_tuned, tmp_path):
    weights = fine_tuned / "run" / "model.safetensors"
    out = tmp_path / "published"
    assert _run("export-hf", out, "--weights", weights).exit_code == 0
    authors = out / "authors" / "clipseg-decoder.pth"
    sd = torch.load(authors, weights_only=True)
    assert "film_mul.weight" in sd and not any(k.startswith(("decoder.", "clip.")) for k in sd)
    ours = clipseg.load(weights)
    # the authors' files do not say their extract layers: the released ones are (3, 6, 9), this tiny one's are not
    again = load_clipseg(authors, backbone=fine_tuned / "hf", extract_layers=ours.config.decoder.extract_layers)
    assert again.config == ours.config
    for k, v in ours.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


def test_export_hf_threshold_travels(tmp_path):
    model = clipseg.load("tiny:random")
    model.identity.threshold = 0.35
    from clipseg.export.hf import check_exportable, export_hf

    check_exportable(model)
    export_hf(model, tmp_path / "o", authors=False)
    assert not (tmp_path / "o" / "authors").exists()
    assert clipseg.load(tmp_path / "o").threshold == 0.35


def test_export_hf_refuses_what_hf_cannot_hold_and_full_folders(tmp_path):
    res = _run("export-hf", tmp_path / "w", "--weights", "world")
    assert res.exit_code == 2 and "word tokenizer" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    res = _run("export-hf", tmp_path / "full", "--weights", "tiny:random")
    assert res.exit_code == 2 and "already holds files" in res.output
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep"


@pytest.mark.parametrize("file, change, expected", [
    ("preprocessor_config.json", {"size": 10**6}, "outside 16..8192"),
    ("preprocessor_config.json", {"image_std": [0, 1, 1]}, "image_std must be three numbers"),
    ("preprocessor_config.json", {"image_mean": "grey"}, "image_mean must be three numbers"),
    ("config.json", {"clipseg_threshold": 7}, "threshold"),
])
def test_a_bad_processor_or_threshold_in_an_hf_folder_is_one_clear_error(tmp_path, file, change, expected):
    from clipseg.export.hf import export_hf
    from clipseg.weights import CheckpointError

    export_hf(clipseg.load("tiny:random"), tmp_path / "o", authors=False)
    path = tmp_path / "o" / file
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(CheckpointError, match=expected) as info:
        clipseg.load(tmp_path / "o")
    assert file in str(info.value) or "config.json" in str(info.value)


def test_the_model_card_carries_the_evaluation(fine_tuned, tmp_path):
    from clipseg.cli.train import main_evaluate

    weights = fine_tuned / "run" / "model.safetensors"
    (result,) = main_evaluate(["referring", "--weights", str(weights), "--dataset", "folder", "--data",
                               str(fine_tuned / "data"), "--split", "none", "--no-progress",
                               "--out", str(tmp_path / "eval.json")])
    res = _run("export-hf", tmp_path / "pub", "--weights", weights, "--metrics", tmp_path / "eval.json", "--no-authors")
    assert res.exit_code == 0, res.output
    card = (tmp_path / "pub" / "README.md").read_text()
    fixed = result["at_threshold"]
    assert f"| referring | data | fixed t 0.30 | {100 * fixed['miou']:.1f} |" in card
    assert f"best t {result['best']['threshold']:.2f}" in card
