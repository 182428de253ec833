"""Progress lines and stage timings of the world pipeline."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager

import torch


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


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def machine() -> str:
    """'Intel Xeon ... , 2 cores, torch 2.13.0' from /proc/cpuinfo and os."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu_model()}, {cores} cores, torch {torch.__version__}"
