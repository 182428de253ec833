"""JSON objects read into config dataclasses: the one rule for keys the dataclass does not have."""

from __future__ import annotations

import dataclasses
from typing import Any


def check_fields(cls: type, d: dict[str, Any], where: str) -> None:
    """ValueError naming the keys of `d` that are not fields of dataclass `cls` (and the known
    ones), so that a misspelt setting is an error instead of being ignored."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(map(str, set(d) - names))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)[:200]}; known: {', '.join(sorted(names))}")
