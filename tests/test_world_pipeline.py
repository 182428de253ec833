"""The offline world pipeline: word tokenizer, world data sets, CLIP pretraining, a short
CLIPSeg training run, the model cache and the demo (all small: seconds on 2 CPU cores)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from clipseg.datasets.sample import collate
from clipseg.worldgen import (
    DEFAULT_SPLIT,
    PROMPT_TEMPLATES,
    WORLD_WORDS,
    SceneConfig,
    WorldSplit,
    caption,
    generate_scene,
    negative_phrases,
    referring_phrases,
    split_words,
)
from clipseg.worldgen.dataset import (
    WorldCaptionDataset,
    WorldSegmentationConfig,
    WorldSegmentationDataset,
    world_evaluation_sets,
    world_training_set,
)
from clipseg.model import CLIP, CLIPConfig, TextConfig, VisionConfig
from clipseg.tokenizer import Tokenizer
from clipseg.tokenizer.word import WordTokenizer
from clipseg.training.clip_pretrain import PretrainConfig, contrastive_loss, encode_images, lr_at, pretrain_clip

UNSEEN = set(DEFAULT_SPLIT.unseen_classes())


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(min(2, old))
    yield
    torch.set_num_threads(old)


# ---------------------------------------------------------------- tokenizer


def test_word_tokenizer_layout_and_protocol():
    tok = WordTokenizer(WORLD_WORDS, context_length=12)
    assert isinstance(tok, Tokenizer)
    assert tok.vocab_size == len(WORLD_WORDS) + 4
    assert tok.eot_token == tok.vocab_size - 1 and tok.sot_token == tok.vocab_size - 2
    ids = tok(["a photo of a red star.", "circle"])
    assert ids.shape == (2, 12) and ids.dtype == torch.long
    assert ids[0, 0] == tok.sot_token and ids[1].tolist()[:3] == [tok.sot_token, tok.encode("circle")[0], tok.eot_token]
    assert (ids.argmax(1) == torch.tensor([7, 2])).all()  # pooling position = EOT
    assert (ids[1, 3:] == 0).all()
    assert tok.decode(ids[0]) == "a photo of a red star"


def test_word_tokenizer_unknown_truncation_and_json(tmp_path):
    tok = WordTokenizer(WORLD_WORDS, context_length=5)
    ids = tok("a purple giraffe")
    assert ids[0, 3] == tok.unk_token and tok.unknown_words("a purple giraffe") == ["giraffe"]
    long = tok("a b c d e f g")
    assert long.shape == (1, 5) and long[0, -1] == tok.eot_token
    with pytest.raises(ValueError):
        tok("red circle and blue star", truncate=False)
    path = tok.save(tmp_path / "tok.json")
    assert json.loads(path.read_text())["words"] == list(WORLD_WORDS)
    again = WordTokenizer.load(path)
    assert again == tok and torch.equal(again("red circle"), tok("red circle"))


def test_word_tokenizer_covers_every_caption_and_phrase():
    tok = WordTokenizer(WORLD_WORDS)
    rng = np.random.default_rng(0)
    for seed in range(60):
        scene = generate_scene(seed, SceneConfig(image_size=64))
        texts = [caption(scene, rng)] + [t.format(p.text) for p in referring_phrases(scene, 0) for t in PROMPT_TEMPLATES[:2]]
        texts += [p.text for p in negative_phrases(scene)]
        for text in texts:
            assert tok.unknown_words(text) == [], text


# ---------------------------------------------------------------- data sets


def test_caption_dataset_is_deterministic_and_all_classes():
    ds = WorldCaptionDataset(scenes=40, captions_per_scene=2, seed=3)
    assert len(ds) == 80
    image, text = ds[5]
    assert image.shape == (3, 64, 64) and isinstance(text, str) and text
    image2, text2 = WorldCaptionDataset(scenes=40, captions_per_scene=2, seed=3)[5]
    assert torch.equal(image, image2) and text == text2
    assert torch.equal(ds[5][0], ds[45][0])  # same scene, other caption draw
    shapes = {o.shape for i in range(40) for o in ds.scene(i).objects}
    assert shapes & UNSEEN  # held-out classes are seen by CLIP pretraining
    only_count = WorldCaptionDataset(scenes=10, style_weights={"count": 1.0})
    colours = {"red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"}
    assert all(not set(split_words(only_count[i][1])) & colours for i in range(10))


def test_training_set_negatives_supports_and_held_out_classes():
    ds = world_training_set(400, seed=1)
    items = [ds.item_with_scene(i) for i in range(len(ds))]
    negatives = [s for s, _ in items if s.is_negative]
    assert 0.15 <= len(negatives) / len(items) <= 0.25  # p = 0.2
    assert all(s.mask.sum() == 0 for s in negatives)
    positives = [s for s, _ in items if not s.is_negative]
    assert all(s.mask.sum() > 0 for s in positives)
    with_support = [s for s in positives if s.support is not None]
    assert 0.35 <= len(with_support) / len(positives) <= 0.65
    assert all(s.support.shape == (3, 64, 64) and s.phrase for s in with_support)
    # held-out classes: never drawn, never named, never a support
    for sample, scene in items:
        assert not {o.shape for o in scene.objects} & UNSEEN
        assert not set(split_words(sample.phrase)) & UNSEEN
        assert sample.class_name not in UNSEEN
        assert sample.image.shape == (3, 64, 64) and sample.mask.shape == (1, 64, 64)
    templated = [s.phrase for s in positives]
    assert len({p.split(" ")[0] for p in templated}) > 2  # several templates
    batch = collate([s for s, _ in items[:8]])
    assert batch["image"].shape == (8, 3, 64, 64)
    # a sample is a function of (seed, index)
    again = world_training_set(400, seed=1)[7]
    assert again.phrase == items[7][0].phrase and torch.equal(again.mask, items[7][0].mask)


def test_evaluation_sets():
    sets = world_evaluation_sets(12, seed=0)
    for task, ds in sets.items():
        assert len(ds) == 12
    referring = [sets["referring"].item_with_scene(i) for i in range(12)]
    assert all(not {o.shape for o in sc.objects} & UNSEEN and s.mask.sum() > 0 for s, sc in referring)
    zero = [sets["zero_shot"][i] for i in range(12)]
    assert {s.class_name for s in zero} == UNSEEN
    assert all(s.phrase == f"a photo of a {s.class_name}." and s.mask.sum() > 0 and s.support is None for s in zero)
    one = [sets["one_shot"][i] for i in range(12)]
    assert {s.class_name for s in one} == UNSEEN and all(s.support is not None and s.phrase == "" for s in one)
    phrases = [sets["zero_shot_phrases"][i] for i in range(12)]
    assert {s.class_name for s in phrases} == UNSEEN
    assert all(s.class_name in split_words(s.phrase) and s.mask.sum() > 0 for s in phrases)
    neg = [sets["negative"][i] for i in range(12)]
    assert all(s.is_negative and s.mask.sum() == 0 for s in neg)
    with pytest.raises(ValueError):
        WorldSegmentationConfig(mode="nope")
    # evaluation scenes are not training scenes
    train_seeds = {world_training_set(50).item_with_scene(i)[1].seed for i in range(50)}
    assert not train_seeds & {sc.seed for _, sc in referring}


def test_held_out_colours_never_in_training_and_their_zero_shot_set():
    held_out = {"orange", "purple"}
    split = WorldSplit(unseen_colours=tuple(held_out))
    train = world_training_set(300, seed=2, split=split)
    assert not set(train.train_scene.colours) & held_out  # the scenes of queries and of visual supports
    for i in range(len(train)):
        sample, scene = train.item_with_scene(i)
        assert not {o.colour for o in scene.objects} & held_out  # never drawn ...
        assert not set(split_words(sample.phrase)) & held_out  # ... never named (negatives included)
    sets = world_evaluation_sets(12, seed=0, split=split)
    assert all(not {o.colour for o in sc.objects} & held_out
               for sc in (sets["referring"].item_with_scene(i)[1] for i in range(12)))
    colours = [sets["zero_shot_colours"].item_with_scene(i) for i in range(12)]
    assert {s.class_name for s, _ in colours} == held_out
    for sample, scene in colours:
        assert sample.phrase == f"a photo of a {sample.class_name} object."
        assert not {o.shape for o in scene.objects} & UNSEEN  # only the colour is new
        expected = np.zeros(scene.image.shape[:2], bool)
        for o in scene.objects:
            if o.colour == sample.class_name:
                expected |= o.mask
        assert expected.any() and np.array_equal(sample.mask[0].numpy() > 0, expected)
    # held out by name only: the objects are drawn (so the decoder sees their pixels), never named
    by_name = world_training_set(300, seed=2, split=WorldSplit(unseen_colours=tuple(held_out), unseen_colours_drawn=True))
    items = [by_name.item_with_scene(i) for i in range(len(by_name))]
    assert sum(bool({o.colour for o in sc.objects} & held_out) for _, sc in items) > 50
    assert not any(set(split_words(s.phrase)) & held_out for s, _ in items)
    # without held-out colours there is no such set, and a split must keep a seen colour per group
    assert "zero_shot_colours" not in world_evaluation_sets(4, seed=0)
    with pytest.raises(ValueError, match="held-out colours"):
        WorldSegmentationDataset(WorldSegmentationConfig(mode="zero_shot_colours", size=4))
    with pytest.raises(ValueError, match="warm"):
        WorldSplit(unseen_colours=("red", "orange", "yellow", "pink", "brown"))
    with pytest.raises(ValueError, match="unseen colours"):
        WorldSplit(unseen_colours=("teal",))


# ---------------------------------------------------------------- CLIP pretraining


def _tiny_clip(tok: WordTokenizer) -> CLIP:
    torch.manual_seed(0)
    return CLIP(CLIPConfig(
        vision=VisionConfig(image_size=64, patch_size=16, width=32, layers=2, heads=2),
        text=TextConfig(context_length=tok.context_length, vocab_size=tok.vocab_size, width=32, layers=1, heads=2),
        embed_dim=32))


def test_contrastive_loss_and_schedule():
    logits = torch.eye(4) * 20
    assert contrastive_loss(logits) < 1e-3
    # duplicate captions are positives of each other
    dup = torch.tensor([[0.0, 5.0, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 5.0]])  # images 0, 1 swapped
    assert contrastive_loss(dup, ["a", "a", "b"]) < contrastive_loss(dup)
    cfg = PretrainConfig(steps=100, warmup=10, lr=1e-3, lr_min=1e-5)
    assert lr_at(0, cfg) == pytest.approx(1e-4) and lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(99, cfg) == pytest.approx(1e-5, abs=1e-6)


def test_close_ups_at_their_own_size_and_mixed_size_batches():
    ds = WorldCaptionDataset(scenes=16, object_crop_prob=0.5, crop_size=32, crop_scale=(1.1, 2.0))
    sizes = {tuple(ds[i][0].shape) for i in range(len(ds))}
    assert sizes == {(3, 64, 64), (3, 32, 32)}  # whole scenes and close-ups
    tok = WordTokenizer(WORLD_WORDS, context_length=24)
    model = _tiny_clip(tok).eval()
    images = [ds[i][0] for i in range(6)]
    with torch.no_grad():
        grouped = encode_images(model, images, torch.device("cpu"))
        one_by_one = torch.cat([model.encode_image(x[None]) for x in images])
    assert torch.allclose(grouped, one_by_one, atol=1e-5)
    result = pretrain_clip(model, ds, PretrainConfig(steps=3, batch_size=8, warmup=1, log_every=1), tok, progress=False)
    assert result.steps == 3 and all(math.isfinite(h["loss"]) for h in result.history)


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_clip_pretraining_lowers_the_loss(amp):
    tok = WordTokenizer(WORLD_WORDS, context_length=24)
    model = _tiny_clip(tok)
    ds = WorldCaptionDataset(scenes=64, captions_per_scene=1)
    config = PretrainConfig(steps=30, batch_size=32, lr=2e-3, warmup=3, log_every=5, amp=amp)
    result = pretrain_clip(model, ds, config, tok, progress=False)
    assert result.steps == 30 and len(result.history) == 6
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast leaves the weights in float32


def test_bf16_towers_give_float32_similarities_close_to_fp32():
    from clipseg.training.clip_pretrain import contrastive_logits
    from clipseg.inference.precision import autocast_context

    tok = WordTokenizer(WORLD_WORDS, context_length=24)
    model = _tiny_clip(tok).eval()
    ds = WorldCaptionDataset(scenes=8, captions_per_scene=1)
    images = torch.stack([ds[i][0] for i in range(8)])
    ids = tok([ds[i][1] for i in range(8)], context_length=24)
    with torch.no_grad():
        exact = contrastive_logits(model, images, ids)
        with autocast_context(torch.bfloat16, torch.device("cpu")):
            low = contrastive_logits(model, images, ids)
    assert low.dtype == torch.float32
    assert torch.allclose(low, exact, atol=0.05 * float(exact.abs().max()))
    with pytest.raises(ValueError, match="amp"):
        PretrainConfig(amp="fp8")


# ---------------------------------------------------------------- CLIPSeg training


def test_short_training_lowers_loss_and_beats_untrained():
    """A short run on the world (fixed seed, random backbone) lowers the loss and beats the
    untrained model on the referring evaluation set."""
    import tempfile

    from clipseg.evaluation.predict import accumulate
    from clipseg.training import TrainConfig, train
    from clipseg.world.pipeline import ListDataset, build_world_model, world_config

    config = world_config("tiny", extract_layers=(0, 1), reduce_dim=32, decoder_mlp=64)
    tok = config.tokenizer()
    model = build_world_model("clipseg-random", config, None)
    ds = WorldSegmentationDataset(WorldSegmentationConfig(mode="referring", size=48, seed=5))
    evalset = ListDataset([ds[i] for i in range(48)])

    def score(m):
        return accumulate(m, tok, evalset, "text", batch_size=48).groups["all"].result(select="miou")

    before = score(model)
    iterations, batch = 100, 16
    train_set = world_training_set(iterations * batch, seed=0)
    with tempfile.TemporaryDirectory() as d:  # the trainer writes a checkpoint there
        result = train(model, train_set, TrainConfig(iterations=iterations, batch_size=batch, lr=1e-2, lr_min=1e-3,
                                                     amp="off", out_dir=d, num_workers=0, export="none",
                                                     device="cpu"), tok, progress=False)
    losses = result.losses
    assert len(losses) == iterations
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    after = score(model)
    assert after.miou > before.miou + 0.05
    assert after.ap > before.ap + 0.05


def test_prompt_use_is_one_half_for_a_prompt_blind_model():
    """The prompt-use score (docs/world.md): a decoder whose FiLM ignores the prompt scores
    exactly 0.5; a model whose maps depend on the prompt scores something else, within [0, 1]."""
    from clipseg.world.pipeline import build_world_model, world_config
    from clipseg.world.scoring import prompt_use

    config = world_config("tiny")
    tok = config.tokenizer()
    model = build_world_model("clipseg-random", config, None)
    varied = prompt_use(model, tok, config, "held_out", n_scenes=6)
    assert 0.0 <= varied <= 1.0 and varied != 0.5
    with torch.no_grad():  # FiLM: a * 1 + 0 whatever the prompt
        for layer, bias in ((model.decoder.film_mul, 1.0), (model.decoder.film_add, 0.0)):
            layer.weight.zero_()
            layer.bias.fill_(bias)
    assert prompt_use(model, tok, config, "held_out", n_scenes=6) == 0.5
    assert prompt_use(model, tok, config, "seen", n_scenes=6) == 0.5
    with pytest.raises(ValueError, match="'seen' or 'held_out'"):  # a typo must not score held-out classes
        prompt_use(model, tok, config, "unseen", n_scenes=6)


# ---------------------------------------------------------------- pipeline, cache, demo


def test_pipeline_caches_and_demo(tmp_path):
    from clipseg.world import run_pipeline, segment_demo, world_config

    config = world_config("tiny", threads=None, unseen_colours=("orange", "purple"))  # + the held-out-colours row
    first = run_pipeline(config, progress=False, cache_dir=tmp_path)
    assert not any(first.loaded.values())
    assert [r["model"] for r in first.rows] == ["clipseg", "clip-deconv", "clipseg-random"]
    for row in first.rows:
        for task in ("referring", "zero_shot", "zero_shot_phrases", "zero_shot_generalized", "zero_shot_colours",
                     "one_shot"):
            m = row[task]
            assert 0.0 <= m["miou"] <= 1.0 and 0.0 <= m["ap"] <= 1.0 and m["n"] == config.eval_size
            lo, hi = m["ci"]["miou"]
            assert 0.0 <= lo <= hi <= 1.0
        assert 0.0 <= row["negative"]["fp_rate"] <= 1.0 and 0.0 <= row["negative"]["rejected"] <= 1.0
    assert set(first.rows[0]["vs"]) == {"clip-deconv", "clipseg-random"}
    assert "CLIP-Deconv" in first.table and "random backbone" in first.table and "held-out colours" in first.table
    assert "95 % CI" in first.table and "paired bootstrap" in first.table
    files = {p.name.split("-")[0] for p in tmp_path.iterdir()}
    assert {"clip", "clipseg", "results"} <= files

    second = run_pipeline(config, progress=False, cache_dir=tmp_path)  # the results themselves are cached
    assert second.loaded == {"all": True} and second.rows == first.rows
    for p in tmp_path.glob("results-*.json"):
        p.unlink()
    third = run_pipeline(config, progress=False, cache_dir=tmp_path)  # models loaded, evaluation redone
    assert all(0 <= r["prompt_use"][c] <= 1 for r in third.rows for c in ("seen", "held_out"))
    assert "Prompt use" in third.table
    assert third.loaded["clip"] and all(third.loaded[f"{n} fold 0"] for n in ("clipseg", "clip-deconv", "clipseg-random"))
    assert third.rows == first.rows  # same weights, same evaluation sets

    # another training setting -> another key -> that model is retrained, the CLIP is reused
    other = world_config("tiny", threads=None, unseen_colours=("orange", "purple"), train_iterations=3)
    assert other.clip_key() == config.clip_key() and other.model_key("clipseg") != config.model_key("clipseg")

    out = tmp_path / "demo.png"
    demo = segment_demo("a photo of a red circle.", out, scene_seed=2, config=config, cache_dir=tmp_path, progress=False)
    from PIL import Image

    png = Image.open(out)
    assert png.size[1] > 64 * 4 and png.size[0] > 2 * 64 * 4  # [scene | the prompt] at 4x, a legend below
    assert demo.probs.shape == (64, 64) and demo.unknown_words == [] and demo.objects
    assert segment_demo("a zebra", out, config=config, cache_dir=tmp_path, progress=False).unknown_words == ["zebra"]


def test_world_command_entry_point(tmp_path, capsys):
    from clipseg.cli.world import main

    assert main(["run", "--preset", "tiny", "--cache-dir", str(tmp_path), "--quiet"]) == 0
    assert "CLIP-Deconv" in capsys.readouterr().out
    assert main(["demo", "star", "--preset", "tiny", "--cache-dir", str(tmp_path), "--quiet",
                 "--out", str(tmp_path / "x.png")]) == 0
    assert (tmp_path / "x.png").exists()


def test_cache_keys_come_from_the_fields_marked_with_their_stage():
    """A new setting of a stage changes that stage's key without a hand-kept list; machine
    settings change no key."""
    import dataclasses

    from clipseg.world.config import WorldPipelineConfig

    base = WorldPipelineConfig()
    clip_fields, decoder_fields = base.stage_fields("clip"), base.stage_fields("decoders")
    architecture = base.stage_fields("architecture")
    assert "pretrain_steps" in clip_fields and "train_iterations" in decoder_fields and "decoder_heads" in architecture
    assert not set(clip_fields) & set(decoder_fields) and not set(architecture) & (set(clip_fields) | set(decoder_fields))
    for f in dataclasses.fields(base):
        if f.name in clip_fields or f.name in decoder_fields or f.name in architecture:
            continue
        assert f.name in ("eval_size", "eval_folds", "bootstrap", "threads", "train_threads", "num_workers",
                          "pretrain_workers", "pretrain_eval_every"), f.name  # unmarked on purpose
    assert base.clip_key() != dataclasses.replace(base, pretrain_steps=7).clip_key()
    assert base.clip_key() == dataclasses.replace(base, train_iterations=7).clip_key()
    assert base.model_key("clipseg") != dataclasses.replace(base, train_iterations=7).model_key("clipseg")
    assert base.model_key("clipseg") != dataclasses.replace(base, pretrain_steps=7).model_key("clipseg")
    assert base.model_key("clipseg") == dataclasses.replace(base, threads=1, num_workers=3).model_key("clipseg")
    # every architecture field changes the key of each model it reaches, and only those
    changed = {"extract_layers": (0, 2, 4), "reduce_dim": 32, "decoder_heads": 2, "decoder_mlp": 128,
               "decoder_cond_layer": 1, "decoder_refined": False, "deconv_hidden": 128}
    assert set(changed) == set(architecture)
    for field, value in changed.items():
        other = dataclasses.replace(base, **{field: value})
        for name in ("clipseg", "clip-deconv", "clipseg-random"):
            reaches = asdict_decoder(other, name) != asdict_decoder(base, name)
            assert (other.model_key(name) != base.model_key(name)) == reaches, (field, name)
        assert any(other.model_key(n) != base.model_key(n) for n in ("clipseg", "clip-deconv")), field
    later = dataclasses.replace(base, decoder_cond_layer=1)
    assert later.model_key("clip-deconv") == base.model_key("clip-deconv")  # CLIP-Deconv has no FiLM step
    assert later.clipseg_config("clipseg").decoder.cond_layer == 1
    assert later.clipseg_config("clipseg-random").decoder.cond_layer == 1
    with pytest.raises(ValueError, match="cond_layer 3 is not one of the decoder's 3 steps"):
        dataclasses.replace(base, decoder_cond_layer=3)


def asdict_decoder(config, name):
    import dataclasses

    return dataclasses.asdict(config.clipseg_config(name).decoder)


def test_world_clip_files_round_trip_and_bad_ones_are_clear_errors(tmp_path):
    from clipseg.weights import CheckpointError
    from clipseg.weights.native import load_clip, save_clip
    from clipseg.world.config import world_config

    cfg = world_config("tiny")
    torch.manual_seed(0)
    clip = CLIP(cfg.clip_config())
    path = save_clip(clip, tmp_path / "clip.safetensors", {"steps": 4})
    loaded, meta = load_clip(path)
    assert meta == {"steps": 4}
    for k, v in clip.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    from clipseg import build_clipseg, save_clipseg

    other = save_clipseg(build_clipseg("tiny"), tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="not a clipseg CLIP file"):
        load_clip(other)
