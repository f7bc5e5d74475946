"""Where an image lies on screen: one 3x3 matrix, and what to draw at screen resolution.

`ViewTransform` maps image coordinates (column, row; pixel (c, r) covers
[c, c + 1) x [r, r + 1)) to drawlist coordinates (x, y) with one affine matrix, as
immvision keeps one zoom-pan matrix per image. Fit, zoom about a point and pan are
compositions of it; the value under the cursor, overlays and measurements go through
`to_image` / `to_screen`, so they stay in image coordinates whatever is drawn.

`plan_display` decides what a viewport's texture holds (DESIGN.md §6: a raw texture
costs its texel count on every frame, so it must not be larger than what the screen
shows). Per image axis:

* minified (fewer screen pixels than image pixels): one texel per screen pixel, each
  the *area average* of the stored pixels it covers, taken from the pyramid level
  (`render.build_pyramid`) that leaves 1-2 level pixels per texel; every stored pixel
  falls in exactly one texel's box, so a one-pixel line is dimmed, never dropped;
* slightly magnified (up to `NATIVE_MAX_SCALE`): the visible stored pixels as they
  are, stretched by the GPU (a 512x512 CT in a larger viewport keeps its own size);
* magnified further: one texel per screen pixel, the *nearest* stored pixel, so
  pixels stay crisp squares of their true value (the GPU's filter is bilinear).

Only axis-aligned transforms (no rotation; flips later) are planned here. Pure
functions on numbers: tested without a display.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "NATIVE_MAX_SCALE",
    "AxisSampling",
    "DisplayPlan",
    "Placement",
    "ViewTransform",
    "choose_level",
    "fit_scale",
    "image_placement",
    "plan_display",
    "pyramid_factors",
    "screen_to_image",
    "zoom_about",
]

Point = tuple[float, float]
Sampling = Literal["area", "nearest", "native"]

#: Up to this magnification the stored pixels are drawn as they are (the GPU stretches
#: them): at most 1.5 screen pixels per image pixel, a bilinear stretch still looks
#: like the image, and the texture stays at the image's own size.
NATIVE_MAX_SCALE = 1.5


def _check_sizes(viewport_size: Point, image_size: tuple[int, int], pixel_aspect: float) -> None:
    if not (viewport_size[0] > 0 and viewport_size[1] > 0):
        raise ValueError(f"viewport size must be positive, got {viewport_size}")
    if image_size[0] <= 0 or image_size[1] <= 0:
        raise ValueError(f"image size must be positive, got {image_size}")
    if not pixel_aspect > 0:
        raise ValueError(f"pixel aspect must be positive, got {pixel_aspect}")


@dataclass(frozen=True, slots=True)
class ViewTransform:
    """Image (column, row) -> drawlist (x, y): ``[[a, b, c], [d, e, f], [0, 0, 1]]``.

    Immutable: every operation returns a new transform. `scale` is screen pixels per
    image pixel along the image's columns and rows.
    """

    a: float = 1.0
    b: float = 0.0
    c: float = 0.0
    d: float = 0.0
    e: float = 1.0
    f: float = 0.0

    # -- construction -----------------------------------------------------------------

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> ViewTransform:
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (3, 3) or not np.allclose(m[2], (0.0, 0.0, 1.0)):
            raise ValueError("a view transform is an affine 3x3 matrix")
        return cls(*(float(v) for v in m[:2].reshape(-1)))

    @classmethod
    def scaling(cls, sx: float, sy: float) -> ViewTransform:
        return cls(a=sx, e=sy)

    @classmethod
    def translation(cls, dx: float, dy: float) -> ViewTransform:
        return cls(c=dx, f=dy)

    @classmethod
    def fit(
        cls, viewport_size: Point, image_size: tuple[int, int], *, pixel_aspect: float = 1.0
    ) -> ViewTransform:
        """The whole image centred in the viewport, as large as fits.

        `image_size` is (columns, rows); `pixel_aspect` is row spacing over column
        spacing, so non-square pixels are shown at their physical proportions.
        """
        return cls.camera(viewport_size, image_size, pixel_aspect=pixel_aspect)

    @classmethod
    def camera(
        cls,
        viewport_size: Point,
        image_size: tuple[int, int],
        zoom: float = 1.0,
        pan: Point = (0.0, 0.0),
        *,
        pixel_aspect: float = 1.0,
    ) -> ViewTransform:
        """Fitted, then magnified `zoom` times about the viewport's centre, then moved
        by `pan` screen pixels (what the viewer's camera stores)."""
        _check_sizes(viewport_size, image_size, pixel_aspect)
        if not zoom > 0:
            raise ValueError(f"zoom must be positive, got {zoom}")
        sx = fit_scale(viewport_size, image_size, pixel_aspect=pixel_aspect) * zoom
        sy = sx * pixel_aspect
        columns, rows = image_size
        x0 = viewport_size[0] / 2 + pan[0] - columns * sx / 2
        y0 = viewport_size[1] / 2 + pan[1] - rows * sy / 2
        return cls(a=sx, c=x0, e=sy, f=y0)

    # -- algebra ----------------------------------------------------------------------

    @property
    def matrix(self) -> np.ndarray:
        return np.array(
            [[self.a, self.b, self.c], [self.d, self.e, self.f], [0.0, 0.0, 1.0]],
            dtype=np.float64,
        )

    def then(self, other: ViewTransform) -> ViewTransform:
        """This transform followed by `other` (``other.matrix @ self.matrix``)."""
        return ViewTransform(
            a=other.a * self.a + other.b * self.d,
            b=other.a * self.b + other.b * self.e,
            c=other.a * self.c + other.b * self.f + other.c,
            d=other.d * self.a + other.e * self.d,
            e=other.d * self.b + other.e * self.e,
            f=other.d * self.c + other.e * self.f + other.f,
        )

    def inverse(self) -> ViewTransform:
        det = self.a * self.e - self.b * self.d
        if det == 0 or not math.isfinite(det):
            raise ValueError("this view transform cannot be inverted")
        a, b, d, e = self.e / det, -self.b / det, -self.d / det, self.a / det
        return ViewTransform(
            a=a, b=b, c=-(a * self.c + b * self.f), d=d, e=e, f=-(d * self.c + e * self.f)
        )

    def to_screen(self, point: Point) -> Point:
        x, y = point
        return (self.a * x + self.b * y + self.c, self.d * x + self.e * y + self.f)

    def to_image(self, point: Point) -> Point:
        """Image coordinates (continuous) under a drawlist point: ``int()`` of each is
        the pixel, once checked to lie inside the image."""
        return self.inverse().to_screen(point)

    def zoomed(self, factor: float, about: Point) -> ViewTransform:
        """Magnified `factor` times about the screen point `about` (which stays put)."""
        if not factor > 0:
            raise ValueError(f"zoom factor must be positive, got {factor}")
        x, y = about
        return self.then(ViewTransform(a=factor, c=x * (1 - factor), e=factor, f=y * (1 - factor)))

    def panned(self, dx: float, dy: float) -> ViewTransform:
        return self.then(ViewTransform.translation(dx, dy))

    @property
    def scale(self) -> Point:
        """Screen pixels per image pixel along a row (x) and along a column (y)."""
        return (math.hypot(self.a, self.d), math.hypot(self.b, self.e))

    @property
    def axis_aligned(self) -> bool:
        return self.b == 0 and self.d == 0 and self.a > 0 and self.e > 0

    def image_rect(self, image_size: tuple[int, int]) -> tuple[Point, Point]:
        """The screen rectangle (min, max) the image covers (axis-aligned transforms)."""
        x0, y0 = self.to_screen((0.0, 0.0))
        x1, y1 = self.to_screen((float(image_size[0]), float(image_size[1])))
        return (min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1))


