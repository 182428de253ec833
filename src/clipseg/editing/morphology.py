"""The mask operations, on full-resolution (H, W) arrays, with OpenCV's exact distance
transform (Felzenszwalb-Huttenlocher, DIST_MASK_PRECISE) and connected components.

Each works on the bounding box of what it can change (plus its radius), so its cost follows
the object's size more than the image's. Pixels outside the image are neither mask nor
background: a mask that touches the image border keeps touching it when shrunk.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# distances near the radius are compared exactly (as integer squared distances) below this
_EXACT_BAND = 0.01


def bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """The bounding box of mask's True pixels grown by margin (clipped to the image); None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (slice(max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin)),
            slice(max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin)))


def distance_to(zero: np.ndarray) -> np.ndarray:
    """(h, w) float32: each pixel's Euclidean distance to the nearest True pixel of `zero`
    (0 on them); pixels outside the array do not count."""
    return cv2.distanceTransform((~zero).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _within(distance: np.ndarray, radius: float) -> np.ndarray:
    """distance <= radius, exact for distances between pixel centres (sqrt of whole numbers):
    values within a hair of the radius are decided by their squared distance."""
    out = distance <= radius - _EXACT_BAND
    near = np.abs(distance - radius) < _EXACT_BAND
    if near.any():
        out[near] = np.rint(distance[near].astype(np.float64) ** 2) <= radius * radius
    return out


def grow(mask: np.ndarray, radius: float) -> np.ndarray:
    """Grow (radius > 0) or shrink (radius < 0) a boolean mask by a disk: growing adds every
    pixel within `radius` of the mask (centre to centre); shrinking is its dual, keeping
    the pixels farther than |radius| from every background pixel."""
    mask = np.asarray(mask, dtype=bool)
    out = mask.copy()
    if radius == 0:
        return out
    source = mask if radius > 0 else ~mask  # what distances are measured to
    r = abs(radius)
    # Only pixels outside `source` within r of it change. Both boxes hold all of them together
    # with every source pixel within r of them: the smaller one is computed.
    boxes = [bounding_box(source, math.ceil(r) + 1), bounding_box(~source, math.ceil(r) + 1)]
    if None in boxes:
        return out  # no source, or nothing outside it
    box = min(boxes, key=lambda b: (b[0].stop - b[0].start) * (b[1].stop - b[1].start))
    if not source[box].any():
        return out  # no source pixel within reach of the box
    near = _within(distance_to(source[box]), r)  # the source and the pixels within r of it
    if radius > 0:
        out[box] |= near
    else:
        out[box] &= ~near
    return out


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every background area that it encloses filled (background reached from
    the image border through 4-connected background pixels stays background)."""
    mask = np.asarray(mask, dtype=bool)
    box = bounding_box(mask, 1)
    if box is None:
        return mask.copy()
    sub = mask[box]
    padded = np.zeros((sub.shape[0] + 2, sub.shape[1] + 2), np.uint8)  # a background frame joins all outside
    padded[1:-1, 1:-1] = sub
    flood = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, flood, (0, 0), 2, flags=4)
    out = mask.copy()
    out[box] = padded[1:-1, 1:-1] != 2
    return out


def remove_small_regions(mask: np.ndarray, min_area: int) -> np.ndarray:
    """The mask without its 8-connected regions of fewer than min_area pixels."""
    mask = np.asarray(mask, dtype=bool)
    box = bounding_box(mask, 0)
    if min_area <= 1 or box is None:
        return mask.copy()
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask[box].astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False  # label 0 is the background
    out = np.zeros_like(mask)
    out[box] = keep[labels]
    return out


def _kernel_radius(sigma: float) -> int:
    return math.ceil(4 * sigma)  # the Gaussian is cut at 4 standard deviations


def smooth(prob: np.ndarray, sigma: float) -> np.ndarray:
    """(H, W) float32: a Gaussian blur of standard deviation sigma (px), edges replicated."""
    prob = np.asarray(prob, dtype=np.float32)
    if sigma <= 0:
        return prob
    k = 2 * _kernel_radius(sigma) + 1
    return cv2.GaussianBlur(prob, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)


def smoothed_mask(prob: np.ndarray, sigma: float, threshold: float) -> np.ndarray:
    """`smooth(prob, sigma) >= threshold`, blurring only where it can pass: a weighted mean
    of values under the threshold stays under it, so only pixels within the kernel's reach of
    a pixel at or above it are computed (from a crop one more reach wide)."""
    prob = np.asarray(prob, dtype=np.float32)
    above = prob >= threshold
    if sigma <= 0:
        return above
    reach = _kernel_radius(sigma)
    inner = bounding_box(above, reach)
    out = np.zeros(prob.shape, bool)
    if inner is None:
        return out
    crop = bounding_box(above, 2 * reach)  # `inner` and one more reach around it
    blurred = smooth(prob[crop], sigma)  # exact on `inner`: its kernels stay inside the crop or the image
    y0, x0 = inner[0].start - crop[0].start, inner[1].start - crop[1].start
    out[inner] = blurred[y0 : y0 + inner[0].stop - inner[0].start, x0 : x0 + inner[1].stop - inner[1].start] >= threshold
    return out


def feather(mask: np.ndarray, width: float) -> np.ndarray:
    """(H, W) float32 alpha with a linear ramp of `width` px across the mask's border,
    centred on it: 1 deeper than width/2 inside, 0 farther than width/2 outside, and
    above 0.5 exactly on the mask's pixels (alpha > 0.5 gives the mask back)."""
    mask = np.asarray(mask, dtype=bool)
    alpha = mask.astype(np.float32)
    if width <= 0 or not mask.any() or mask.all():
        return alpha
    half = width / 2
    outside = bounding_box(mask, math.ceil(half) + 1)  # where the outer half of the ramp can reach
    d_out = distance_to(mask[outside])  # background pixels: >= 1 from the mask
    sub = alpha[outside]
    ramp_out = np.clip(0.5 - (d_out - 0.5) / width, 0.0, 1.0)
    np.copyto(sub, ramp_out, where=~mask[outside])
    inside = bounding_box(mask, 1)
    d_in = distance_to(~mask[inside])  # mask pixels: >= 1 from the background
    sub = alpha[inside]
    ramp_in = np.clip(0.5 + (d_in - 0.5) / width, 0.0, 1.0)
    if not (~mask[inside]).any():  # the box holds no background: the border lies outside the image
        ramp_in[:] = 1.0
    np.copyto(sub, ramp_in, where=mask[inside])
    return alpha
