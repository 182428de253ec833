"""`OnnxPredictor`: the `Predictor` API (set_image once, predict many prompts) on onnxruntime,
reading a directory written by `clipseg.export.export_onnx`."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..data.image_io import ImageInput, load_image
from ..data.transforms import resize_maps, to_input
from ..inference.predictor import label_map
from ..prompts.text import TextEmbeddingCache, tokenize_prompts
from ..prompts.types import PromptError
from ..tokenizer import CLIPTokenizer, Tokenizer
from .onnx import read_metadata


class OnnxPredictor:
    """Segment one image by many text prompts with the exported ONNX graphs.

        predictor = OnnxPredictor("clipseg-onnx")          # directory of export_onnx
        predictor.set_image("kitchen.jpg")                 # image encoder, once
        probs = predictor.predict(["a cup", "a spoon"])    # (2, H, W) float32 in [0, 1]

    Prompts: text (str) or conditional embeddings ((embed_dim,) array or tensor); visual
    prompts need the CLIP image embedding, which the export does not contain. Text
    embeddings are cached by prompt (LRU, `text_cache_size`). Images are resized to the
    export's fixed input size (as `Predictor` does without keep_aspect).

    providers: onnxruntime execution providers (default CPU). threads: intra-op threads
    (default torch.get_num_threads(), so both runtimes use the same number).
    allow_spinning=False makes idle worker threads sleep instead of spinning (better on a
    CPU shared with other busy processes; like OMP_WAIT_POLICY=PASSIVE for torch).
    """

    def __init__(
        self,
        out_dir: str | Path,
        tokenizer: Tokenizer | None = None,
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        allow_spinning: bool = True,
        text_cache_size: int = 1024,
        truncate_prompts: bool = False,
    ):
        import onnxruntime as ort

        self.out_dir = Path(out_dir)
        self.meta = read_metadata(self.out_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        providers = list(providers or ["CPUExecutionProvider"])
        self.sessions = {
            name: ort.InferenceSession(str(self.out_dir / file), sess_options=opts, providers=providers)
            for name, file in self.meta["files"].items()
        }
        self.tokenizer = tokenizer or CLIPTokenizer()
        self.truncate_prompts = truncate_prompts
        self.text_cache: TextEmbeddingCache[np.ndarray] = TextEmbeddingCache(text_cache_size)
        self.activation_names: list[str] = self.meta["tensors"]["image_encoder"]["outputs"]
        self.features: dict[str, np.ndarray] | None = None
        self.original_size: tuple[int, int] | None = None
        self.input_size: tuple[int, int] = tuple(self.meta["input_size"])

    # ------------------------------------------------------------------ image
    def preprocess(self, image: ImageInput) -> tuple[np.ndarray, tuple[int, int]]:
        """Image -> normalized (1, 3, H, W) float32 at the export's input size, original (H, W)."""
        pil = load_image(image)
        x = to_input(pil, tuple(self.input_size), tuple(self.meta["mean"]), tuple(self.meta["std"]))
        return x[None].numpy(), (pil.height, pil.width)

    def set_image(self, image: ImageInput) -> None:
        """Read the image and run the image encoder graph once."""
        pixels, original = self.preprocess(image)
        self.set_pixels(pixels, original)

    def set_pixels(self, pixels: np.ndarray, original_size: tuple[int, int] | None = None) -> None:
        """Use an already normalized (1, 3, H, W) float32 input."""
        outs = self.sessions["image_encoder"].run(None, {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})
        self.features = dict(zip(self.activation_names, outs))
        self.original_size = tuple(original_size or pixels.shape[-2:])

    def reset_image(self) -> None:
        self.features = self.original_size = None

    @property
    def is_image_set(self) -> bool:
        return self.features is not None

    # ---------------------------------------------------------------- prompts
    def tokenize(self, texts: Sequence[str]) -> np.ndarray:
        """(N, L) int64 ids, cut after the last EOT of the batch (the graph takes any L)."""
        ids = tokenize_prompts(self.tokenizer, texts, self.meta["context_length"], self.truncate_prompts)
        length = int(ids.argmax(dim=-1).max()) + 1
        return ids[:, :length].numpy().astype(np.int64)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, embed_dim) text embeddings, computing only those not in the cache."""
        return np.stack(self.text_cache.lookup(texts, lambda todo: self.sessions["text_encoder"].run(
            None, {"input_ids": self.tokenize(todo)})[0]))

    def encode(self, prompts: Sequence) -> np.ndarray:
        """Conditional vectors (N, embed_dim) float32, one per prompt, in order."""
        if len(prompts) == 0:
            raise PromptError("no prompts given")
        dim = self.meta["embed_dim"]
        texts = [p for p in prompts if isinstance(p, str)]
        text_emb = iter(self.encode_texts(texts)) if texts else iter(())
        out = []
        for i, p in enumerate(prompts):
            if isinstance(p, str):
                out.append(next(text_emb))
            elif isinstance(p, (np.ndarray, torch.Tensor)):
                arr = p.detach().cpu().float().numpy() if isinstance(p, torch.Tensor) else np.asarray(p, np.float32)
                if arr.shape != (dim,):
                    raise PromptError(f"prompt #{i}: an embedding must have shape ({dim},), got {tuple(arr.shape)}")
                out.append(arr)
            else:
                raise PromptError(
                    f"prompt #{i}: OnnxPredictor takes text and embedding prompts, not {type(p).__name__}"
                )
        return np.stack(out).astype(np.float32, copy=False)

    # ---------------------------------------------------------------- predict
    def predict_logits(self, prompts) -> torch.Tensor:
        """Logits (N, h, w) at the input resolution, one decoder call for all prompts."""
        if self.features is None:
            raise RuntimeError("no image set: call set_image(image) before predict()")
        prompts = [prompts] if isinstance(prompts, (str, np.ndarray, torch.Tensor)) else list(prompts)
        feeds = dict(self.features)
        feeds["cond"] = self.encode(prompts)
        return torch.from_numpy(self.sessions["decoder"].run(None, feeds)[0])

    def predict(self, prompts, original_size: bool = True) -> np.ndarray:
        """Probability maps (N, H, W) float32 in [0, 1], at the original image size by default."""
        logits = self.predict_logits(prompts)
        if original_size:
            logits = resize_maps(logits, self.original_size)
        return torch.sigmoid(logits).numpy()

    def segment(self, image: ImageInput, prompts, threshold: float | None = None) -> np.ndarray:
        self.set_image(image)
        probs = self.predict(prompts)
        return probs >= threshold if threshold is not None else probs

    def label_map(self, prompts, none_threshold: float = 0.3) -> np.ndarray:
        return label_map(self.predict(prompts), none_threshold)