# -- the viewer's camera as functions (zoom relative to fit, pan in screen pixels) ----


@dataclass(frozen=True, slots=True)
class Placement:
    """Arguments for `draw_image`, plus the scale they imply.

    `pmin`/`pmax` are in drawlist coordinates (clipped to the viewport);
    `uv_min`/`uv_max` select the visible part of an image-sized texture; `scale` is
    screen pixels per image pixel, (horizontal, vertical).
    """

    pmin: Point
    pmax: Point
    uv_min: Point
    uv_max: Point
    scale: Point


def fit_scale(
    viewport_size: Point, image_size: tuple[int, int], *, pixel_aspect: float = 1.0
) -> float:
    """Screen pixels per image column at zoom 1, where the whole image just fits."""
    _check_sizes(viewport_size, image_size, pixel_aspect)
    columns, rows = image_size
    return min(viewport_size[0] / columns, viewport_size[1] / (rows * pixel_aspect))


def image_placement(
    viewport_size: Point,
    image_size: tuple[int, int],
    zoom: float = 1.0,
    pan: Point = (0.0, 0.0),
    *,
    pixel_aspect: float = 1.0,
) -> Placement | None:
    """Where the image lies in the viewport, clipped; None if none of it is visible."""
    transform = ViewTransform.camera(
        viewport_size, image_size, zoom, pan, pixel_aspect=pixel_aspect
    )
    (x0, y0), (x1, y1) = transform.image_rect(image_size)
    width, height = x1 - x0, y1 - y0
    left, top = max(x0, 0.0), max(y0, 0.0)
    right, bottom = min(x1, viewport_size[0]), min(y1, viewport_size[1])
    if right <= left or bottom <= top:
        return None
    return Placement(
        pmin=(left, top),
        pmax=(right, bottom),
        uv_min=((left - x0) / width, (top - y0) / height),
        uv_max=((right - x0) / width, (bottom - y0) / height),
        scale=transform.scale,
    )


