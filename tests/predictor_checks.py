"""Checks shared by the tests of every predictor (PyTorch `Predictor`, `OnnxPredictor`)."""

import numpy as np
import pytest

from clipseg import PromptError


def random_image(h: int = 90, w: int = 140, seed: int = 0) -> np.ndarray:
    """An (h, w, 3) uint8 image of uniform noise."""
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def check_prompt_errors(predictor, too_long_words: int) -> None:
    """No image set -> RuntimeError; then empty and too-long text prompts -> PromptError."""
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict(["x"])
    predictor.set_image(random_image())
    with pytest.raises(PromptError, match="empty"):
        predictor.predict(["ok", "  "])
    with pytest.raises(PromptError, match="too long"):
        predictor.predict([" ".join(["word"] * too_long_words)])
