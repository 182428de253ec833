"""Result records of the evaluation protocols: JSON out, and the threshold shared by several parts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from .metrics import THRESHOLDS, BinaryCounts


class JsonResult:
    """Mixin of the protocol result dataclasses: `to_dict()` (with "protocol") and `to_json()`."""

    protocol: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def best_common_threshold(parts: Sequence[BinaryCounts], select: str = "miou") -> float:
    """The one threshold that maximises the mean over `parts` (folds, subsets) of metric
    `select` - "the best t per task and model" of the paper. Ties go to the lowest t."""
    curves = np.stack([p.curves()[select] for p in parts])  # (parts, 49)
    return float(THRESHOLDS[int(np.argmax(np.nanmean(curves, axis=0)))])
