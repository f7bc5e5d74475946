"""The texels one viewport shows of one frame, remade only as far as a change needs.

`ScreenImage.show` turns a cached frame, its contrast (VOI, invert) and the
viewport's `ViewTransform` into the texture the viewport draws, at screen
resolution (`render.plan_display`): the visible part, area-averaged from a pyramid
level when minified, nearest when magnified. It keeps the resampled stored values,
so each kind of change costs only its own step:

* a new slice, or a camera change that moves which pixels are visible: resample
  (about a millisecond from the right pyramid level) and apply the display LUT;
* a window/level or invert change: apply the LUT to the texels already resampled
  (the frame and its pyramid are not read again);
* a pan of an image that is wholly on screen: nothing but a new position.

A large frame whose pyramid is not built yet is drawn from a coarse level made for
it in the background when it arrived (the first image of a series, see
`model.pyramids`), else it is first box-reduced by the whole factor it is shrunk by
(`render.reduce`, one pass, ~6 ms for a mammogram instead of ~16 ms for the
pyramid), so it is on screen before its pyramid is. Overlay planes (PS3.3 C.9.2, a mask at the frame's size) are resampled like the image
but max-pooled (`render.resample_mask`: a thin graphic survives any minification)
and painted over the coloured texels in `OVERLAY_COLOUR`. PALETTE COLOR frames are
coloured first and the colours averaged (averaging palette
indices would mix unrelated colours). Plain Python (numpy): the texture is reached
through the small `TextureTarget` protocol that `render.texture.TexturePool` meets.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Protocol

import numpy as np

import render
from viewer.loader import CachedFrame, to_rgba

__all__ = ["OVERLAY_COLOUR", "ScreenImage", "TextureTarget"]

#: Overlay graphics (RGBA): a light cyan, apart from any grey and from the yellow text.
OVERLAY_COLOUR = (0.35, 0.9, 1.0, 1.0)

#: Shrunk at least this much and without a pyramid, a frame is reduced once first:
#: averaging more than ~3 stored pixels per texel along each axis costs more than that.
_QUICK_MIN_FACTOR = 3


class TextureTarget(Protocol):
    def fitting(self, rows: int, columns: int) -> tuple[int, int]: ...

    def acquire(self, rows: int, columns: int) -> tuple[int | str, np.ndarray]: ...


class ScreenImage:
    """See the module docstring. One per viewport; UI thread only."""

    def __init__(self, lut_cache: render.LUTCache | None = None) -> None:
        self.luts = lut_cache if lut_cache is not None else render.LUTCache()
        self._pixels: np.ndarray | None = None
        self._plan: render.DisplayPlan | None = None
        self._texture_size: tuple[int, int] | None = None
        self._texels: np.ndarray | None = None
        self._colour_texels = False
        self._contrast: tuple[render.VOI | None, bool] | None = None
        self._buffer: np.ndarray | None = None
        #: The overlay mask the texels were made with, and it at the texels' size.
        self._overlay: np.ndarray | None = None
        self._overlay_texels: np.ndarray | None = None
        #: A one-off reduced copy of the frame on screen while it has no pyramid:
        #: (its pixels, factor, the copy).
        self._quick: tuple[np.ndarray, int, np.ndarray] | None = None
        #: How often each step ran (tests check that a change costs only its step).
        self.resampled = 0
        self.coloured = 0

    @property
    def plan(self) -> render.DisplayPlan | None:
        """What the texture holds now (None: nothing of the image is on screen)."""
        return self._plan

    def forget(self) -> None:
        """Drop everything (the texture went away: page hidden, viewport closed)."""
        self._pixels = self._plan = self._texels = self._buffer = None
        self._quick = None
        self._overlay = self._overlay_texels = None
        self._texture_size = None
        self._contrast = None

    def show(
        self,
        frame: CachedFrame,
        info: render.ImageInfo | None,
        voi: render.VOI | None,
        *,
        invert: bool,
        transform: render.ViewTransform,
        viewport_size: tuple[float, float],
        pyramid: tuple[np.ndarray, ...],
        target: TextureTarget,
        overlay: np.ndarray | None = None,
        coarse: tuple[int, np.ndarray] | None = None,
    ) -> render.DisplayPlan | None:
        """Fill `target`'s texture for `frame` as `transform` shows it; the plan drawn.

        `overlay`: a boolean mask of the frame's size painted over the image (None:
        none, or overlays switched off). `coarse`: (factor, level), a reduced copy
        of the frame made elsewhere, used while there is no pyramid when the screen
        shrinks the frame at least that much."""
        pixels = frame.pixels
        rows, columns = pixels.shape[:2]
        palette = frame.photometric_interpretation == "PALETTE COLOR" and not frame.server_rendered
        if palette:
            pyramid = ()  # a pyramid of palette indices means nothing
        levels, factors = self._levels(pixels, pyramid, transform, palette, coarse)
        plan = render.plan_display(transform, viewport_size, (columns, rows), factors=factors)
        if plan is None:
            self._plan = None
            return None
        size = target.fitting(*plan.shape)
        same_texels = (
            pixels is self._pixels
            and size == self._texture_size
            and plan.same_texels(self._plan)
            and self._texels is not None
            and overlay is self._overlay
        )
        contrast = (voi, invert)
        if palette and contrast != self._contrast:
            same_texels = False  # the colours were averaged after the palette (and invert)
        if not same_texels:
            self._texels = self._resample(
                frame, info, voi, invert, plan, size, levels, palette, overlay
            )
            self._colour_texels = palette
            self._overlay = overlay
            self._pixels, self._texture_size = pixels, size
            self._contrast = None
        self._plan = plan
        _, buffer = target.acquire(*plan.shape)
        texels = self._texels
        assert texels is not None
        if buffer is not self._buffer or contrast != self._contrast:
            out = buffer[: texels.shape[0]]
            if self._colour_texels:
                out[...] = texels
            else:
                to_rgba(
                    dataclasses.replace(frame, pixels=texels), info, voi, invert=invert,
                    lut_cache=self.luts, out=out,
                )  # fmt: skip
            if self._overlay_texels is not None:
                out[self._overlay_texels] = OVERLAY_COLOUR
            self.coloured += 1
            self._buffer, self._contrast = buffer, contrast
        return plan

    def _resample(
        self,
        frame: CachedFrame,
        info: render.ImageInfo | None,
        voi: render.VOI | None,
        invert: bool,
        plan: render.DisplayPlan,
        size: tuple[int, int],
        levels: tuple[np.ndarray, ...],
        palette: bool,
        overlay: np.ndarray | None,
    ) -> np.ndarray:
        # Every column of the texture, and one row more than the image needs when there
        # is room, repeats the image's edge: the GPU's filter at the edge then blends
        # the image with itself, never with a previous slice's texels.
        padded = render.DisplayPlan(
            plan.level,
            plan.rows.padded(min(plan.shape[0] + 1, size[0])),
            plan.columns.padded(size[1]),
            plan.factor,
        )
        self.resampled += 1
        self._overlay_texels = None
        if overlay is not None and overlay.shape == levels[0].shape[:2]:
            self._overlay_texels = render.resample_mask(overlay, padded)
        if palette:
            colours = to_rgba(frame, info, voi, invert=invert, lut_cache=self.luts)
            return render.resample(colours, padded)
        return render.resample(levels[plan.level], padded)

    def _levels(
        self,
        pixels: np.ndarray,
        pyramid: tuple[np.ndarray, ...],
        transform: render.ViewTransform,
        palette: bool,
        coarse: tuple[int, np.ndarray] | None,
    ) -> tuple[tuple[np.ndarray, ...], tuple[int, ...]]:
        """The levels to plan with (level 0 the stored pixels) and their factors."""
        if pyramid or palette:
            self._quick = None
            return (pixels, *pyramid), render.pyramid_factors(1 + len(pyramid))
        factor = math.floor(1.0 / max(transform.scale) + 1e-9)
        if factor < _QUICK_MIN_FACTOR:
            return (pixels,), (1,)
        if coarse is not None and 1 < coarse[0] <= factor:
            self._quick = None
            return (pixels, coarse[1]), (1, coarse[0])
        quick = self._quick
        if quick is None or quick[0] is not pixels or quick[1] != factor:
            quick = (pixels, factor, render.reduce(pixels, factor))
            self._quick = quick
        return (pixels, quick[2]), (1, factor)
