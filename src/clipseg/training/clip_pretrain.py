"""Contrastive pretraining of a CLIP (image tower + text tower) on image-caption pairs.

The objective of CLIP (Radford et al. 2021): for a batch of N pairs, the N x N matrix of
scaled cosine similarities between image and text embeddings is scored with cross
entropy in both directions (image -> text and text -> image), averaged; the
temperature (`logit_scale`) is learned and clamped at 100. Identical captions in one
batch are treated as positives of each other's images (`merge_duplicates`), which
matters when captions are short ("a circle"). Optimiser: AdamW, linear warm-up, then
cosine decay to `lr_min`. With `amp="bf16"` (the trainer's modes) the two towers run under bfloat16
autocast (on CPUs with AMX or AVX512-BF16 a step takes about two thirds of the fp32
time); the similarity matrix, the loss and the optimiser stay in float32.

Works for any `clipseg.model.CLIP` (the real ViT-B/16 config or a small one) and any
data set of (image tensor (3, H, W), caption str) items; images of several sizes in one
batch are encoded one size at a time (the ViT resizes its positional embeddings).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..model.fast_cpu import optimize_for_cpu
from ..model.clip import CLIP
from ..tokenizer import Tokenizer
from .config import AMP_MODES
from ..inference.precision import autocast_context
from .trainer import autocast_dtype

MAX_LOGIT_SCALE = math.log(100.0)


@dataclass
class PretrainConfig:
    """Settings of contrastive CLIP pretraining."""

    steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    lr_min: float = 1e-5
    warmup: int = 50  # linear warm-up steps
    weight_decay: float = 0.1  # on weight matrices only (not on norms, biases, embeddings' scale)
    grad_clip: float = 1.0  # max gradient norm (0: off)
    merge_duplicates: bool = True
    seed: int = 0
    num_workers: int = 0
    device: str = "cpu"
    amp: str = "off"  # autocast of the two towers: TrainConfig's modes (off / bf16 / fp16 / auto)
    threads: int | None = None  # torch.set_num_threads during training (None: leave as is)
    log_every: int = 25  # steps between entries of `PretrainResult.history`

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError("need steps >= 1 and batch_size >= 2")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, not {self.amp!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PretrainResult:
    steps: int
    seconds: float
    final_loss: float  # mean loss of the last log_every steps
    final_accuracy: float  # in-batch image -> text top-1 accuracy over the last log_every steps
    history: list[dict] = field(default_factory=list)  # {"step", "loss", "accuracy", "lr", "logit_scale"}


def contrastive_loss(logits: torch.Tensor, captions: list[str] | None = None) -> torch.Tensor:
    """Symmetric InfoNCE on (N, N) image x text logits whose diagonal holds the pairs.

    With `captions`, texts that are identical to caption i count as positives of image i
    (the target distribution spreads over them), and vice versa.
    """
    n = logits.shape[0]
    if captions is None:
        target = torch.arange(n, device=logits.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    ids = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    key = torch.tensor([ids[c] for c in captions], device=logits.device)
    same = (key[:, None] == key[None, :]).float()
    target = same / same.sum(1, keepdim=True)
    loss_i = -(target * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_t = -(target * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
    return 0.5 * (loss_i + loss_t)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # Matrices of linear / attention / projection layers decay; embeddings, norms,
        # biases and the temperature do not.
        is_matrix = p.dim() >= 2 and "embedding" not in name
        (decay if is_matrix else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, config: PretrainConfig) -> float:
    """Learning rate of step `step` (0-based): linear warm-up, then cosine to lr_min."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    t = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr_min + 0.5 * (config.lr - config.lr_min) * (1 + math.cos(math.pi * min(1.0, t)))


def _collate(items: list[tuple[torch.Tensor, str]]) -> tuple[torch.Tensor | list[torch.Tensor], list[str]]:
    """Images stacked into one tensor, or kept as a list when their sizes differ."""
    images = [x for x, _ in items]
    same = all(x.shape == images[0].shape for x in images)
    return (torch.stack(images) if same else images), [c for _, c in items]


