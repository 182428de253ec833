"""Predictor: one backbone pass for many prompts, equal to separate full forwards."""

import numpy as np
import pytest
import torch
from PIL import Image

from clipseg import MixedPrompt, Predictor, PromptError, VisualPrompt, build_clipseg
from clipseg.io.transforms import InputTransform
from predictor_checks import check_prompt_errors, random_image


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_clipseg("tiny").eval()


def test_predict_equals_separate_forwards_with_one_backbone_pass(model):
    predictor = Predictor(model)
    img = random_image()
    calls = []
    handle = model.clip.visual.register_forward_hook(lambda *a: calls.append(1))
    orig = model.encode_image
    counted = []

    def counting(pixels):
        counted.append(pixels.shape[0])
        return orig(pixels)

    model.encode_image = counting
    try:
        predictor.set_image(img)
        prompts = ["a red circle", "a blue square", "something round", "the large star", "a cat"]
        logits = predictor.predict_logits(prompts)
    finally:
        model.encode_image = orig
        handle.remove()
    assert counted == [1]  # the backbone ran once, for one image
    x = InputTransform(size=64, multiple=8)(Image.fromarray(img))[None]
    ids = predictor.prompt_encoder.tokenizer(prompts, context_length=16)
    with torch.no_grad():
        separate = torch.cat([model(x, text_ids=ids[i : i + 1]) for i in range(len(prompts))])
    assert logits.shape == separate.shape == (5, 64, 64)
    assert torch.allclose(logits, separate, atol=1e-5)


def test_outputs_at_original_resolution_and_label_map(model):
    predictor = Predictor(model)
    probs = predictor.segment(random_image(37, 201), ["a", "b", "c"])
    assert probs.shape == (3, 37, 201) and probs.dtype == np.float32
    assert probs.min() >= 0 and probs.max() <= 1
    labels = predictor.label_map(["a", "b", "c"], none_threshold=0.0)
    assert labels.shape == (37, 201)
    assert set(np.unique(labels)) <= {1, 2, 3}
    assert (predictor.label_map(["a", "b"], none_threshold=1.01) == 0).all()


def test_keep_aspect_uses_a_non_square_grid(model):
    predictor = Predictor(model, keep_aspect=True)
    predictor.set_image(random_image(60, 150))
    assert predictor.image_state.input_size == (24, 64)
    assert predictor.image_state.features.grid == (3, 8)
    assert predictor.predict(["x"]).shape == (1, 60, 150)


def test_visual_and_mixed_prompts(model):
    predictor = Predictor(model)
    img = random_image()
    mask = np.zeros((90, 140), bool)
    mask[20:50, 30:80] = True
    predictor.set_image(img)
    vp = VisualPrompt(img, mask)
    text = predictor.predict_logits(["a cat"])
    vis = predictor.predict_logits([vp])
    mixed = predictor.predict_logits([MixedPrompt("a cat", vp, 0.3)])
    t = predictor.prompt_encoder.encode(["a cat"])
    v = predictor.prompt_encoder.encode([vp])
    with torch.inference_mode():
        expected = model.decode(predictor.image_state.features, 0.3 * t + 0.7 * v)
    assert torch.allclose(mixed, expected, atol=1e-5)
    assert not torch.allclose(text, vis)


def test_a_visual_prompt_shared_by_mixed_prompts_is_encoded_once(model):
    predictor = Predictor(model)
    mask = np.zeros((90, 140), bool)
    mask[20:50, 30:80] = True
    vp, other = VisualPrompt(random_image(), mask), VisualPrompt(random_image(), mask)
    prompts = [MixedPrompt("a", vp, 0.3), vp, MixedPrompt("b", vp, 0.6), other]
    batches = []
    orig = model.encode_visual_prompt
    model.encode_visual_prompt = lambda pixels: (batches.append(pixels.shape[0]), orig(pixels))[1]
    try:
        cond = predictor.prompt_encoder.encode(prompts)
    finally:
        model.encode_visual_prompt = orig
    assert batches == [2]  # vp once, other once
    one_by_one = torch.cat([predictor.prompt_encoder.encode([p]) for p in prompts])
    assert torch.allclose(cond, one_by_one, atol=1e-5)


