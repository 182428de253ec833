"""What a user may ask of a mask for editing, checked once for every front end."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


class MaskOptionsError(ValueError):
    """An editing option is out of range (the message names the option and the value)."""


@dataclass(frozen=True)
class MaskOptions:
    """Post-processing of one probability map, in the image's own pixels, in this order:

    smooth     Gaussian blur of the probability map before the threshold: its standard deviation (px)
    fill_holes fill background areas that the mask encloses
    min_area   remove connected regions of fewer pixels than this
    grow       grow the mask by this radius (a disk, px); negative values shrink it
    invert     the complement: everything but the object
    feather    a soft edge of this width (px) across the mask's border, in the matte (alpha)
    """

    smooth: float = 0.0
    fill_holes: bool = False
    min_area: int = 0
    grow: float = 0.0
    invert: bool = False
    feather: float = 0.0

    def __post_init__(self) -> None:
        for name in ("smooth", "grow", "feather"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise MaskOptionsError(f"{name} must be a finite number of pixels, got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("smooth", "feather"):
            if getattr(self, name) < 0:
                raise MaskOptionsError(f"{name} must be 0 or more pixels, got {getattr(self, name):g}")
        if isinstance(self.min_area, bool) or not isinstance(self.min_area, int) or self.min_area < 0:
            raise MaskOptionsError(f"min_area must be a whole number of pixels, 0 or more, got {self.min_area!r}")
        for name in ("fill_holes", "invert"):
            if not isinstance(getattr(self, name), bool):
                raise MaskOptionsError(f"{name} must be true or false, got {getattr(self, name)!r}")

    def record(self) -> dict:
        """The options that differ from the defaults (what outputs record in `made_with`)."""
        default = MaskOptions()
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)}

    def check_size(self, height: int, width: int) -> None:
        """MaskOptionsError when a radius does not fit the image (larger than its longer side)."""
        side = max(height, width)
        for name, value in (("grow", abs(self.grow)), ("feather", self.feather), ("smooth", self.smooth)):
            if value > side:
                raise MaskOptionsError(f"{name} {getattr(self, name):g} px is larger than the image "
                                       f"({width}x{height})")
