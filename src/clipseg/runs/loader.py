"""Feeding a folder run: images decoded in DataLoader workers, batched by input shape,
outputs written off the main thread, and the job list sharded across torch.distributed ranks.

The main thread only runs the model: `ImageJobs` (in worker processes) reads and
preprocesses each image, `shape_runs` groups consecutive images of one input shape into
batches for the backbone, and a `BoundedWriter` thread pool turns each image's logits into
files (upsampling, thresholds, PNG/RLE encoding) while the next batch computes. At most
`max_pending` images wait for the writer, which bounds memory.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from ..editing import MaskOptionsError
from ..io.image_io import ImageError, frame_count, load_image


def describe_failure(error: BaseException) -> str:
    """What the run's report says about one image that failed."""
    if isinstance(error, (ImageError, MaskOptionsError)):
        return str(error)
    if isinstance(error, MemoryError):
        return "out of memory"
    return f"{type(error).__name__}: {error}"


@dataclass
class LoadedImage:
    index: int  # into the job list
    pixels: torch.Tensor | None  # (3, h, w) model input, None when reading failed
    size: tuple[int, int] = (0, 0)  # original (H, W)
    rgb: np.ndarray | None = None  # (H, W, 3) uint8, only when an output needs the image (overlay)
    error: str | None = None
    frames: int = 1  # frames (pages) of the file: only the first is segmented


class ImageJobs(torch.utils.data.Dataset):
    """Reads and preprocesses job i's image; failures come back as LoadedImage.error."""

    def __init__(self, sources: Sequence, transform: Callable, max_pixels: int | None, keep_rgb: bool):
        self.sources, self.transform, self.max_pixels, self.keep_rgb = list(sources), transform, max_pixels, keep_rgb

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int) -> LoadedImage:
        try:
            pil = load_image(self.sources[i], **({"max_pixels": self.max_pixels} if self.max_pixels else {}))
            rgb = np.asarray(pil.convert("RGB")) if self.keep_rgb else None
            return LoadedImage(i, self.transform(pil), (pil.height, pil.width), rgb, frames=frame_count(self.sources[i]))
        except Exception as e:  # anything one file may cause stays that file's failure (MemoryError too)
            return LoadedImage(i, None, error=describe_failure(e))


def _first(batch: list[LoadedImage]) -> LoadedImage:
    return batch[0]


def load_images(dataset: ImageJobs, workers: int) -> Iterator[LoadedImage]:
    """The dataset's items in order, decoded by `workers` processes (0 = in this thread)."""
    if workers == 0 or len(dataset) <= 1:
        return (dataset[i] for i in range(len(dataset)))
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=workers, collate_fn=_first,
                                         prefetch_factor=4, persistent_workers=False,
                                         worker_init_fn=functools.partial(die_with_parent, os.getpid()))
    return iter(loader)


def die_with_parent(parent_pid: int, _worker_id: int = 0) -> None:
    """In a worker process: end when the process that started it ends, also when it is killed
    with SIGKILL (Linux: the kernel's parent-death signal; elsewhere a thread watching the
    parent), so that a killed run leaves no workers behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGKILL) == 0:  # PR_SET_PDEATHSIG
            if os.getppid() != parent_pid:  # the parent died before the signal was armed
                os._exit(1)
            return
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch, name="clipseg-parent-watch", daemon=True).start()


def shape_runs(items: Iterable[LoadedImage], batch_size: int) -> Iterator[list[LoadedImage]]:
    """Consecutive readable items of one input shape, at most batch_size at a time; failed
    items come alone (pixels None) so that they are reported in order."""
    run: list[LoadedImage] = []
    for item in items:
        if item.pixels is None:
            if run:
                yield run
                run = []
            yield [item]
            continue
        if run and (len(run) == batch_size or run[0].pixels.shape != item.pixels.shape):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


class BoundedWriter:
    """A thread pool for output writing that admits at most `max_pending` tasks: submit()
    blocks while that many are unfinished. `on_done(key, error_or_None)` runs in the caller's
    thread (from submit/drain) for every finished task, in submission order."""

    def __init__(self, threads: int, max_pending: int, on_done: Callable[[object, BaseException | None], None]):
        self.pool = concurrent.futures.ThreadPoolExecutor(max(1, threads), thread_name_prefix="clipseg-write")
        self.max_pending, self.on_done = max(1, max_pending), on_done
        self.pending: list[tuple[object, concurrent.futures.Future]] = []

    def submit(self, key: object, fn: Callable[[], None]) -> None:
        while len(self.pending) >= self.max_pending:
            self._finish_one()
        self.pending.append((key, self.pool.submit(fn)))

    def _finish_one(self) -> None:
        key, fut = self.pending.pop(0)
        try:
            fut.result()
            self.on_done(key, None)
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - reported as this image's failure
            self.on_done(key, e)

    def drain(self) -> None:
        while self.pending:
            self._finish_one()

    def close(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=True, cancel_futures=cancel)


@dataclass(frozen=True)
class Shard:
    """This process's part of a run: rank `rank` of `world` takes jobs rank, rank + world, ..."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    def take(self, items: Sequence) -> list:
        return list(items[self.rank :: self.world])

    @property
    def enabled(self) -> bool:
        return self.world > 1


def shard_from_env() -> Shard:
    """RANK / WORLD_SIZE / LOCAL_RANK as torchrun sets them (one process = no sharding)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ValueError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK {rank} is not within WORLD_SIZE {world}")
    return Shard(rank, world, local)