def test_text_embeddings_are_cached(model):
    predictor = Predictor(model)
    predictor.set_image(random_image())
    calls = []
    orig = model.encode_text
    model.encode_text = lambda ids: (calls.append(ids.shape[0]), orig(ids))[1]
    try:
        predictor.predict(["a", "b"])
        predictor.predict(["b", "a", "c"])
    finally:
        model.encode_text = orig
    assert calls == [2, 1]


def test_errors(model):
    predictor = Predictor(model)
    check_prompt_errors(predictor, too_long_words=1000)
    with pytest.raises(PromptError, match="empty"):
        predictor.predict([VisualPrompt(random_image(), np.zeros((90, 140), bool))])
    assert Predictor(model, truncate_prompts=True).segment(random_image(), [" ".join(["word"] * 1000)]).shape[0] == 1


def test_text_embedding_cache_is_lru_and_serves_batches_larger_than_itself():
    from clipseg.prompts.text import TextEmbeddingCache

    calls = []

    def compute(todo):
        calls.append(list(todo))
        return [len(t) for t in todo]

    cache = TextEmbeddingCache(2)
    assert cache.lookup(["aa", "b", "aa", "cccc"], compute) == [2, 1, 2, 4]  # 3 distinct > size 2
    assert calls == [["aa", "b", "cccc"]] and list(cache.entries) == ["aa", "cccc"]  # LRU order kept
    assert cache.lookup(["cccc", "b"], compute) == [4, 1]
    assert calls[-1] == ["b"] and list(cache.entries) == ["cccc", "b"]


def test_streamed_maps_equal_predict(model):
    """One full-size map at a time (the CLI and the server use it for large images), equal to predict()."""
    from clipseg.inference.predictor import full_resolution_maps, probabilities

    p = Predictor(model)
    p.set_image(random_image(37, 81))
    prompts = ["a cat", "a dog", "grass"]
    whole = p.predict(prompts)
    streamed = list(full_resolution_maps(p.predict_logits(prompts), p.original_size))
    assert len(streamed) == 3 and all(m.shape == (37, 81) and m.dtype == np.float32 for m in streamed)
    # Two decoder passes: BLAS may round them differently (its kernels depend on buffer
    # alignment; CI's machine did), so the maps agree to float32 rounding, not bit for bit.
    assert np.abs(np.stack(streamed) - whole).max() < 1e-6

    logits = p.predict_logits(prompts)
    before = logits.clone()
    # The same logits: streaming makes predict's rows, one at a time (to one float32 ulp, since
    # vectorised kernels may round a 1-map tensor and a 3-map tensor differently).
    one_at_a_time = np.stack(list(full_resolution_maps(logits, p.original_size)))
    assert np.abs(one_at_a_time - probabilities(logits, p.original_size)).max() <= 6e-8
    list(full_resolution_maps(logits, tuple(logits.shape[-2:])))  # no resize: must not touch the logits
    assert torch.equal(logits, before)


def test_predict_batch_equals_one_image_at_a_time_for_every_input_kind(model):
    from PIL import Image as PILImage

    arrays = [random_image(40, 60, seed=1), random_image(64, 64, seed=2), random_image(30, 90, seed=3),
              random_image(50, 50, seed=4), random_image(41, 61, seed=5)]
    inputs = [arrays[0], PILImage.fromarray(arrays[1]), torch.from_numpy(arrays[2]),
              torch.from_numpy(arrays[3]).permute(2, 0, 1).float() / 255, arrays[4]]
    prompts = ["a cat", "a dog"]
    for keep_aspect in (False, True):  # one shape for all / grouped by aspect
        p = Predictor(model, keep_aspect=keep_aspect)
        batched = p.predict_batch(inputs, prompts, batch_size=2)
        for image, got in zip(arrays, batched):
            p.set_image(image)
            expected = p.predict(prompts)
            assert got.shape == expected.shape == (2, *image.shape[:2])
            assert np.abs(got - expected).max() < 1e-5


def test_shape_batches_group_equal_shapes_in_runs():
    from clipseg.inference.predictor import shape_batches

    shapes = [(3, 4, 4), (3, 4, 8), (3, 4, 4), (3, 4, 4), (3, 4, 8)]
    assert shape_batches(shapes, 2) == [[0, 2], [3], [1, 4]]
