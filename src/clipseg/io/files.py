"""Reading small untrusted files (manifests, vocabularies) safely: a regular file (not a FIFO,
device or folder, also behind a link), of bounded size, read with a bounded read, and JSON
parsed without recursion errors escaping. Every failure is a ValueError naming the file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

MIB = 1 << 20


def check_regular_file(path: str | Path, limit: int | None, what: str) -> int:
    """The size of `path` in bytes; ValueError unless it is a regular file of at most `limit` bytes."""
    try:
        st = os.stat(path)  # follows links: a link to /dev/zero is a device
    except OSError as e:
        raise ValueError(f"{what} '{path}' cannot be read: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
            "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file"
        raise ValueError(f"{what} '{path}' is {kind}, not a regular file")
    if limit is not None and st.st_size > limit:
        raise ValueError(f"{what} '{path}' is {st.st_size / MIB:.1f} MiB, more than the {limit / MIB:.0f} MiB allowed")
    return st.st_size


def read_regular_file(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (checked before and while reading)."""
    check_regular_file(path, limit, what)
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise ValueError(f"{what} '{path}' cannot be read: {e.strerror or e}") from None
    if len(data) > limit:
        raise ValueError(f"{what} '{path}' grew past {limit / MIB:.0f} MiB while being read")
    return data


def parse_json(data: bytes | str, what: str) -> Any:
    """JSON text -> value; ValueError (not RecursionError or UnicodeDecodeError) on bad input."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply to be JSON this program reads") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{what} is not valid JSON: {str(e)[:200]}") from None


def load_json_file(path: str | Path, limit: int, what: str) -> Any:
    """The JSON value of a regular file of at most `limit` bytes."""
    return parse_json(read_regular_file(path, limit, what), f"{what} '{path}'")
