"""`OnnxPredictor`: the `Predictor` API (set_image once, predict many prompts) on onnxruntime,
reading a directory written by `clipseg.export.export_onnx`.

It imports numpy, onnxruntime, Pillow and the tokenizer only - no torch, no onnx - so a
deployment installs `pip install 'clipseg[onnxruntime]'` (tested in a process where
`import torch` fails). Images, resizes and visual prompt engineering are the numpy versions
of the PyTorch ones (`data.arrays`, `prompts.visual_arrays`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import os

import numpy as np

from ..io.arrays import resize_bilinear, to_input_array
from ..io.image_io import ImageInput, load_image
from ..editing import EditedMask, MaskOptions, edit_map
from ..inference.masks import DEFAULT_THRESHOLD, label_map
from ..prompts.conditions import assemble_conditions
from ..prompts.expression import MapAlgebra, PromptPlan, as_plan
from ..prompts.text import TextEmbeddingCache, tokenize_prompts
from ..prompts.types import PromptError, VisualPrompt
from ..prompts.visual_arrays import visual_prompt_array
from ..tokenizer import CLIPTokenizer, Tokenizer, load_tokenizer
from ..io.files import check_regular_file
from .format import MAX_GRAPH_BYTES, model_vocab_size, read_metadata


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """float32 sigmoid without overflow for logits of any size: exp of -|x| only."""
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


class OnnxPredictor:
    """Segment one image by many text prompts with the exported ONNX graphs.

        predictor = OnnxPredictor("clipseg-onnx")          # directory of export_onnx
        predictor.set_image("kitchen.jpg")                 # image encoder, once
        probs = predictor.predict(["a cup", "a spoon"])    # (2, H, W) float32 in [0, 1]

    Prompts: text (str), VisualPrompt (image + mask), MixedPrompt, or conditional embeddings
    ((embed_dim,) arrays). Text embeddings are cached by prompt (LRU, `text_cache_size`).
    Images are resized to the export's fixed input size (as `Predictor` does without
    keep_aspect). Visual prompts need an export of format 2 (with visual_prompt_encoder.onnx).

    providers: onnxruntime execution providers (default CPU). threads: intra-op threads
    (default: the CPU count, at most 8).
    allow_spinning=False makes idle worker threads sleep instead of spinning (better on a
    CPU shared with other busy processes; like OMP_WAIT_POLICY=PASSIVE for torch).
    """

    def _session(self, ort, file: str, opts, providers):
        """One graph's onnxruntime session; ValueError naming the file when it is not a regular
        file or not a graph onnxruntime can load (truncated, empty, random bytes)."""
        path = self.out_dir / file
        check_regular_file(path, MAX_GRAPH_BYTES, "ONNX graph")
        try:
            return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as e:  # onnxruntime's InvalidProtobuf, InvalidArgument, Fail, ... (no common base)
            raise ValueError(f"{path}: not an ONNX graph onnxruntime can load ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None

    def _exported_tokenizer(self) -> Tokenizer | None:
        """The word tokenizer written with the export (tokenizer.json), if there is one."""
        name = self.meta.get("tokenizer")
        return load_tokenizer(str(self.out_dir / Path(name).name)) if name else None  # ValueError naming the file

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
        opts.intra_op_num_threads = int(threads or min(8, os.cpu_count() or 1))
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        for name in self.meta.get("weights", {}).values():  # external data the graphs read: plain files
            if os.path.lexists(self.out_dir / name):
                check_regular_file(self.out_dir / name, MAX_GRAPH_BYTES, "ONNX weights")
        providers = list(providers or ["CPUExecutionProvider"])
        self.sessions = {name: self._session(ort, file, opts, providers) for name, file in self.meta["files"].items()
                         if os.path.lexists(self.out_dir / file)}
        missing = {"image_encoder", "text_encoder", "decoder"} - set(self.sessions)
        if missing:
            raise ValueError(f"{self.out_dir}: the export lacks {', '.join(sorted(missing))}")
        self.tokenizer = tokenizer or self._exported_tokenizer() or CLIPTokenizer()
        rows = model_vocab_size(self.meta)
        if rows is not None and self.tokenizer.vocab_size > rows:
            raise ValueError(f"{self.out_dir}: the tokenizer has {self.tokenizer.vocab_size} tokens, more than the "
                             f"{rows} rows of the exported text embedding")
        threshold = self.meta.get("threshold", DEFAULT_THRESHOLD)  # the model's own, when exported
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise ValueError(f"{self.out_dir}: clipseg_onnx.json has threshold {str(threshold)[:40]!r}, "
                             "expected a number in [0, 1]")
        self.threshold = float(threshold)
        self.truncate_prompts = truncate_prompts
        self.text_cache: TextEmbeddingCache[np.ndarray] = TextEmbeddingCache(text_cache_size)
        self.activation_names: list[str] = self.meta["tensors"]["image_encoder"]["outputs"]
        self.features: dict[str, np.ndarray] | None = None
        self.original_size: tuple[int, int] | None = None
        self.input_size: tuple[int, int] = tuple(self.meta["input_size"])

    # ------------------------------------------------------------------ image
    def transform(self, image) -> np.ndarray:
        """RGB PIL image -> normalized (3, H, W) float32 at the export's input size."""
        return to_input_array(image, tuple(self.input_size), tuple(self.meta["mean"]), tuple(self.meta["std"]))

    def prepare(self, image: ImageInput) -> tuple[np.ndarray, tuple[int, int]]:
        """Image -> normalized (3, H, W) float32 at the export's input size, original (H, W)."""
        pil = load_image(image)
        return self.transform(pil), (pil.height, pil.width)

    def preprocess(self, image: ImageInput) -> tuple[np.ndarray, tuple[int, int]]:
        """`prepare` with a batch dimension: (1, 3, H, W)."""
        x, size = self.prepare(image)
        return x[None], size

    def set_image(self, image: ImageInput) -> None:
        """Read the image and run the image encoder graph once."""
        pixels, original = self.preprocess(image)
        self.set_pixels(pixels, original)

    def set_pixels(self, pixels: np.ndarray, original_size: tuple[int, int] | None = None) -> None:
        """Use an already normalized (1, 3, H, W) float32 input."""
        self.features = self.encode_images(pixels)[0]
        self.original_size = tuple(original_size or pixels.shape[-2:])

    def encode_images(self, pixels: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Image-encoder features of a batch (B, 3, H, W): one {activation: (1, T, width)} per image."""
        outs = self.sessions["image_encoder"].run(None, {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})
        return [{name: out[i : i + 1] for name, out in zip(self.activation_names, outs)} for i in range(len(pixels))]

    def decode(self, features: dict[str, np.ndarray], cond: np.ndarray) -> np.ndarray:
        """Logits (N, h, w) of one image's features for conditional vectors (N, E)."""
        return self.sessions["decoder"].run(None, {**features, "cond": np.ascontiguousarray(cond, np.float32)})[0]

    def reset_image(self) -> None:
        self.features = self.original_size = None

    @property
    def is_image_set(self) -> bool:
        return self.features is not None

    # ---------------------------------------------------------------- prompts
    def tokenize(self, texts: Sequence[str]) -> np.ndarray:
        """(N, L) int64 ids, cut after the last EOT of the batch (the graph takes any L)."""
        ids = tokenize_prompts(self.tokenizer, texts, self.meta["context_length"], self.truncate_prompts)
        length = int(ids.argmax(axis=-1).max()) + 1
        return np.ascontiguousarray(ids[:, :length], dtype=np.int64)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, embed_dim) text embeddings, computing only those not in the cache."""
        return np.stack(self.text_cache.lookup(texts, lambda todo: self.sessions["text_encoder"].run(
            None, {"input_ids": self.tokenize(todo)})[0]))

    def encode_visual(self, prompt: VisualPrompt) -> np.ndarray:
        """(E,) CLIP embedding of a visual prompt, engineered as the PyTorch path does."""
        if "visual_prompt_encoder" not in self.sessions or "visual_prompt" not in self.meta:
            raise PromptError(f"{self.out_dir} has no visual prompt encoder (exported by an older clipseg): "
                              "export it again for visual prompts")
        pixels = visual_prompt_array(prompt.image, prompt.mask, self.meta["visual_prompt"], self.meta["mean"],
                                     self.meta["std"])
        return self.sessions["visual_prompt_encoder"].run(None, {"pixels": pixels[None]})[0][0]

    def encode(self, prompts: Sequence) -> np.ndarray:
        """Conditional vectors (N, embed_dim) float32, one per prompt, in order."""
        dim = self.meta["embed_dim"]

        def embedding(p, i: int) -> np.ndarray:  # a numpy array (or a tensor of another runtime)
            arr = np.asarray(p.detach().cpu().float() if hasattr(p, "detach") else p, np.float32)
            if arr.shape != (dim,):
                raise PromptError(f"prompt #{i}: an embedding must have shape ({dim},), got {tuple(arr.shape)}")
            return arr

        conds = assemble_conditions(prompts, self.encode_texts, lambda vs: [self.encode_visual(v) for v in vs], embedding)
        return np.stack(conds).astype(np.float32, copy=False)

    # ---------------------------------------------------------------- predict
    def plan(self, prompts, negative: Sequence[str] = ()) -> PromptPlan:
        """The prompts' plan (expressions parsed, negative prompts subtracted; see `Predictor.plan`)."""
        return as_plan(prompts, negative)

    def term_logits(self, plan: PromptPlan) -> np.ndarray:
        """Logits (T, h, w) of the plan's terms at the input resolution, one decoder call."""
        if self.features is None:
            raise RuntimeError("no image set: call set_image(image) before predict()")
        return self.decode(self.features, self.encode(plan.terms))

    def predict_logits(self, prompts, negative: Sequence[str] = ()) -> np.ndarray:
        """Logits (N, h, w) at the input resolution (expressions combined on logits)."""
        plan = self.plan(prompts, negative)
        logits = self.term_logits(plan)
        return np.stack(list(plan.maps(lambda i: logits[i].copy(), NUMPY_LOGITS)))

    def probability_maps(self, plan: PromptPlan, original_size: bool = True):
        """One probability map (H, W) per output of the plan, made one at a time."""
        logits = self.term_logits(plan)
        size = self.original_size if original_size else logits.shape[-2:]
        return plan.maps(lambda i: _sigmoid(resize_bilinear(logits[i : i + 1], size))[0])

    def predict(self, prompts, original_size: bool = True, negative: Sequence[str] = ()) -> np.ndarray:
        """Probability maps (N, H, W) float32 in [0, 1], at the original image size by default
        (expressions and `negative` as `Predictor.predict`)."""
        return np.stack(list(self.probability_maps(self.plan(prompts, negative), original_size)))

    def edit(self, prompts, threshold: float | None = None, *, negative: Sequence[str] = (),
             options: MaskOptions | None = None, **option_values) -> list[EditedMask]:
        """Masks for editing, one per prompt (`Predictor.edit`)."""
        options = options or MaskOptions(**option_values)
        t = self.threshold if threshold is None else threshold
        return [edit_map(prob, t, options) for prob in self.probability_maps(self.plan(prompts, negative))]

    def segment(self, image: ImageInput, prompts, threshold: float | None = None,
                negative: Sequence[str] = ()) -> np.ndarray:
        self.set_image(image)
        probs = self.predict(prompts, negative=negative)
        return probs >= threshold if threshold is not None else probs

    def label_map(self, prompts, none_threshold: float | None = None, negative: Sequence[str] = ()) -> np.ndarray:
        return label_map(self.predict(prompts, negative=negative),
                         self.threshold if none_threshold is None else none_threshold)


NUMPY_LOGITS = MapAlgebra(complement=lambda b: np.negative(b, out=b),
                          maximum=lambda a, b: np.maximum(a, b, out=a),
                          minimum=lambda a, b: np.minimum(a, b, out=a))
