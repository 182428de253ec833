"""A few counters, gauges and a latency histogram in the Prometheus text format (0.0.4)."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Callable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _labels(d: dict[str, str]) -> str:
    if not d:
        return ""
    esc = (lambda v: str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"'))
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in sorted(d.items())) + "}"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
        self.help: dict[str, str] = {}
        self.hist: dict[tuple, list[float]] = {}  # label tuple -> bucket counts + [sum, count]
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def inc(self, name: str, help: str, amount: float = 1.0, **labels: str) -> None:
        with self._lock:
            self.help.setdefault(name, help)
            self.counters[name][tuple(sorted(labels.items()))] += amount

    def declare(self, name: str, help: str, **labels: str) -> None:
        """Make a counter series visible (at 0) before it is first incremented."""
        self.inc(name, help, 0.0, **labels)

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            if labels:
                return self.counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)
            return sum(self.counters.get(name, {}).values())

    def gauge(self, name: str, help: str, fn: Callable[[], float]) -> None:
        self.gauges[name] = (help, fn)

    def observe(self, seconds: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            h = self.hist.setdefault(key, [0.0] * (len(LATENCY_BUCKETS) + 2))
            for i, b in enumerate(LATENCY_BUCKETS):
                if seconds <= b:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, series in sorted(self.counters.items()):
                lines += [f"# HELP {name} {self.help.get(name, name)}", f"# TYPE {name} counter"]
                for key, v in sorted(series.items()):
                    lines.append(f"{name}{_labels(dict(key))} {v:g}")
            name = "clipseg_request_duration_seconds"
            lines += [f"# HELP {name} Time from request to response.", f"# TYPE {name} histogram"]
            for key, h in sorted(self.hist.items()):
                d = dict(key)
                for i, b in enumerate(LATENCY_BUCKETS):
                    lines.append(f"{name}_bucket{_labels({**d, 'le': f'{b:g}'})} {h[i]:g}")
                lines.append(f"{name}_bucket{_labels({**d, 'le': '+Inf'})} {h[-1]:g}")
                lines.append(f"{name}_sum{_labels(d)} {h[-2]:.6f}")
                lines.append(f"{name}_count{_labels(d)} {h[-1]:g}")
        for name, (help, fn) in sorted(self.gauges.items()):
            lines += [f"# HELP {name} {help}", f"# TYPE {name} gauge", f"{name} {float(fn()):g}"]
        return "\n".join(lines) + "\n"
