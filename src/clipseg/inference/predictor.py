"""The Predictor: encode an image once, answer many prompts cheaply (SAM-style)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..io.image_io import ImageError, ImageInput, load_image
from ..io.transforms import InputTransform, resize_maps
from ..model.clipseg import CLIPSeg, ImageFeatures
from ..model.fast_cpu import optimize_for_cpu
from ..prompts import Prompt, PromptEncoder, VisualPromptConfig
from ..prompts.conditions import prompt_list
from ..tokenizer import Tokenizer
from .masks import is_present, label_map  # noqa: F401 (re-exported)


class Predictor:
    """Segment one image by many prompts.

        predictor = Predictor(clipseg.load("CIDAS/clipseg-rd64-refined"))
        predictor.set_image("kitchen.jpg")              # runs the CLIP backbone once
        probs = predictor.predict(["a cup", "a spoon"])  # (2, H, W) float32 in [0, 1]
        masks = probs >= predictor.threshold             # the model's recommended threshold

The model's own tokenizer and threshold (`model.identity`, from its weights) are used
unless `tokenizer` / `threshold` are given.

    Results are at the original image resolution. `keep_aspect=True` feeds the image
    with its aspect ratio (longer side = input size, a non-square patch grid) instead
    of squashing it to a square as the reference implementations do.
    """

    def __init__(
        self,
        model: CLIPSeg,
        tokenizer: Tokenizer | None = None,
        *,
        threshold: float | None = None,
        keep_aspect: bool = False,
        input_size: int | None = None,
        visual_prompt_config: VisualPromptConfig | None = None,
        text_cache_size: int = 1024,
        truncate_prompts: bool = False,
        warn_unknown_words: bool = True,
    ):
        self.model = optimize_for_cpu(model).eval()  # the CPU speed paths (same math; a no-op elsewhere)
        cfg = model.config
        self.transform = InputTransform(
            size=input_size or cfg.input_size, keep_aspect=keep_aspect, multiple=cfg.clip.vision.patch_size,
            mean=cfg.mean, std=cfg.std,
        )
        self.prompt_encoder = PromptEncoder(
            model, tokenizer or model.tokenizer, visual_prompt_config, text_cache_size, truncate_prompts,
            warn_unknown_words,
        )
        self.threshold = model.threshold if threshold is None else float(threshold)
        self.features: ImageFeatures | None = None
        self.original_size: tuple[int, int] | None = None  # (H, W)
        self.input_size: tuple[int, int] | None = None  # (H, W) fed to the model

    @classmethod
    def from_pretrained(cls, weights: str | Path | None = None, device: str = "cpu", dtype: str = "float32",
                        backbone: str | Path | None = None, **kwargs) -> "Predictor":
        """`Predictor(clipseg.load(weights, ...), **kwargs)`: any spec `clipseg.load` takes."""
        from ..factory import load

        return cls(load(weights, device=device, dtype=dtype, backbone=backbone), **kwargs)

    @property
    def tokenizer(self) -> Tokenizer:
        return self.prompt_encoder.tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prepare(self, image: ImageInput | torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """The model input (3, h, w) of an image and its original (H, W); no model work, so
        it can run in DataLoader workers. Torch tensors: (3, H, W) floats in [0, 1] or
        (H, W, 3) uint8, read as the image they hold (floats are rounded to 8 bits)."""
        pil = load_image(tensor_to_array(image) if isinstance(image, torch.Tensor) else image)
        return self.transform(pil), (pil.height, pil.width)

    @torch.inference_mode()
    def set_image(self, image: ImageInput | torch.Tensor) -> None:
        """Read the image (path, bytes, PIL, HxW[xC] array, tensor) and compute its backbone features."""
        x, size = self.prepare(image)
        self.features = self.model.encode_image(x[None].to(self.device))
        self.original_size = size
        self.input_size = tuple(x.shape[1:])

    @torch.inference_mode()
    def predict_batch(self, images: Sequence[ImageInput | torch.Tensor], prompts: Sequence[Prompt] | Prompt,
                      batch_size: int = 8) -> list[np.ndarray]:
        """Every prompt on every image: one (N, H_i, W_i) array per image, at its own size.

        The prompts are encoded once; the backbone runs on batches of up to `batch_size`
        images of equal input shape (all of them without keep_aspect; grouped by aspect with
        it). Equal to set_image + predict per image within float rounding (1e-5).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        cond = self.prompt_encoder.encode(prompt_list(prompts))
        prepared = [self.prepare(image) for image in images]
        results: list[np.ndarray | None] = [None] * len(prepared)
        for batch in shape_batches([x.shape for x, _ in prepared], batch_size):
            logits = self.batch_logits([prepared[i][0] for i in batch], cond)
            for i, lg in zip(batch, logits):
                results[i] = probabilities(lg, prepared[i][1])
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def batch_logits(self, pixels: Sequence[torch.Tensor], cond: torch.Tensor) -> list[torch.Tensor]:
        """Logits (N, h, w) per image for inputs (3, h, w) of one shape: one backbone pass for
        the batch, one decoder pass per image for all N conditional vectors."""
        features = self.model.encode_image(torch.stack(list(pixels)).to(self.device))
        cond = cond.to(self.device)
        return [self.model.decode(features.select(j), cond) for j in range(len(pixels))]

    def set_features(self, features: ImageFeatures, original_size: tuple[int, int]) -> None:
        """Use features computed elsewhere (a cache, a batch): batch of 1, original (H, W)."""
        self.features = features
        self.original_size = tuple(original_size)

    def reset_image(self) -> None:
        self.features = self.original_size = self.input_size = None

    @property
    def is_image_set(self) -> bool:
        return self.features is not None

    def _require_image(self) -> ImageFeatures:
        if self.features is None:
            raise RuntimeError("no image set: call set_image(image) before predict()")
        return self.features

    @torch.inference_mode()
    def predict_logits(self, prompts: Sequence[Prompt] | Prompt) -> torch.Tensor:
        """Logits (N, h, w) at the model's input resolution, one decoder pass for all prompts."""
        features = self._require_image()
        cond = self.prompt_encoder.encode(prompt_list(prompts))
        return self.model.decode(features, cond)

    def predict_iter(self, prompts: Sequence[Prompt] | Prompt) -> Iterator[np.ndarray]:
        """Each prompt's probability map (H, W) at the original size, one at a time: the
        decoder runs once for all prompts, but only one full-resolution map is in memory."""
        return full_resolution_maps(self.predict_logits(prompts), self.original_size)

    @torch.inference_mode()
    def predict(self, prompts: Sequence[Prompt] | Prompt, original_size: bool = True) -> np.ndarray:
        """Probability maps (N, H, W) float32 in [0, 1], at the original image size by default."""
        return probabilities(self.predict_logits(prompts), self.original_size if original_size else None)

    def segment(self, image: ImageInput, prompts: Sequence[Prompt] | Prompt, threshold: float | None = None) -> np.ndarray:
        """One call: set_image + predict: probabilities (N, H, W), or boolean masks when a
        threshold is given (`predictor.threshold` is the model's own)."""
        self.set_image(image)
        probs = self.predict(prompts)
        return probs >= threshold if threshold is not None else probs

    def label_map(self, prompts: Sequence[Prompt], none_threshold: float | None = None) -> np.ndarray:
        """Multi-prompt semantic segmentation: (H, W) int32, 0 = none of the prompts
        (max probability below none_threshold, default the predictor's threshold), k = prompts[k - 1]."""
        return label_map(self.predict(prompts), self.threshold if none_threshold is None else none_threshold)


