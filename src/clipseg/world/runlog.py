"""Progress lines and stage timings of the world pipeline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..io.machine import cpu_model, machine  # noqa: F401 (re-exported)


class Timer:
    """Seconds per named stage: `with timer("clip"): ...` adds the block's wall time."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0


def log(progress: bool, message: str) -> None:
    if progress:
        print(message, flush=True)
