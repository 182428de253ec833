"""The machine a run happened on, as one line for logs, model cards and benchmarks."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


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
    cores = available_cpus()
    return f"{cpu_model()}, {cores} cores, torch {_torch_version()}"


def _torch_version() -> str:
    try:
        import torch
    except ImportError:
        return "none"
    return torch.__version__
