"""Atomic file writing, and removal of what a killed writer left behind.

Every file the project writes as a result (masks, legends, checkpoints) goes through
`atomic_write`: the bytes go to a hidden temporary sibling, then one rename puts the
finished file in place. So a file that exists is complete. A process killed with SIGKILL
cannot remove its temporary file; the temporary's name carries this machine's id and the
writer's pid, so `remove_stale_temporaries` can later delete exactly those whose writer
on this machine is gone, and nothing else.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
from pathlib import Path
from typing import Callable

_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_TEMP = re.compile(r"^\..+\.clipseg-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.tmp$")


def temporary_path(path: Path) -> Path:
    """The hidden sibling that `atomic_write` writes `path` through."""
    return path.with_name(f".{path.name}.clipseg-{_HOST}-{os.getpid()}.tmp")


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None], mode: int | None = None) -> Path:
    """Write via `write(fileobj)` into a temporary sibling, then rename it onto `path`.

    mode: file permissions (default: an ordinary file, as open() makes it under the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete temporaries under `folder` whose writer on this machine no longer runs.

    Temporaries of other machines (a shared file system) and of live processes are kept.
    Returns how many were removed.
    """
    removed = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            m = _TEMP.match(name)
            if not m or m["host"] != _HOST or int(m["pid"]) == os.getpid() or _alive(int(m["pid"])):
                continue
            try:
                os.unlink(os.path.join(dirpath, name))
                removed += 1
            except FileNotFoundError:
                pass
    return removed
