"""Deterministic, resumable, rank-sharded batches (what a DistributedSampler does, by iteration).

Epoch e visits the data set in a permutation seeded by (seed, e), cut into
len // global_batch global batches (the remainder is dropped). Iteration i uses global
batch i % batches_per_epoch of epoch i // batches_per_epoch, and rank r of W takes the
r-th contiguous slice of global_batch // W indices. The data order is therefore a function
of (seed, iteration) alone: a resumed run and a run with another number of ranks see the
same global batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import zlib

import numpy as np
import torch


def derive_seed(seed: int, stream: str, *keys: int) -> int:
    """A well-mixed 63-bit seed for one random stream, e.g. derive_seed(seed, "dropout", iteration, rank).

    Different stream names give independent streams from the same run seed.
    """
    entropy = [int(seed), zlib.crc32(stream.encode()), *(int(k) for k in keys)]
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class ShardedBatchSampler:
    """This rank's index lists, one per iteration, from `start_iteration` on."""

    def __init__(self, size: int, global_batch: int, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True):
        if global_batch % world_size:
            raise ValueError(f"the global batch {global_batch} does not split evenly over {world_size} ranks")
        if size < global_batch:
            raise ValueError(f"the data set has {size} samples, fewer than one global batch of {global_batch}")
        self.size, self.global_batch, self.seed = size, global_batch, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.local_batch = global_batch // world_size
        self.batches_per_epoch = size // global_batch

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """(size,) the visiting order of `epoch`."""
        if not self.shuffle:
            return torch.arange(self.size)
        g = torch.Generator().manual_seed(derive_seed(self.seed, "data-order", epoch))
        return torch.randperm(self.size, generator=g)

    def epoch_batches(self, epoch: int, start: int = 0) -> list[list[int]]:
        """This rank's batches of `epoch` from batch `start` of that epoch on."""
        order = self.epoch_order(epoch)
        lo = self.rank * self.local_batch
        return [
            order[b * self.global_batch + lo : b * self.global_batch + lo + self.local_batch].tolist()
            for b in range(start, self.batches_per_epoch)
        ]

    def epochs_from(self, start_iteration: int) -> Iterator[tuple[int, list[list[int]]]]:
        """(epoch, its remaining batches) from `start_iteration` on, endlessly."""
        epoch, start = divmod(start_iteration, self.batches_per_epoch)
        while True:
            yield epoch, self.epoch_batches(epoch, start)
            epoch, start = epoch + 1, 0

    def state_dict(self) -> dict:
        return {"size": self.size, "global_batch": self.global_batch, "seed": self.seed, "shuffle": self.shuffle}

    def check_state(self, state: dict) -> None:
        """Raise if a checkpoint's sampler state describes another data order."""
        if state != self.state_dict():
            raise ValueError(f"the checkpoint was written with another data order {state}, now {self.state_dict()}")
