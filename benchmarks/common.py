"""What the benchmark scripts share: machine description and writing their results."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from clipseg.io.machine import cpu_model


def environment() -> dict:
    """Software and threading facts every result file records."""
    return {
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(default)"),
    }


def load() -> str:
    """The 1/5/15-minute load averages, as text."""
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def proc_status_mib(key: str) -> float | None:
    """A memory line of /proc/self/status ("VmRSS:", "VmHWM:") in MiB; None where there is none."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the peak resident set size (VmHWM) to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def write_results(out: Path, name: str, results: dict, markdown: str) -> None:
    """<out>/<name>.json and <out>/<name>.md; the markdown is also printed."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown)
    print(markdown)