def screen_to_image(
    point: Point,
    viewport_size: Point,
    image_size: tuple[int, int],
    zoom: float = 1.0,
    pan: Point = (0.0, 0.0),
    *,
    pixel_aspect: float = 1.0,
) -> Point:
    """Image coordinates (column, row), continuous, under a drawlist point."""
    transform = ViewTransform.camera(
        viewport_size, image_size, zoom, pan, pixel_aspect=pixel_aspect
    )
    return transform.to_image(point)


def zoom_about(
    point: Point,
    viewport_size: Point,
    image_size: tuple[int, int],
    zoom: float,
    pan: Point,
    new_zoom: float,
    *,
    pixel_aspect: float = 1.0,
) -> Point:
    """The pan that keeps the image point under `point` fixed when zooming to `new_zoom`."""
    before = ViewTransform.camera(viewport_size, image_size, zoom, pan, pixel_aspect=pixel_aspect)
    after = before.zoomed(new_zoom / zoom, point)
    fitted = ViewTransform.camera(viewport_size, image_size, new_zoom, pixel_aspect=pixel_aspect)
    return (after.c - fitted.c, after.f - fitted.f)


# -- what the texture holds -----------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class AxisSampling:
    """How one image axis becomes texels: texel i is the mean of level pixels
    ``[starts[i], stops[i])`` (one pixel each for nearest and native sampling).

    `screen_start` is the drawlist coordinate of the first texel's edge and `texel`
    its size in screen pixels (1 except for native sampling).
    """

    sampling: Sampling
    starts: np.ndarray
    stops: np.ndarray
    screen_start: float
    texel: float

    @property
    def count(self) -> int:
        return len(self.starts)

    @property
    def screen_stop(self) -> float:
        return self.screen_start + self.count * self.texel

    @property
    def max_width(self) -> int:
        return int((self.stops - self.starts).max(initial=1))

    def same_texels(self, other: AxisSampling) -> bool:
        return (
            self.sampling == other.sampling
            and np.array_equal(self.starts, other.starts)
            and np.array_equal(self.stops, other.stops)
        )

    def padded(self, count: int) -> AxisSampling:
        """Extended to `count` texels by repeating the last one (a bucketed texture's
        spare texels: the GPU's bilinear filter at the edge then blends like with like)."""
        extra = count - self.count
        if extra <= 0:
            return self
        return AxisSampling(
            self.sampling,
            np.concatenate([self.starts, np.repeat(self.starts[-1:], extra)]),
            np.concatenate([self.stops, np.repeat(self.stops[-1:], extra)]),
            self.screen_start,
            self.texel,
        )


@dataclass(frozen=True, slots=True, eq=False)
class DisplayPlan:
    """What a viewport's texture holds for one image: which level (of the levels it was
    planned with; level 0 is the stored pixels), how many stored pixels one level pixel
    spans (`factor`), and how each axis samples that level. `shape` is the texels
    needed, (rows, columns)."""

    level: int
    rows: AxisSampling
    columns: AxisSampling
    factor: int = 1

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows.count, self.columns.count)

    @property
    def pmin(self) -> Point:
        return (self.columns.screen_start, self.rows.screen_start)

    @property
    def pmax(self) -> Point:
        return (self.columns.screen_stop, self.rows.screen_stop)

    def same_texels(self, other: DisplayPlan | None) -> bool:
        """True when `other` fills the texture with the same values (a pan of an image
        that is wholly visible moves the texture, it does not change it)."""
        return (
            other is not None
            and self.factor == other.factor
            and self.rows.same_texels(other.rows)
            and self.columns.same_texels(other.columns)
        )


def _visible(offset: float, scale: float, length: int, viewport: float) -> tuple[float, float]:
    return max(0.0, offset), min(viewport, offset + length * scale)


