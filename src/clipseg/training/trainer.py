"""The training loop: AdamW on the decoder, BCE with logits, cosine LR, exact resume, DDP.

Reads top to bottom: set up ranks and device, build optimizer/scheduler, maybe resume,
then per iteration: reseed, fetch this rank's share of the global batch, compute the
conditionals and the frozen backbone features without gradient, decode, BCE, step.

Determinism: the data order is a function of (seed, iteration) (sampler.py), the text
weights of (seed, iteration) and the sample's position in the global batch
(conditioning.py), and torch's RNG (decoder dropout) is reseeded from (seed, iteration,
rank) at every iteration. So a run resumed from a checkpoint ends with the same weights as
an uninterrupted one, and - with decoder dropout 0, the only per-rank randomness - a run
on W ranks matches a one-process run with the same global batch up to float rounding.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset
from ..io.atomic import remove_stale_temporaries
from ..io.progress import progress_bar

from ..inference.precision import autocast_context
from ..io.transforms import resize_maps
from ..model.clipseg import CLIPSeg
from ..model.fast_cpu import optimize_for_cpu
from ..prompts import PromptEncoder
from ..tokenizer import Tokenizer
from . import distributed as D
from .checkpoint import (CheckpointReadError, check_compatible, checkpoint_path, load_checkpoint, load_text_cache,
                         remove_other_text_caches, save_checkpoint, text_cache_path)
from .conditioning import conditionals, mixing_draws, text_weights
from .config import TrainConfig
from .csv_log import CSVLog
from .loader import iterate_batches
from .sampler import ShardedBatchSampler, derive_seed

LOG_NAME = "train_log.csv"
EXPORT_NAME = "model.safetensors"


@dataclass
class StepInfo:
    """What `on_step` sees after each iteration."""

    iteration: int  # iterations completed so far (1-based)
    loss: float  # mean over all ranks
    lr: float  # learning rate used by this iteration


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # per iteration run by this call, mean over ranks
    start_iteration: int = 0  # > 0 when resumed
    iteration: int = 0  # iterations completed at the end
    checkpoint: Path | None = None  # the final training checkpoint (rank 0)
    exported: Path | None = None  # weights for inference (TrainConfig.export)
    log: Path | None = None  # CSV log
    seconds: float = 0.0

    @property
    def iterations_per_second(self) -> float:
        done = self.iteration - self.start_iteration
        return done / self.seconds if self.seconds > 0 else 0.0


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of TrainConfig.amp on `device` (None = full precision)."""
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if device.type != "cuda":  # auto
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def bce_loss(logits: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """BCE with logits (B, h, w) vs mask (B, 1, H, W), summed over valid pixels and divided by
    ALL pixels of the batch - so that the DDP mean over equal-sized shards is the global loss.
    Logits of another size (a decoder whose upsampling is not the patch size, e.g. HF's refined
    one on patch 8) are resized bilinearly to the mask's, as inference resizes them to the image."""
    if logits.shape[0] != mask.shape[0]:
        raise ValueError(f"logits {tuple(logits.shape)} and masks {tuple(mask.shape)} differ in batch size")
    logits = resize_maps(logits, tuple(mask.shape[-2:]))
    per_pixel = F.binary_cross_entropy_with_logits(logits.float(), mask[:, 0].float(), reduction="none")
    return (per_pixel * valid[:, 0]).sum() / per_pixel.numel()


def train(
    model: CLIPSeg,
    dataset: Dataset,
    config: TrainConfig,
    tokenizer: Tokenizer,
    progress: bool = True,
    resume: bool = False,
    on_step: Callable[[StepInfo], None] | None = None,
) -> TrainResult:
    """Train `model.decoder` on `dataset` (items: `clipseg.datasets.sample.Sample`).

    Run under torchrun for several ranks (env:// rendezvous; NCCL on CUDA, gloo on CPU);
    `config.batch_size` is the global batch. resume=True continues from the checkpoint in
    config.out_dir if there is one (CheckpointMismatchError if it belongs to another model
    config or other training settings). `on_step` is called after every iteration; an
    exception raised there stops training (nothing but the iterations since the last
    checkpoint is lost).
    """
    dist, device = D.setup(config.device)
    try:
        return _train(model, dataset, config, tokenizer, progress, resume, on_step, dist, device)
    finally:
        D.teardown(dist)


def _train(
    model: CLIPSeg,
    dataset: Dataset,
    config: TrainConfig,
    tokenizer: Tokenizer,
    progress: bool,
    resume: bool,
    on_step: Callable[[StepInfo], None] | None,
    dist: D.DistInfo,
    device: torch.device,
) -> TrainResult:
    out_dir = Path(config.out_dir)
    ckpt_path = checkpoint_path(out_dir)
    optimize_for_cpu(model).to(device).train()  # the CPU speed paths (a no-op on other devices)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.iterations, eta_min=config.lr_min)
    amp_dtype = autocast_dtype(config.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    sampler = ShardedBatchSampler(len(dataset), config.batch_size, config.seed, dist.rank, dist.world_size)

    prompts = PromptEncoder(model, tokenizer, cache_size=config.text_cache_size, truncate=True)
    start = 0
    if dist.rank == 0 and out_dir.is_dir():
        remove_stale_temporaries(out_dir)  # half-written files of a killed run (their writer is gone)
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        check_compatible(state, ckpt_path, model.config.to_dict(), config)
        sampler.check_state(state["sampler"])
        start = state["iteration"]
        cache = load_text_cache(out_dir, dist.rank, start)  # this rank's text embeddings at the checkpoint
        try:
            model.decoder.load_state_dict(state["decoder"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            prompts.load_cache_state(cache)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
            raise CheckpointReadError(f"checkpoint '{ckpt_path}' does not fit this run: {type(e).__name__}: "
                                      f"{str(e).splitlines()[0][:200] if str(e) else ''}") from None

    decoder = model.decoder
    if dist.enabled:
        decoder = DistributedDataParallel(decoder, device_ids=[device.index] if device.type == "cuda" else None)

    def autocast() -> contextlib.AbstractContextManager:
        return autocast_context(amp_dtype, device)

    rows = slice(dist.rank * sampler.local_batch, (dist.rank + 1) * sampler.local_batch)
    log = CSVLog(out_dir / LOG_NAME, start) if dist.is_main else None
    bar = progress_bar(total=config.iterations, initial=start, enabled=progress and dist.is_main, desc="train")
    result = TrainResult(start_iteration=start, iteration=start, log=log.path if log else None)
    batches = iterate_batches(dataset, sampler, start, config.workers, pin_memory=device.type == "cuda")
    t0 = time.perf_counter()

    for it in range(start, config.iterations):
        batch = next(batches)
        # reseed after fetching: starting a DataLoader iterator draws from torch's RNG, and
        # a resumed run starts one at another iteration than the uninterrupted run did
        torch.manual_seed(derive_seed(config.seed, "dropout", it, dist.rank))
        image = batch["image"].to(device, non_blocking=True)  # (b, 3, H, W)
        mask = batch["mask"].to(device, non_blocking=True)  # (b, 1, H, W)
        valid = batch["valid"].to(device, non_blocking=True)  # (b, 1, H, W)
        has_support = batch["has_support"].to(device)  # (b,)
        draws = mixing_draws(config.seed, it, config.batch_size, config.max_text_weight, rows)
        weights = text_weights(batch["phrase"], batch["has_support"], draws)  # (b,)

        with torch.no_grad():
            cond = conditionals(model, prompts, batch["phrase"], batch["support"].to(device), has_support, weights, autocast)
            with autocast():
                features = model.encode_image(image)
        with autocast():
            logits = decoder(features.activations, cond.to(features.activations[0].dtype), features.grid)
        loss = bce_loss(logits, mask, valid)

        lr = scheduler.get_last_lr()[0]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()

        loss_value = float(D.all_reduce_mean(loss.detach(), dist))
        result.losses.append(loss_value)
        result.iteration = done = it + 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}")
        if log:
            log.add(done, loss_value, lr, done % config.log_every == 0 or done == config.iterations)
        if done % config.checkpoint_every == 0 or done == config.iterations:
            # One atomic unit (checkpoint.py): every rank's text cache for `done` (embeddings
            # computed in other batches of prompts differ in the last bits, and the resumed
            # run must be exact), then the commit by rank 0, then the old caches go.
            save_checkpoint(text_cache_path(out_dir, dist.rank, done), {"iteration": done,
                                                                         "text_cache": prompts.cache_state()})
            D.barrier(dist)
            if dist.is_main:
                save_checkpoint(
                    ckpt_path,
                    {
                        "iteration": done,
                        "model_config": model.config.to_dict(),
                        "train_config": config.to_dict(),
                        "sampler": sampler.state_dict(),
                        "decoder": model.decoder.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict(),
                    },
                )
            D.barrier(dist)
            remove_other_text_caches(out_dir, dist.rank, keep=done)
        if on_step:
            on_step(StepInfo(done, loss_value, lr))

    bar.close()
    result.seconds = time.perf_counter() - t0
    if dist.is_main:
        result.checkpoint = ckpt_path if ckpt_path.exists() else None
        result.exported = _export(model, config, out_dir)
    D.barrier(dist)
    return result


def _export(model: CLIPSeg, config: TrainConfig, out_dir: Path) -> Path | None:
    """Write the trained weights in the native inference format (clipseg.weights). A decoder-only
    file names the backbone it loads with; a model whose backbone no file holds (a random one)
    is written whole, else its file could never be loaded."""
    if config.export == "none":
        return None
    from ..weights import save_clipseg

    decoder_only = config.export == "decoder" and model.identity.backbone is not None
    return save_clipseg(model, out_dir / EXPORT_NAME, decoder_only=decoder_only)
