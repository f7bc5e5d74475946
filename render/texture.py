"""dearpygui raw textures for rendered frames, and where to draw them.

The only module in `render` that imports dearpygui. Facts it is built on
(DESIGN.md §6): a raw texture keeps a *pointer* to the array it was given and
re-uploads it every frame, with no checks (float64 shows wrong colours, a
short array reads out of bounds); creating and deleting textures per slice
leaks. So `TexturePool` keeps one raw texture and one C-contiguous float32
buffer per image size, reused for every slice of that size, keeps a reference
to whatever array a texture points at, and refuses any other kind of array.

Zoom and pan never touch pixels: `image_placement` computes the `pmin`/`pmax`
and `uv_min`/`uv_max` that `draw_image` takes. It and the other geometry
helpers are pure functions, tested without a display.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dearpygui.dearpygui as dpg
import numpy as np

__all__ = [
    "Placement",
    "TexturePool",
    "check_texture_array",
    "fit_scale",
    "image_placement",
    "screen_to_image",
    "zoom_about",
]

Point = tuple[float, float]


def check_texture_array(rgba: np.ndarray, rows: int, columns: int) -> None:
    """Raise unless `rgba` is exactly what a raw RGBA float texture of this size reads.

    A real check, not `assert`: it must hold under `python -O` too, because a
    wrong array here is an out-of-bounds read in C, not a Python error.
    """
    if not isinstance(rgba, np.ndarray):
        raise TypeError(f"a texture needs a numpy array, got {type(rgba).__name__}")
    if rgba.dtype != np.float32:
        raise TypeError(f"a raw texture needs float32 pixels, got {rgba.dtype}")
    if rgba.shape != (rows, columns, 4):
        raise ValueError(
            f"a {columns}x{rows} RGBA texture needs shape {(rows, columns, 4)}, got {rgba.shape}"
        )
    if not rgba.flags.c_contiguous:
        raise ValueError("a raw texture needs a C-contiguous array")


@dataclass(frozen=True, slots=True)
class Placement:
    """Arguments for `draw_image`, plus the scale they imply.

    `pmin`/`pmax` are in drawlist coordinates (clipped to the viewport);
    `uv_min`/`uv_max` select the visible part of the texture; `scale` is
    screen pixels per image pixel, (horizontal, vertical).
    """

    pmin: Point
    pmax: Point
    uv_min: Point
    uv_max: Point
    scale: Point


def _check_sizes(
    viewport_size: Point, image_size: tuple[int, int], zoom: float, pixel_aspect: float
) -> None:
    if viewport_size[0] <= 0 or viewport_size[1] <= 0:
        raise ValueError(f"viewport size must be positive, got {viewport_size}")
    if image_size[0] <= 0 or image_size[1] <= 0:
        raise ValueError(f"image size must be positive, got {image_size}")
    if not zoom > 0:
        raise ValueError(f"zoom must be positive, got {zoom}")
    if not pixel_aspect > 0:
        raise ValueError(f"pixel aspect must be positive, got {pixel_aspect}")


def fit_scale(
    viewport_size: Point, image_size: tuple[int, int], *, pixel_aspect: float = 1.0
) -> float:
    """Screen pixels per image column at zoom 1, where the whole image just fits.

    `image_size` is (columns, rows); `pixel_aspect` is row spacing over column
    spacing, so non-square pixels are shown at their physical proportions.
    """
    _check_sizes(viewport_size, image_size, 1.0, pixel_aspect)
    columns, rows = image_size
    return min(viewport_size[0] / columns, viewport_size[1] / (rows * pixel_aspect))


def _image_rect(
    viewport_size: Point, image_size: tuple[int, int], zoom: float, pan: Point, pixel_aspect: float
) -> tuple[Point, Point]:
    scale_x = fit_scale(viewport_size, image_size, pixel_aspect=pixel_aspect) * zoom
    scale_y = scale_x * pixel_aspect
    columns, rows = image_size
    centre_x = viewport_size[0] / 2 + pan[0]
    centre_y = viewport_size[1] / 2 + pan[1]
    origin = (centre_x - columns * scale_x / 2, centre_y - rows * scale_y / 2)
    return origin, (scale_x, scale_y)


def image_placement(
    viewport_size: Point,
    image_size: tuple[int, int],
    zoom: float = 1.0,
    pan: Point = (0.0, 0.0),
    *,
    pixel_aspect: float = 1.0,
) -> Placement | None:
    """Where and which part of the texture to draw; None if none of it is visible.

    Zoom 1 fits the image in the viewport, centred; larger zooms magnify about
    the centre, and `pan` (screen pixels) moves the image centre. The drawn
    rectangle is clipped to the viewport with matching uv, so a 20x zoom
    draws one viewport-sized quad instead of one 20 times larger.
    """
    _check_sizes(viewport_size, image_size, zoom, pixel_aspect)
    (x0, y0), (scale_x, scale_y) = _image_rect(viewport_size, image_size, zoom, pan, pixel_aspect)
    width = image_size[0] * scale_x
    height = image_size[1] * scale_y
    left, top = max(x0, 0.0), max(y0, 0.0)
    right, bottom = min(x0 + width, viewport_size[0]), min(y0 + height, viewport_size[1])
    if right <= left or bottom <= top:
        return None
    return Placement(
        pmin=(left, top),
        pmax=(right, bottom),
        uv_min=((left - x0) / width, (top - y0) / height),
        uv_max=((right - x0) / width, (bottom - y0) / height),
        scale=(scale_x, scale_y),
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
    """Image coordinates (column, row), continuous, under a drawlist point.

    Pixel (c, r) covers [c, c + 1) x [r, r + 1); use `int()` of each for the
    pixel under the cursor, after checking it lies inside the image.
    """
    _check_sizes(viewport_size, image_size, zoom, pixel_aspect)
    (x0, y0), (scale_x, scale_y) = _image_rect(viewport_size, image_size, zoom, pan, pixel_aspect)
    return ((point[0] - x0) / scale_x, (point[1] - y0) / scale_y)


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
    column, row = screen_to_image(
        point, viewport_size, image_size, zoom, pan, pixel_aspect=pixel_aspect
    )
    _check_sizes(viewport_size, image_size, new_zoom, pixel_aspect)
    scale_x = fit_scale(viewport_size, image_size, pixel_aspect=pixel_aspect) * new_zoom
    scale_y = scale_x * pixel_aspect
    columns, rows = image_size
    centre_x = point[0] - (column - columns / 2) * scale_x
    centre_y = point[1] - (row - rows / 2) * scale_y
    return (centre_x - viewport_size[0] / 2, centre_y - viewport_size[1] / 2)


class TexturePool:
    """One raw RGBA float texture (and its buffer) per image size, reused forever.

    Render a frame straight into `buffer(rows, columns)` (e.g. with
    `render.render_pixels(..., out=pool.buffer(r, c))`): the texture already
    points at it and dearpygui re-uploads it every frame, so no call is needed
    at all. `show` points a texture at some other array instead, checking it
    first and keeping it alive. Use from the render thread only: dearpygui
    reads these buffers while it draws.

    `api` is the dearpygui module; tests pass a recorder instead.
    """

    def __init__(self, registry: int | str | None = None, *, api: Any = dpg) -> None:
        self._api = api
        self._registry = registry
        self._textures: dict[tuple[int, int], int | str] = {}
        self._buffers: dict[tuple[int, int], np.ndarray] = {}
        # The array each texture points at now; dropping it would leave
        # dearpygui reading freed memory.
        self._shown: dict[tuple[int, int], np.ndarray] = {}

    @property
    def sizes(self) -> tuple[tuple[int, int], ...]:
        """The (rows, columns) sizes that have a texture."""
        return tuple(self._textures)

    def _ensure(self, rows: int, columns: int) -> tuple[int, int]:
        if rows <= 0 or columns <= 0:
            raise ValueError(f"texture size must be positive, got {columns}x{rows}")
        size = (rows, columns)
        if size not in self._textures:
            if self._registry is None:
                self._registry = self._api.add_texture_registry(show=False)
            buffer = np.zeros((rows, columns, 4), dtype=np.float32)
            tag = self._api.add_raw_texture(
                columns,
                rows,
                buffer,
                format=self._api.mvFormat_Float_rgba,
                parent=self._registry,
            )
            self._textures[size] = tag
            self._buffers[size] = buffer
            self._shown[size] = buffer
        return size

    def texture(self, rows: int, columns: int) -> int | str:
        """The raw texture's tag for this size, created on first use."""
        return self._textures[self._ensure(rows, columns)]

    def buffer(self, rows: int, columns: int) -> np.ndarray:
        """The texture's own buffer, pointed at again if `show` moved it elsewhere."""
        size = self._ensure(rows, columns)
        buffer = self._buffers[size]
        if self._shown[size] is not buffer:
            self._api.set_value(self._textures[size], buffer)
            self._shown[size] = buffer
        return buffer

    def show(self, rgba: np.ndarray) -> int | str:
        """Point the texture of `rgba`'s size at `rgba` (checked) and return its tag."""
        if rgba.ndim != 3:
            raise ValueError(f"expected (rows, columns, 4), got shape {rgba.shape}")
        rows, columns = rgba.shape[:2]
        check_texture_array(rgba, rows, columns)
        size = self._ensure(rows, columns)
        if self._shown[size] is not rgba:
            self._api.set_value(self._textures[size], rgba)
            self._shown[size] = rgba
        return self._textures[size]

    def draw(
        self, drawlist: int | str, rows: int, columns: int, placement: Placement | None
    ) -> int | str | None:
        """Draw this size's texture into `drawlist` at `placement`; None if not visible."""
        if placement is None:
            return None
        tag: int | str = self._api.draw_image(
            self.texture(rows, columns),
            placement.pmin,
            placement.pmax,
            uv_min=placement.uv_min,
            uv_max=placement.uv_max,
            parent=drawlist,
        )
        return tag

    def release(self) -> None:
        """Delete every texture (at shutdown); the pool can be used again after."""
        for tag in self._textures.values():
            if self._api.does_item_exist(tag):
                self._api.delete_item(tag)
        self._textures.clear()
        self._buffers.clear()
        self._shown.clear()