def encode_images(model: CLIP, images: torch.Tensor | list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Image embeddings of a batch (N, 3, H, W), or of a list of (3, H, W) images of several
    sizes (one forward pass per size, embeddings returned in list order)."""
    if isinstance(images, torch.Tensor):
        return model.encode_image(images.to(device))
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(images):
        groups.setdefault(tuple(x.shape), []).append(i)
    embeddings = torch.cat([model.encode_image(torch.stack([images[i] for i in index]).to(device))
                            for index in groups.values()])
    order = torch.tensor([i for index in groups.values() for i in index], device=embeddings.device)
    return embeddings[torch.argsort(order)]


def contrastive_logits(model: CLIP, images: torch.Tensor | list[torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """`model(images, ids)` (scaled cosine similarities), also for a list of images of several
    sizes. Under autocast the towers run in the autocast type and the similarities in float32."""
    return model.similarity(encode_images(model, images, ids.device), model.encode_text(ids))


def _batches(dataset: Dataset, config: PretrainConfig):
    """Endless shuffled batches (a new permutation per epoch, drawn from a generator seeded by
    `seed`). The workers persist across epochs, so what a data set caches (the world's
    scenes) is made once per run, not once per epoch."""
    g = torch.Generator().manual_seed(config.seed * 1_000_003)
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True,
                        generator=g, num_workers=config.num_workers, collate_fn=_collate,
                        persistent_workers=config.num_workers > 0)
    while True:
        yield from loader


def pretrain_clip(
    model: CLIP,
    dataset: Dataset,
    config: PretrainConfig,
    tokenizer: Tokenizer,
    progress: bool = True,
    callback: Callable[[int, dict], None] | None = None,
) -> PretrainResult:
    """Train all parameters of `model` contrastively on (image, caption) items of `dataset`.

    The model is left in eval mode on `config.device`. `callback(step, entry)` is called at
    every log entry.
    """
    if len(dataset) < config.batch_size:
        raise ValueError(f"the data set has {len(dataset)} items, fewer than one batch of {config.batch_size}")
    with torch_threads(config.threads):
        return _pretrain(model, dataset, config, tokenizer, progress, callback)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch.set_num_threads(n) for a block (None or 0: unchanged); the old count is restored after."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _pretrain(model, dataset, config, tokenizer, progress, callback) -> PretrainResult:
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    optimize_for_cpu(model).to(device).train()  # the CPU speed paths (a no-op on other devices)
    model.requires_grad_(True)
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.98), eps=1e-6)
    context = model.config.text.context_length
    amp_dtype = autocast_dtype(config.amp, device)
    bar = None
    if progress:
        from ..io.progress import progress_bar

        bar = progress_bar(total=config.steps, desc="CLIP pretraining", unit="step", leave=False)
    history: list[dict] = []
    window_loss, window_acc, window_n = 0.0, 0.0, 0
    start = time.perf_counter()
    batches = _batches(dataset, config)
    for step in range(config.steps):
        images, captions = next(batches)
        if isinstance(images, torch.Tensor):
            images = images.to(device)
        ids = tokenizer(captions, context_length=context).to(device)
        lr = lr_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast_context(amp_dtype, device):
            logits = contrastive_logits(model, images, ids)
        loss = contrastive_loss(logits, captions if config.merge_duplicates else None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
            pred = logits.argmax(1).tolist()
            acc = sum(captions[p] == captions[i] for i, p in enumerate(pred)) / len(pred)
        window_loss += float(loss.detach())
        window_acc += acc
        window_n += 1
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            entry = {"step": step + 1, "loss": window_loss / window_n, "accuracy": window_acc / window_n,
                     "lr": lr, "logit_scale": float(model.logit_scale.detach().exp())}
            history.append(entry)
            if callback is not None:
                callback(step + 1, entry)
            if bar is not None:
                bar.set_postfix(loss=f"{entry['loss']:.3f}", acc=f"{entry['accuracy']:.2f}")
            window_loss, window_acc, window_n = 0.0, 0.0, 0
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    model.eval()
    last = history[-1]
    return PretrainResult(config.steps, time.perf_counter() - start, last["loss"], last["accuracy"], history)


@torch.no_grad()
def zero_shot_predictions(model: CLIP, tokenizer: Tokenizer, images: torch.Tensor, prompts: list[str],
                          batch_size: int = 256) -> torch.Tensor:
    """(N,) index of the prompt (one per class) each image is most similar to, by cosine similarity."""
    model.eval()
    device = next(model.parameters()).device
    text = model.encode_text(tokenizer(prompts, context_length=model.config.text.context_length).to(device))
    text = text / text.norm(dim=-1, keepdim=True)
    out = []
    for i in range(0, len(images), batch_size):
        img = model.encode_image(images[i:i + batch_size].to(device))
        out.append((img / img.norm(dim=-1, keepdim=True) @ text.t()).argmax(1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def zero_shot_accuracy(model: CLIP, tokenizer: Tokenizer, images: torch.Tensor, labels: list[int],
                       prompts: list[str], batch_size: int = 256) -> float:
    """Top-1 accuracy of classifying `images` by cosine similarity to the `prompts` (one per class)."""
    pred = zero_shot_predictions(model, tokenizer, images, prompts, batch_size)
    return int((pred == torch.tensor(labels[:len(pred)])).sum()) / max(1, len(images))
