"""Names of a package imported on first use (PEP 562), so that importing the package (the
command line's start, the torch-free ONNX runtime) loads only what is used."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_getattr(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `names[name]` (a submodule of `package`) on first use."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{names[name]}", package), name)
        setattr(importlib.import_module(package), name, value)
        return value

    return __getattr__
