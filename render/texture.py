"""dearpygui raw textures for what a viewport shows, bucketed by size.

The only module in `render` that imports dearpygui. Facts it is built on
(DESIGN.md §6): a raw texture keeps a *pointer* to the array it was given and
re-uploads it on every frame, shown or not (~10 ms per million texels with a
software GL), with no checks (float64 shows wrong colours, a short array reads out
of bounds); creating and deleting textures per slice leaks. So a `TexturePool`
belongs to one viewport and holds the texture it draws now: sized to what the
screen shows (`render.plan_display`), rounded up to `TEXTURE_GRANULARITY` texels so a
window resize or a zoom drag reuses it instead of making one per frame, written in
place for every slice, and deleted as soon as another size replaces it (`prune`) or
the page is hidden (`release`). Where and what to draw is `render._viewport`'s job.
"""

from __future__ import annotations

from typing import Any

import dearpygui.dearpygui as dpg
import numpy as np

__all__ = ["TEXTURE_GRANULARITY", "TexturePool", "bucket", "check_texture_array"]

#: Texture sides are multiples of this: a zoom drag crosses a boundary every few
#: frames at most, and the spare texels cost at most this many rows and columns.
TEXTURE_GRANULARITY = 64
#: A texture is reused for a smaller need while it has at most this many times the
#: texels of the need's own bucket (every texel is uploaded on every frame).
_REUSE_WASTE = 1.5

Size = tuple[int, int]


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


def bucket(rows: int, columns: int, granularity: int = TEXTURE_GRANULARITY) -> Size:
    """The texture size that holds `rows` x `columns` texels: each side rounded up."""
    if rows <= 0 or columns <= 0:
        raise ValueError(f"texture size must be positive, got {columns}x{rows}")
    return (-(-rows // granularity) * granularity, -(-columns // granularity) * granularity)


class TexturePool:
    """The raw RGBA float textures of one viewport; normally one, the one on screen.

    `acquire(rows, columns)` gives a texture at least that large and its buffer;
    render into the top-left `rows` x `columns` of the buffer (dearpygui re-uploads
    it every frame, so no call is needed) and draw with ``uv_max = (columns / C,
    rows / R)``. After the drawlist stops drawing older textures, `prune` deletes
    them. Use from the UI thread only: dearpygui reads these buffers while it draws.

    `api` is the dearpygui module; tests pass a recorder instead.
    """

    def __init__(
        self,
        registry: int | str | None = None,
        *,
        api: Any = dpg,
        granularity: int = TEXTURE_GRANULARITY,
    ) -> None:
        self._api = api
        self._registry = registry
        self._granularity = granularity
        self._textures: dict[Size, int | str] = {}
        # Each texture's buffer: dearpygui reads it through a pointer, so it must live
        # as long as the texture does.
        self._buffers: dict[Size, np.ndarray] = {}
        self._current: Size | None = None

    @property
    def sizes(self) -> tuple[Size, ...]:
        """The (rows, columns) sizes that have a texture now."""
        return tuple(self._textures)

    @property
    def texels(self) -> int:
        """Texels uploaded on every frame by this pool's textures."""
        return sum(rows * columns for rows, columns in self._textures)

    @property
    def current(self) -> Size | None:
        return self._current

    def fitting(self, rows: int, columns: int) -> Size:
        """The size `acquire` would use: the current texture if it holds the need
        without too much waste, else the need's bucket."""
        wanted = bucket(rows, columns, self._granularity)
        current = self._current
        if (
            current is not None
            and current[0] >= rows
            and current[1] >= columns
            and current[0] * current[1] <= _REUSE_WASTE * wanted[0] * wanted[1]
        ):
            return current
        return wanted

    def acquire(self, rows: int, columns: int) -> tuple[int | str, np.ndarray]:
        """A texture holding at least `rows` x `columns` texels, and its buffer."""
        size = self.fitting(rows, columns)
        if size not in self._textures:
            if self._registry is None:
                self._registry = self._api.add_texture_registry(show=False)
            buffer = np.zeros((size[0], size[1], 4), dtype=np.float32)
            check_texture_array(buffer, *size)
            self._textures[size] = self._api.add_raw_texture(
                size[1],
                size[0],
                buffer,
                format=self._api.mvFormat_Float_rgba,
                parent=self._registry,
            )
            self._buffers[size] = buffer
        self._current = size
        return self._textures[size], self._buffers[size]

    def buffer(self) -> np.ndarray | None:
        """The current texture's whole buffer (None before the first `acquire`)."""
        return None if self._current is None else self._buffers[self._current]

    def draw(
        self,
        drawlist: int | str,
        shape: Size,
        pmin: tuple[float, float],
        pmax: tuple[float, float],
    ) -> int | str:
        """Draw the current texture's top-left `shape` texels into `pmin`..`pmax`."""
        if self._current is None:
            raise RuntimeError("acquire a texture before drawing it")
        size = self._current
        tag: int | str = self._api.draw_image(
            self._textures[size],
            pmin,
            pmax,
            uv_min=(0.0, 0.0),
            uv_max=(shape[1] / size[1], shape[0] / size[0]),
            parent=drawlist,
        )
        return tag

    def prune(self) -> int:
        """Delete every texture but the current one; how many were deleted.

        Call once nothing draws them any more (after the drawlist was redrawn).
        """
        stale = [size for size in self._textures if size != self._current]
        for size in stale:
            self._delete(size)
        return len(stale)

    def release(self) -> None:
        """Delete every texture (page hidden, viewport closed, shutdown); the pool can
        be used again after."""
        for size in list(self._textures):
            self._delete(size)
        self._current = None

    def _delete(self, size: Size) -> None:
        tag = self._textures.pop(size)
        if self._api.does_item_exist(tag):
            self._api.delete_item(tag)
        del self._buffers[size]
