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


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
_TYPE_WORDS = {"int": "a whole number", "float": "a number", "str": "a string", "bool": "true or false"}


def check_types(cls: type, d: dict[str, Any], where: str) -> None:
    """ValueError naming the first value of `d` whose type is not its field's (int, float, str,
    bool, optionally `| None`), e.g. `iterations` = "abc" from `--set iterations=abc`."""
    hints = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    for key, value in d.items():
        parts = [p.strip() for p in hints.get(key, "").split("|")]
        if value is None and "None" in parts:
            continue
        kinds = [p for p in parts if p in _TYPES]
        if not kinds:
            continue  # a nested or composite field: checked where it is read
        ok = any(isinstance(value, _TYPES[k]) and not (isinstance(value, bool) and k != "bool") for k in kinds)
        if not ok:
            raise ValueError(f"{where}: {key} must be {' or '.join(_TYPE_WORDS[k] for k in kinds)}"
                             f"{' or null' if 'None' in parts else ''}, got {value!r:.60}")
