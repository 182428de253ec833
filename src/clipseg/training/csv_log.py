"""The training log: one CSV row per `log_every` iterations (iteration, loss, lr, it/s)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

HEADER = ("iteration", "loss", "lr", "it_per_s")


class CSVLog:
    """Appends rows to `path`. Resuming at `start_iteration` drops rows logged after it by
    the interrupted run, so the file reads as one run."""

    def __init__(self, path: Path, start_iteration: int = 0):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = self._rows_up_to(start_iteration) if start_iteration > 0 else []
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows([HEADER, *kept])
        self._losses: list[float] = []
        self._since = time.perf_counter()

    def _rows_up_to(self, iteration: int) -> list[list[str]]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))[1:]
        return [r for r in rows if r and int(r[0]) <= iteration]

    def add(self, iteration: int, loss: float, lr: float, write: bool) -> None:
        """Record one iteration; with write=True, write a row with the mean loss since the last row."""
        self._losses.append(loss)
        if not write:
            return
        now = time.perf_counter()
        rate = len(self._losses) / max(now - self._since, 1e-9)
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([iteration, f"{sum(self._losses) / len(self._losses):.6f}", f"{lr:.6e}", f"{rate:.3f}"])
        self._losses, self._since = [], now
