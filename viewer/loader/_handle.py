"""`SeriesHandle`: one opened series as one viewport sees it.

`SeriesLoader.open_series` hands out a handle; the viewport reads frames through it
(`frame`, `rgba`, `state`, `progress`), moves its cursor (`set_cursor`), says whether
it is on screen (`set_visible`), retries what failed (`retry`) and closes it when
it shows something else (`close`). The loader's events name the handle they belong
to (`event.handle`). Handles of the same series on the same loader share one `Run`
(its frames and requests), each with its own cursor and visibility.

Every method may be called from the UI thread at any rate: they take the hub's
condition briefly and never wait for I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

import numpy as np

import render

from ._cache import CachedFrame, FrameKey
from ._decode import to_rgba
from ._layout import SeriesLayout
from ._progress import SeriesProgress, SliceState
from ._trace import TraceEntry

if TYPE_CHECKING:
    from ._loader import SeriesLoader
    from ._run import Run

__all__ = ["SeriesHandle"]


class SeriesHandle:
    """One opened series of one loader, as one viewport uses it (see the module docstring).

    `opened` resolves to the layout once it is known (or fails with why it could
    not be). `id` is unique within the app's hub; `generation` names the current
    run behind the handle in the loader's trace (a retried open starts a new run).
    """

    def __init__(
        self,
        loader: SeriesLoader,
        run: Run,
        handle_id: int,
        *,
        cursor: int | None,
        visible: bool,
    ) -> None:
        self.id = handle_id
        self.loader = loader
        self.series_uid = run.series_uid
        self.study_uid = run.study_uid
        self.opened: Future[SeriesLayout] = Future()
        #: Called with the series' first image as soon as it is decoded, before the
        #: `FirstImage` event reaches the UI thread: on a loader thread, with the hub's
        #: lock held, so it may only hand the frame on (e.g. start work on it elsewhere).
        self.on_first_image: Callable[[CachedFrame], None] | None = None
        #: The viewer calls `first_shown()` once the series' first image is on screen:
        #: until then a large first image holds the series' other reading back.
        self.hold_first = False
        self._run = run
        #: The slice on screen, once the layout is known.
        self._cursor: int | None = None
        #: Asked for before the layout was known (the open's cursor, an early scroll).
        self._pending = cursor
        #: Set while the series is read again (`SeriesLoader.refresh_series`): the image
        #: the cursor was on, and that the next `SeriesOpened` is a reload.
        self._anchor: tuple[str, int] | None = None
        self._reloaded = False
        self._visible = visible
        self._closed = False

    def __repr__(self) -> str:
        return f"SeriesHandle(id={self.id}, series_uid={self.series_uid!r})"

    def __enter__(self) -> SeriesHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- what it shows ----------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self._run.generation

    @property
    def layout(self) -> SeriesLayout | None:
        return self._run.layout

    @property
    def cursor(self) -> int | None:
        return self._cursor

    @property
    def visible(self) -> bool:
        return self._visible and not self._closed

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def failure(self) -> str | None:
        """Why the series cannot be shown, or None (see `SeriesFailed`)."""
        return self._run.failure

    def frame(self, index: int) -> CachedFrame | None:
        """Slice `index` if it is in memory (counted as a hit or a miss)."""
        run = self._run
        layout = run.layout
        if self._closed or layout is None or not 0 <= index < len(layout):
            return None
        ref = layout.slices[index]
        found = self.loader.cache.get(FrameKey(run.key, ref.sop_uid, ref.frame))
        if found is None:
            with self.loader._cond:
                if not run.closed and run.state[index] is SliceState.READY:
                    # Evicted without the loader hearing of it: fetch it again.
                    run.set_state(index, SliceState.MISSING)
                    self.loader._cond.notify_all()
        return found

    def share_pixels(self, index: int, pixels: np.ndarray) -> bool:
        """Hold slice `index` as `pixels` from now on: the same values in another array.

        A volume built from the series (MPR) copies each slice into one block; handing
        the block's slice back here lets the cache drop its own array, so the volume
        is the cached values, not a second copy. `pixels` must equal the cached frame
        (same shape and dtype; the caller copied it). False if the slice is not cached.
        """
        run = self._run
        layout = run.layout
        if self._closed or layout is None or not 0 <= index < len(layout):
            return False
        ref = layout.slices[index]
        key = FrameKey(run.key, ref.sop_uid, ref.frame)
        cache = self.loader.cache
        with self.loader._cond:
            found = cache.peek(key)
            if found is None or found.pixels is pixels:
                return False
            if found.pixels.shape != pixels.shape or found.pixels.dtype != pixels.dtype:
                raise ValueError(
                    f"slice {index} is {found.pixels.dtype} {found.pixels.shape}, "
                    f"not {pixels.dtype} {pixels.shape}"
                )
            shared = dataclasses.replace(found, pixels=pixels)
            admitted, evicted = cache.put(key, shared, index=index if run.focused else None)
            self.loader._hub.evicted_locked(evicted)
        return admitted

    def rgba(
        self,
        index: int,
        voi: render.VOI | None = None,
        *,
        invert: bool = False,
        lut_cache: render.LUTCache | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Slice `index` as display-ready RGBA (None if not in memory)."""
        found = self.frame(index)
        layout = self.layout
        if found is None or layout is None:
            return None
        info = None if found.server_rendered else layout.image_info(index)
        return to_rgba(found, info, voi, invert=invert, lut_cache=lut_cache, out=out)

    def state(self, index: int) -> SliceState:
        run = self._run
        with self.loader._cond:
            if run.layout is None or not 0 <= index < len(run.state):
                return SliceState.MISSING
            return run.state[index]

    def progress(self) -> SeriesProgress:
        with self.loader._cond:
            return self._run.progress()

    def trace(self) -> tuple[TraceEntry, ...]:
        """The loader's trace entries of this handle's series (its current run)."""
        generation = self._run.generation
        return tuple(e for e in self.loader.trace() if e.generation == generation)

    # -- what the viewport changes ----------------------------------------------------

    def set_cursor(self, index: int) -> None:
        """The slice on screen moved: re-prioritise around it (cheap; call on every scroll)."""
        with self.loader._cond:
            if self._closed:
                return
            self.loader._handle_cursor(self, index)

    def first_shown(self) -> None:
        """The series' first image is on screen (see `hold_first`): the reading it held
        back goes on. Cheap, and any number of calls."""
        run = self._run
        if run.first_hold_until:
            with self.loader._cond:
                run.first_hold_until = 0.0
                self.loader._cond.notify_all()

    def set_visible(self, visible: bool) -> None:
        """Whether the viewport is on screen: a hidden handle gets no new prefetch, and
        its frames are the first the shared budget gives up."""
        with self.loader._cond:
            if self._closed or visible == self._visible:
                return
            self._visible = visible
            self.loader._visibility_changed(self._run)

    def retry(self, index: int | None = None) -> None:
        """Try again: slice `index` after "failed — retry", every failed slice (None),
        or the whole open when the series itself failed (`failure`)."""
        with self.loader._cond:
            if not self._closed:
                self.loader._retry_slices(self, index)

    def set_window(self, window: tuple[float, float] | None) -> bool:
        """Tell the loader the window (centre, width); True if the server renders it.

        Only ``https`` rendering sends it to the server (as the `window` parameter):
        frames rendered with the old window are dropped and fetched again, nearest
        first. Other protocols apply the window locally and ignore this.
        """
        with self.loader._cond:
            return not self._closed and self.loader._server_window(self._run, window)

    def close(self) -> None:
        """The viewport shows something else: stop this handle's work (its series' too,
        unless another handle shows it). Its frames stay cached, first to be evicted."""
        with self.loader._cond:
            if self._closed:
                return
            self._closed = True
            self.loader._close_handle(self)
        self.opened.cancel()