def _screen_axis(
    offset: float, scale: float, length: int, viewport: float, factor: int, sampling: Sampling
) -> AxisSampling | None:
    """One texel per screen pixel of the visible span: area boxes or nearest pixels."""
    lo, hi = _visible(offset, scale, length, viewport)
    first, last = math.floor(lo), math.ceil(hi)
    if last <= first:
        return None
    pixels = np.arange(first, last + 1, dtype=np.float64)
    level_length = -(-length // factor)
    if sampling == "nearest":
        centres = (pixels[:-1] + 0.5 - offset) / scale
        starts = np.clip(np.floor(centres), 0, length - 1).astype(np.int64)
        stops = starts + 1
    else:
        # Box edges in level pixels, rounded to whole pixels: neighbouring boxes share
        # an edge, so every pixel is in exactly one box (none skipped, none counted
        # twice) except at the image's border, where a box is at least one pixel.
        edges = np.rint((pixels - offset) / (scale * factor)).astype(np.int64)
        starts = np.clip(edges[:-1], 0, level_length - 1)
        stops = np.clip(np.maximum(edges[1:], starts + 1), 1, level_length)
    return AxisSampling(sampling, starts, stops, float(first), 1.0)


def _native_axis(offset: float, scale: float, length: int, viewport: float) -> AxisSampling | None:
    """The visible stored pixels themselves, drawn `scale` screen pixels wide each."""
    lo, hi = _visible(offset, scale, length, viewport)
    if hi <= lo:
        return None
    first = max(0, math.floor((lo - offset) / scale))
    last = min(length, math.ceil((hi - offset) / scale))
    if last <= first:
        return None
    starts = np.arange(first, last, dtype=np.int64)
    return AxisSampling("native", starts, starts + 1, offset + first * scale, scale)


def _sampling_of(scale: float) -> Sampling:
    if scale <= 1.0:
        return "area"
    return "native" if scale <= NATIVE_MAX_SCALE else "nearest"


def choose_level(transform: ViewTransform, factors: Sequence[int]) -> int:
    """The coarsest level (index into `factors`, stored pixels per level pixel, level 0
    the stored pixels themselves) that still has at least one level pixel per screen
    pixel along both axes."""
    sx, sy = transform.scale
    limit = 1.0 / max(sx, sy) + 1e-9  # the axis shrunk least decides
    best = 0
    for index, factor in enumerate(factors):
        if factor <= limit and factor > factors[best]:
            best = index
    return best


def pyramid_factors(levels: int) -> tuple[int, ...]:
    """Stored pixels per level pixel of a pyramid's levels (`render.build_pyramid`)."""
    return tuple(2**level for level in range(max(1, levels)))


def plan_display(
    transform: ViewTransform,
    viewport_size: Point,
    image_size: tuple[int, int],
    *,
    levels: int = 1,
    factors: Sequence[int] | None = None,
) -> DisplayPlan | None:
    """The texels to render for `image_size` (columns, rows) under `transform` in a
    viewport; None when none of the image is on screen.

    The levels to read from are a pyramid's (`levels` of them, level 0 the stored
    pixels) or, with `factors`, any set of box-reduced copies (stored pixels per level
    pixel, `factors[0] == 1`).
    """
    if not transform.axis_aligned:
        raise ValueError("only axis-aligned view transforms can be planned (no rotation)")
    _check_sizes(viewport_size, image_size, 1.0)
    factors = tuple(factors) if factors is not None else pyramid_factors(levels)
    if not factors or factors[0] != 1:
        raise ValueError(f"level 0 must be the stored pixels (factor 1), got {factors}")
    sx, sy = transform.scale
    level = choose_level(transform, factors)
    factor = factors[level]
    axes: list[AxisSampling | None] = []
    for offset, scale, length, viewport in (
        (transform.f, sy, image_size[1], viewport_size[1]),
        (transform.c, sx, image_size[0], viewport_size[0]),
    ):
        sampling = _sampling_of(scale)
        if sampling == "native":
            axes.append(_native_axis(offset, scale, length, viewport))
        else:
            axis_factor = factor if sampling == "area" else 1
            axes.append(_screen_axis(offset, scale, length, viewport, axis_factor, sampling))
    rows, columns = axes
    if rows is None or columns is None:
        return None
    if level and not (rows.sampling == "area" and columns.sampling == "area"):
        # A level serves only minified axes; with one axis magnified, both read level 0.
        return plan_display(transform, viewport_size, image_size, factors=(1,))
    return DisplayPlan(level, rows, columns, factor)
