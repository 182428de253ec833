"""Progress bars: shown on a terminal only, on stderr, for every long-running command."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(iterable=None, enabled: bool | None = True, **kwargs) -> tqdm:
    """A tqdm bar on stderr. enabled=True (or None): drawn only when stderr is a terminal,
    so logs and pipes stay clean; False: never."""
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=None if enabled or enabled is None else True, **kwargs)
