"""Edge-aware refinement: a coarse probability map, upsampled, made to follow the image's edges.

A colour-guided filter (He, Sun & Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013) in
its fast form (He & Sun, "Fast Guided Filter", 2015): in every window the map is modelled as
a linear function of the image's colour, q = a . I + b, fitted at a reduced resolution and
applied at full resolution, so an edge of the mask lands on an edge of the image. Where the
image is flat in a window, a = 0 and q is the map's local mean (a constant map stays
constant). Torch ops only: it runs on the device of the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..constants import PRESENCE_MIN_FRACTION
from ..editing.mask import present_by_area


@dataclass(frozen=True)
class RefineConfig:
    """radius: window radius in image pixels (None: one patch of the model's grid at this
    image's scale, the width of the coarse map's uncertain band); eps: regularisation of the
    fit (colours in [0, 1]; larger follows only stronger edges); work_side: the longer side of
    the grid the coefficients are fitted on; band: how far from the coarse mask's border the
    map is refined, in window radii (it fades in over that width)."""

    radius: float | None = None
    eps: float = 1e-3
    work_side: int = 256
    band: float = 0.5  # the refined band's half-width, in window radii

    def __post_init__(self) -> None:
        if self.radius is not None and not (math.isfinite(self.radius) and self.radius > 0):
            raise ValueError(f"refine radius must be a positive number of pixels, got {self.radius}")
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"refine eps must be positive, got {self.eps}")
        if self.work_side < 16:
            raise ValueError(f"refine work_side must be at least 16, got {self.work_side}")


def _window_sums(t: torch.Tensor, r: int) -> torch.Tensor:
    """(..., n) -> sums over [i - r, i + r] along the last dim, clipped at both ends."""
    n = t.shape[-1]
    c = torch.nn.functional.pad(torch.cumsum(t, -1), (1, 0))  # c[..., i] = sum of t[..., :i]
    m, k = min(n, r + 1), min(r, n)
    hi = torch.cat([c[..., m:], c[..., -1:].expand(*c.shape[:-1], m - 1)], -1)  # c[min(n, i + r + 1)]
    lo = torch.cat([c[..., :1].expand(*c.shape[:-1], k), c[..., : n - k]], -1)  # c[max(0, i - r)]
    return hi - lo


def box_mean(x: torch.Tensor, r: int) -> torch.Tensor:
    """(C, h, w) -> the mean over each (2r+1)^2 window, clipped at the borders (cumulative sums
    in float64: a large window's sums lose float32 precision)."""
    x64 = x.double()
    sums = _window_sums(_window_sums(x64, r).transpose(1, 2).contiguous(), r).transpose(1, 2)
    h, w = x.shape[1:]
    ones_h = _window_sums(torch.ones(h, dtype=torch.float64, device=x.device), r)
    ones_w = _window_sums(torch.ones(w, dtype=torch.float64, device=x.device), r)
    return (sums / (ones_h[:, None] * ones_w[None, :])).to(x.dtype)


def _inverse3(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) symmetric positive definite -> inverses, by cofactors (one elementwise pass,
    much faster than a batched LAPACK call for many small matrices)."""
    a, b, c = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    d, e, f = m[..., 1, 1], m[..., 1, 2], m[..., 2, 2]
    A, B, C = d * f - e * e, c * e - b * f, b * e - c * d
    D, E, F_ = a * f - c * c, b * c - a * e, a * d - b * b
    det = a * A + b * B + c * C
    inv = torch.stack([torch.stack([A, B, C], -1), torch.stack([B, D, E], -1), torch.stack([C, E, F_], -1)], -2)
    return inv / det[..., None, None]


def _dilate(mask: torch.Tensor, r: int) -> torch.Tensor:
    """(h, w) bool -> True within a (2r+1)^2 window of a True pixel."""
    return box_mean(mask[None].float(), r)[0] > 0


class EdgeRefiner:
    """The guided filter of one image: what depends only on the image (its colours' window
    statistics on the working grid) is computed once; each map then costs a few box filters
    on that grid and a full-resolution pass over the blocks near the mask's border only.

        refiner = EdgeRefiner(rgb, grid=(22, 22))     # rgb: (H, W, 3) uint8
        refined = refiner(prob, threshold)            # prob: (H, W) tensor in [0, 1]

    The refined map is the guided filter's output within one window radius of the coarse
    mask's border (blended in over that radius) and the map itself elsewhere: refinement moves
    edges, it does not redraw the inside or the outside of a mask.
    """

    BLOCK_PIXELS = 256  # image pixels per side of a full-resolution block (at least 8 grid pixels)

    def __init__(self, rgb: np.ndarray, grid: tuple[int, int], config: RefineConfig | None = None,
                 device: torch.device | str = "cpu"):
        import cv2

        self.config = config or RefineConfig()
        rgb = np.ascontiguousarray(rgb)
        if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"the guide must be an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
        H, W = self.size = rgb.shape[:2]
        self.s = max(1, math.ceil(max(H, W) / self.config.work_side))  # an integer factor: blocks align
        self.work = (math.ceil(H / self.s), math.ceil(W / self.s))
        radius = self.config.radius or max(H, W) / max(grid)  # one patch of the model's grid
        self.r = max(1, round(radius / self.s))
        self.band = max(1, round(self.r * self.config.band))  # grid pixels from the coarse border refined
        self.guide = torch.from_numpy(rgb.copy()).to(device).permute(2, 0, 1)  # (3, H, W) uint8: 3 bytes a pixel
        low = cv2.resize(rgb, (self.work[1], self.work[0]), interpolation=cv2.INTER_AREA)
        I = torch.from_numpy(low).to(device).permute(2, 0, 1).float() / 255  # (3, h, w)
        self.I = I
        self.mean_I = box_mean(I, self.r)
        pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
        second = box_mean(torch.stack([I[i] * I[j] for i, j in pairs]), self.r)
        cov = torch.empty((*self.work, 3, 3), device=I.device)
        for k, (i, j) in enumerate(pairs):
            v = second[k] - self.mean_I[i] * self.mean_I[j]
            cov[..., i, j] = v
            cov[..., j, i] = v
        cov += self.config.eps * torch.eye(3, device=I.device)
        self.inv = _inverse3(cov)  # (h, w, 3, 3): each window's colour covariance, regularised, inverted

    def _down(self, prob: torch.Tensor) -> torch.Tensor:
        """(H, W) -> (1, h, w): the mean of each s x s block (partial blocks: of their pixels)."""
        if self.s == 1:
            return prob[None].float()
        x = prob[None, None].float()
        return F.avg_pool2d(x, self.s, stride=self.s, ceil_mode=True)[0]

    def __call__(self, prob: torch.Tensor, threshold: float, min_fraction: float = PRESENCE_MIN_FRACTION) -> torch.Tensor:
        """The refined (H, W) map in [0, 1]. An answer that is "not present" before (under
        min_fraction of the pixels at or above the threshold) is returned as it is."""
        if tuple(prob.shape) != self.size:
            raise ValueError(f"map {tuple(prob.shape)} and guide {self.size} differ in size")
        if not present_by_area(int(torch.count_nonzero(prob >= threshold)) / prob.numel(), min_fraction):
            return prob
        p = self._down(prob)  # (1, h, w)
        above = p[0] >= threshold
        rb = self.band
        band = _dilate(above, rb) & _dilate(~above, rb)  # near the coarse border
        if not bool(band.any()):
            return prob
        mean_p = box_mean(p, self.r)[0]
        cov_Ip = box_mean(self.I * p, self.r) - self.mean_I * mean_p  # (3, h, w)
        a = torch.einsum("hwij,jhw->ihw", self.inv, cov_Ip)  # (3, h, w)
        b = mean_p - (a * self.mean_I).sum(0)
        weight = box_mean(band[None].float(), rb)[0]  # 0..1, fading out over the band's width
        coeffs = torch.cat([box_mean(torch.cat([a, b[None]]), self.r), weight[None]])  # (5, h, w)
        return self._apply(prob, coeffs, _dilate(weight > 0, 1))

    def _apply(self, prob: torch.Tensor, coeffs: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """prob + w (a . I + b - prob) at full resolution, block by block where w > 0."""
        out = prob.clone()
        H, W = self.size
        h, w = self.work
        s = self.s
        B = max(8, self.BLOCK_PIXELS // s)
        for y0 in range(0, h, B):
            for x0 in range(0, w, B):
                y1, x1 = min(h, y0 + B), min(w, x0 + B)
                if not bool(active[y0:y1, x0:x1].any()):
                    continue
                cy0, cx0 = max(0, y0 - 1), max(0, x0 - 1)  # one grid pixel of margin: bilinear needs it
                crop = coeffs[:, cy0 : min(h, y1 + 1), cx0 : min(w, x1 + 1)]
                up = F.interpolate(crop[None], scale_factor=s, mode="bilinear", align_corners=False,
                                   recompute_scale_factor=False)[0] if s > 1 else crop
                Y0, X0, Y1, X1 = y0 * s, x0 * s, min(H, y1 * s), min(W, x1 * s)
                oy, ox = Y0 - cy0 * s, X0 - cx0 * s
                up = up[:, oy : oy + Y1 - Y0, ox : ox + X1 - X0]
                guide = self.guide[:, Y0:Y1, X0:X1].float() / 255
                q = up[3] + (up[:3] * guide).sum(0)
                region = out[Y0:Y1, X0:X1]
                region.add_(up[4] * (q.clamp_(0.0, 1.0) - region))
        return out.to(prob.dtype)