def probabilities(logits: torch.Tensor, size: tuple[int, int] | None) -> np.ndarray:
    """(N, h, w) logits -> (N, H, W) float32 probabilities, resized to size = (H, W) unless None."""
    if size is not None:
        logits = resize_maps(logits, size)
    return torch.sigmoid(logits).float().cpu().numpy()


def shape_batches(shapes: Sequence[tuple[int, ...]], batch_size: int) -> list[list[int]]:
    """Indices grouped by equal shape (first-seen order), in runs of at most batch_size."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, shape in enumerate(shapes):
        groups.setdefault(tuple(shape), []).append(i)
    return [idx[s : s + batch_size] for idx in groups.values() for s in range(0, len(idx), batch_size)]


def tensor_to_array(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] or (H, W, 3) / (H, W) uint8 tensor -> (H, W, 3) uint8 array."""
    t = image.detach().cpu()
    if t.dim() == 3 and t.shape[0] in (1, 3) and t.is_floating_point():
        t = (t.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
    if t.dtype != torch.uint8:
        raise ImageError(f"a tensor image must be (3, H, W) floats in [0, 1] or (H, W, 3) uint8, got "
                         f"{tuple(t.shape)} {t.dtype}")
    return t.numpy()


def full_resolution_maps(logits: torch.Tensor, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """(N, h, w) logits -> N probability maps (H, W) float32, made one at a time (equal to
    `predict`'s rows), so that memory holds one map of a large image, not N."""
    with torch.inference_mode():
        for k in range(logits.shape[0]):
            maps = resize_maps(logits[k : k + 1].float(), size)  # (1, H, W), a new tensor unless no resize
            shared = maps.untyped_storage().data_ptr() == logits.untyped_storage().data_ptr()
            maps = maps.sigmoid() if shared else maps.sigmoid_()
            yield maps.cpu().numpy()[0]
            del maps  # before the next map is made: one full-size map at a time


