"""The Predictor: encode an image once, answer many prompts cheaply (SAM-style)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from ..editing import EditedMask, MaskOptions, edit_map
from ..io.image_io import ImageError, ImageInput, load_image
from ..io.transforms import InputTransform, resize_maps
from ..model.clipseg import CLIPSeg, ImageFeatures
from ..model.fast_cpu import optimize_for_cpu
from ..prompts import Prompt, PromptEncoder, VisualPromptConfig
from ..prompts.expression import MapAlgebra, PromptPlan, as_plan
from ..tokenizer import Tokenizer
from .masks import is_present, label_map  # noqa: F401 (re-exported)
from .refine import EdgeRefiner, RefineConfig
from .tiles import DEFAULT_GATE, TileBlender, TileGrid, tile_count, tile_grid, tile_inputs


@dataclass(frozen=True)
class TileState:
    """The crops of a tiled image (`clipseg.inference.tiles`) and their backbone features."""

    grid: TileGrid
    features: list[ImageFeatures]  # one per crop, in the grid's order


@dataclass(frozen=True)
class ImageState:
    """What `set_image` computes once per image; `set_image(state)` restores it (a feature cache)."""

    features: ImageFeatures  # backbone activations of a batch of 1
    original_size: tuple[int, int]  # (H, W) of the image
    input_size: tuple[int, int]  # (H, W) fed to the model
    rgb: np.ndarray | None = None  # (H, W, 3) uint8, the image itself (refinement and cut-outs need it)
    tiles: "TileState | None" = None  # the crops' features, when set with tiles

    def without_pixels(self) -> "ImageState":
        """The state without the image's pixels (what a feature cache keeps: 3 bytes a pixel less)."""
        return replace(self, rgb=None)


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
        self.image_state: ImageState | None = None  # the image set last
        self._refiner: tuple[ImageState, RefineConfig, EdgeRefiner] | None = None  # the last image's guided filter

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

    @property
    def original_size(self) -> tuple[int, int] | None:
        """(H, W) of the image set last (None when none is)."""
        return None if self.image_state is None else self.image_state.original_size

    @torch.inference_mode()
    def set_image(self, image: ImageInput | torch.Tensor | ImageState, tiles: int | str | None = None,
                  batch_size: int = 8) -> None:
        """Read the image (path, bytes, PIL, HxW[xC] array, tensor) and compute its backbone
        features; or restore an `image_state` saved earlier (a cache of images: no backbone pass).

        tiles: for large images, also encode overlapping crops, N along the longer side or
        "auto" (about 1.5 times the input size each; see `clipseg.inference.tiles`): the crops
        go through the backbone in batches of `batch_size`, and every map is then the crops'
        maps blended, gated by the whole image's."""
        self._refiner = None
        if isinstance(image, ImageState):
            self.image_state = image
            return
        pil = read_image(image)
        x = self.transform(pil)
        rgb = np.asarray(pil.convert("RGB"))
        state = ImageState(self.model.encode_image(x[None].to(self.device)), (pil.height, pil.width),
                           tuple(x.shape[1:]), rgb)
        if tiles is not None:
            state = replace(state, tiles=self._encode_tiles(rgb, tiles, batch_size))
        self.image_state = state

    def _encode_tiles(self, rgb: np.ndarray, tiles: int | str, batch_size: int) -> TileState | None:
        prepared = tile_inputs(rgb, tiles, self.transform.size, self.transform)
        if prepared is None:
            return None  # one crop is the whole image: the global pass
        grid, pixels = prepared
        features: list[ImageFeatures] = []
        for start in range(0, len(pixels), batch_size):
            batch = self.model.encode_image(torch.stack(pixels[start : start + batch_size]).to(self.device))
            features += [batch.select(j) for j in range(batch.activations[0].shape[0])]
        return TileState(grid, features)

    def reset_image(self) -> None:
        self.image_state = None
        self._refiner = None

    def tiles_of(self, state: ImageState, tiles: int | str | None) -> bool:
        """Whether `state` holds the crops a `tiles` request asks for (None: no crops needed)."""
        if tiles is None:
            return True
        h, w = state.original_size
        grid = tile_grid(h, w, tile_count(tiles, h, w, self.transform.size))
        return (state.tiles.grid if state.tiles is not None else tile_grid(h, w, 1)) == grid

    def refiner(self, config: RefineConfig | None = None) -> EdgeRefiner:
        """The edge-aware refinement of the image set last (built once per image and config)."""
        state, config = self.image_state, config or RefineConfig()
        if state is None:
            raise RuntimeError("no image set: call set_image(image) first")
        if state.rgb is None:
            raise ValueError("refinement needs the image's pixels: this image state was kept without them "
                             "(set the image itself)")
        if self._refiner is None or self._refiner[0] is not state or self._refiner[1] != config:
            patch = self.model.config.clip.vision.patch_size
            grid = (state.input_size[0] // patch, state.input_size[1] // patch)  # the model's decision grid
            self._refiner = (state, config, EdgeRefiner(state.rgb, grid, config, self.device))
        return self._refiner[2]

    def maps(self, prompts: Sequence[Prompt] | Prompt | PromptPlan, *, negative: Sequence[str] = (),
             refine: bool | RefineConfig = False, threshold: float | None = None,
             original_size: bool = True, tile_gate: float | None = DEFAULT_GATE) -> Iterator[np.ndarray]:
        """One probability map (H, W) per prompt, made one at a time (what `predict` stacks).
        refine: follow the image's edges (`clipseg.inference.refine`; a RefineConfig tunes it);
        an answer "not present" at `threshold` (default the predictor's) is left as it is.
        tile_gate: how a tiled image's crops are gated by the whole image (`TileBlender`)."""
        plan = self.plan(prompts, negative)
        with torch.inference_mode():
            logits, tile_logits = self._term_logits(plan)
        size = self.original_size if original_size else None
        refiner = blender = None
        if refine:
            if not original_size:
                raise ValueError("refinement works at the original size")
            refiner = self.refiner(refine if isinstance(refine, RefineConfig) else None)
        if tile_logits is not None and original_size:
            blender = TileBlender(self.image_state.tiles.grid, tile_logits, logits, tile_gate)
        return full_resolution_maps(logits, size, plan, refiner=refiner, tiles=blender,
                                    threshold=self.threshold if threshold is None else threshold)

    @torch.inference_mode()
    def predict_batch(self, images: Sequence[ImageInput | torch.Tensor], prompts: Sequence[Prompt] | Prompt,
                      batch_size: int = 8, negative: Sequence[str] = ()) -> list[np.ndarray]:
        """Every prompt (or expression) on every image: one (N, H_i, W_i) array per image, at its own size.

        The prompts are encoded once; the backbone runs on batches of up to `batch_size`
        images of equal input shape (all of them without keep_aspect; grouped by aspect with
        it). Equal to set_image + predict per image within float rounding (1e-5).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        plan = self.plan(prompts, negative)
        cond = self.prompt_encoder.encode(plan.terms)
        prepared = [prepare_image(self.transform, image) for image in images]
        results: list[np.ndarray | None] = [None] * len(prepared)
        for batch in shape_batches([x.shape for x, _ in prepared], batch_size):
            logits = batch_logits(self.model, [prepared[i][0] for i in batch], cond)
            for i, lg in zip(batch, logits):
                results[i] = np.stack(list(full_resolution_maps(lg, prepared[i][1], plan)))
        return results  # type: ignore[return-value]

    def plan(self, prompts: Sequence[Prompt] | Prompt | PromptPlan, negative: Sequence[str] = ()) -> PromptPlan:
        """The prompts' plan: expressions parsed, negative prompts subtracted, terms listed once
        (`clipseg.prompts.expression`); a plan is returned as it is."""
        return as_plan(prompts, negative)

    @torch.inference_mode()
    def term_logits(self, plan: PromptPlan) -> torch.Tensor:
        """Logits (T, h, w) of the plan's terms at the model's input resolution: one decoder pass."""
        return self._term_logits(plan)[0]

    def _term_logits(self, plan: PromptPlan) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The whole image's logits (T, h, w) and, for a tiled image, the crops' (K, T, h, w)."""
        if self.image_state is None:
            raise RuntimeError("no image set: call set_image(image) before predict()")
        cond = self.prompt_encoder.encode(plan.terms)
        logits = self.model.decode(self.image_state.features, cond)
        tiles = self.image_state.tiles
        if tiles is None:
            return logits, None
        return logits, torch.stack([self.model.decode(f, cond) for f in tiles.features])

    @torch.inference_mode()
    def predict_logits(self, prompts: Sequence[Prompt] | Prompt | PromptPlan, negative: Sequence[str] = ()) -> torch.Tensor:
        """Logits (N, h, w) at the model's input resolution, one decoder pass for all prompts (the
        tensor twin of `predict`; expressions are combined on logits: max, min, min(a, -b))."""
        plan = self.plan(prompts, negative)
        logits = self.term_logits(plan)
        if not plan.has_expressions and len(plan.terms) == len(plan.outputs):
            return logits
        return torch.stack(list(plan.maps(lambda i: logits[i].clone(), TORCH_LOGITS)))

    @torch.inference_mode()
    def predict(self, prompts: Sequence[Prompt] | Prompt | PromptPlan, original_size: bool = True,
                negative: Sequence[str] = (), refine: bool | RefineConfig = False) -> np.ndarray:
        """Probability maps (N, H, W) float32 in [0, 1], at the original image size by default.

        A text prompt may be an expression ("a cat | a dog", "a person - a hat", see
        `clipseg.prompts.expression`); `negative` prompts are subtracted from every prompt.
        Expressions combine the terms' maps at the size returned. refine: see `maps`."""
        return np.stack(list(self.maps(prompts, negative=negative, refine=refine, original_size=original_size)))

    def edit(self, prompts: Sequence[Prompt] | Prompt, threshold: float | None = None, *,
             negative: Sequence[str] = (), refine: bool | RefineConfig = False, options: MaskOptions | None = None,
             **option_values) -> list[EditedMask]:
        """Masks for editing, one per prompt, at the image's size: `predict`, then `edit_map`
        with `options` or the same as keywords (grow, feather, smooth, invert, fill_holes,
        min_area; see `clipseg.editing.MaskOptions`). threshold: default the predictor's."""
        options = options or MaskOptions(**option_values)
        t = self.threshold if threshold is None else threshold
        return [edit_map(prob, t, options) for prob in self.maps(prompts, negative=negative, refine=refine, threshold=t)]

    def segment(self, image: ImageInput, prompts: Sequence[Prompt] | Prompt, threshold: float | None = None,
                negative: Sequence[str] = ()) -> np.ndarray:
        """One call: set_image + predict: probabilities (N, H, W), or boolean masks when a
        threshold is given (`predictor.threshold` is the model's own)."""
        self.set_image(image)
        probs = self.predict(prompts, negative=negative)
        return probs >= threshold if threshold is not None else probs

    def label_map(self, prompts: Sequence[Prompt], none_threshold: float | None = None,
                  negative: Sequence[str] = ()) -> np.ndarray:
        """Multi-prompt semantic segmentation: (H, W) int32, 0 = none of the prompts
        (max probability below none_threshold, default the predictor's threshold), k = prompts[k - 1]."""
        return label_map(self.predict(prompts, negative=negative),
                         self.threshold if none_threshold is None else none_threshold)


TORCH_LOGITS = MapAlgebra(complement=torch.neg, maximum=torch.maximum, minimum=torch.minimum)


def prepare_image(transform: InputTransform, image: ImageInput | torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """The model input (3, h, w) of an image and its original (H, W); no model work, so it can
    run in DataLoader workers. Torch tensors: (3, H, W) floats in [0, 1] or (H, W, 3) uint8,
    read as the image they hold (floats are rounded to 8 bits)."""
    pil = read_image(image)
    return transform(pil), (pil.height, pil.width)


def read_image(image: ImageInput | torch.Tensor) -> Image.Image:
    """`load_image` of anything a Predictor takes, torch tensors included (`tensor_to_array`)."""
    return load_image(tensor_to_array(image) if isinstance(image, torch.Tensor) else image)


@torch.inference_mode()
def batch_logits(model: CLIPSeg, pixels: Sequence[torch.Tensor], cond: torch.Tensor) -> list[torch.Tensor]:
    """Logits (N, h, w) per image for inputs (3, h, w) of one shape: one backbone pass for the
    batch, one decoder pass per image for all N conditional vectors."""
    device = next(model.parameters()).device
    features = model.encode_image(torch.stack(list(pixels)).to(device))
    cond = cond.to(device)
    return [model.decode(features.select(j), cond) for j in range(len(pixels))]


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


def full_resolution_tensor(logits: torch.Tensor, k: int, size: tuple[int, int] | None) -> torch.Tensor:
    """Row k of (N, h, w) logits -> a new (H, W) float32 probability tensor at size = (H, W)
    (at (h, w) when size is None), on the logits' device."""
    with torch.inference_mode():
        row = logits[k : k + 1].float()
        maps = resize_maps(row, size) if size is not None else row  # (1, H, W), a new tensor unless no resize
        shared = maps.untyped_storage().data_ptr() == logits.untyped_storage().data_ptr()
        return (maps.sigmoid() if shared else maps.sigmoid_())[0]


TORCH_PROBABILITIES = MapAlgebra(complement=lambda b: b.neg_().add_(1.0),
                                 maximum=lambda a, b: torch.maximum(a, b, out=a),
                                 minimum=lambda a, b: torch.minimum(a, b, out=a))


def full_resolution_maps(logits: torch.Tensor, size: tuple[int, int] | None, plan: PromptPlan | None = None, *,
                         refiner: EdgeRefiner | None = None, tiles: TileBlender | None = None,
                         threshold: float = 0.5) -> Iterator[np.ndarray]:
    """(T, h, w) logits -> probability maps (H, W) float32, made one at a time so that memory
    holds a few maps of a large image, not N: one per row, or one per output of `plan` (whose
    terms the rows are; expressions combine the terms' full-size maps). With `tiles`, each
    term's map is its crops' blend, gated by the whole image's; with `refiner`, each map is refined
    (its presence rule at `threshold`). Computed on the logits' device."""
    with torch.inference_mode():
        def term(i: int) -> torch.Tensor:
            return tiles.term_map(i) if tiles is not None else full_resolution_tensor(logits, i, size)

        if plan is None:
            maps = (term(k) for k in range(logits.shape[0]))
        else:
            maps = plan.maps(term, TORCH_PROBABILITIES)
        for m in maps:
            if refiner is not None:
                m = refiner(m, threshold)
            yield m.cpu().numpy()
            del m  # before the next map is made
