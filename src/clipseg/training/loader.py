"""Batches for the trainer: the sampler's index lists through a DataLoader, epoch by epoch."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import DataLoader, Dataset

from ..datasets.sample import collate
from .sampler import ShardedBatchSampler


def iterate_batches(
    dataset: Dataset, sampler: ShardedBatchSampler, start_iteration: int, num_workers: int = 0, pin_memory: bool = False
) -> Iterator[dict]:
    """Collated batches (see `collate`) of this rank, from `start_iteration` on, endlessly.

    A fresh DataLoader per epoch: a data set with `set_epoch(epoch)` (per-epoch
    augmentation) gets it called before its workers start. Readers should draw their
    randomness from (seed, epoch, index), not from a global RNG, so that the samples do
    not depend on which worker loads them (the project's readers do).
    """
    for epoch, batches in sampler.epochs_from(start_iteration):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        loader = DataLoader(
            dataset, batch_sampler=batches, collate_fn=collate, num_workers=num_workers, pin_memory=pin_memory
        )
        yield from loader
