"""COCO run-length encoding of binary masks, without pycocotools.

The COCO format (cocodataset/cocoapi, maskApi.c):

* pixels are read in column-major (Fortran) order: down the first column, then the next;
* `counts` are the lengths of alternating runs of 0s and 1s, starting with 0s (so the
  first count is 0 when the top-left pixel is foreground);
* the compressed form (`rleToString`) writes each count, minus the count two places
  before it for i > 2, as a signed LEB128-like number with 5 data bits per character
  (bit 0x20 = "more follows", bit 0x10 of the last group = sign), offset by 48 so that
  every character is printable ASCII in '0'..'o'.

    rle = encode(mask)                 # {"size": [h, w], "counts": "..."} (compressed)
    assert (decode(rle) == mask).all()
"""

from __future__ import annotations

import numpy as np


def mask_to_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO counts of an HxW boolean mask (column-major, zeros first)."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be HxW, got shape {m.shape}")
    flat = (m if m.dtype == bool else m != 0).ravel(order="F")  # one bool copy of a large mask, no int arrays
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:  # counts always start with a run of zeros
        runs = [0] + runs
    return [int(r) for r in runs]


def counts_to_string(counts: list[int]) -> str:
    """pycocotools' rleToString: delta (i > 2) + 5-bit groups, chars from 48."""
    out: list[str] = []
    for i, c in enumerate(counts):
        x = int(c)
        if i > 2:
            x -= int(counts[i - 2])
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5  # arithmetic shift, like the C `long`
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def string_to_counts(s: str | bytes) -> list[int]:
    """pycocotools' rleFrString: the inverse of counts_to_string."""
    if isinstance(s, bytes):
        s = s.decode("ascii")
    counts: list[int] = []
    p = 0
    while p < len(s):
        x = 0
        k = 0
        more = True
        while more:
            if p >= len(s):
                raise ValueError("truncated RLE string")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"invalid character {s[p]!r} in RLE string")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode(mask: np.ndarray, compressed: bool = True) -> dict:
    """COCO RLE of an HxW mask: {"size": [h, w], "counts": str (compressed) or list[int]}."""
    m = np.asarray(mask)
    counts = mask_to_counts(m)
    return {"size": [int(m.shape[0]), int(m.shape[1])], "counts": counts_to_string(counts) if compressed else counts}


def decode(rle: dict) -> np.ndarray:
    """HxW bool mask of a COCO RLE (compressed string or uncompressed list counts)."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = string_to_counts(counts)
    counts = [int(c) for c in counts]
    if any(c < 0 for c in counts) or sum(counts) != h * w:
        raise ValueError(f"RLE counts sum to {sum(counts)}, expected {h}*{w} = {h * w}")
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((h, w), order="F")


def area(rle: dict) -> int:
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = string_to_counts(counts)
    return int(sum(counts[1::2]))


def bbox(mask: np.ndarray) -> list[int]:
    """COCO bbox [x, y, width, height] of a mask ([0, 0, 0, 0] when empty)."""
    m = np.asarray(mask)
    m = m if m.dtype == bool else m != 0
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return [0, 0, 0, 0]
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


__all__ = ["encode", "decode", "area", "bbox", "mask_to_counts", "counts_to_string", "string_to_counts"]
