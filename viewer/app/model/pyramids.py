"""Pyramids of large frames, built on a background thread and kept while the frame is.

A viewport that shows a 3328x4096 mammogram 700 pixels high averages its 832x1024
pyramid level (~1 ms) instead of its 13.6 million stored pixels (~20 ms); building
the levels takes ~20 ms per frame, so it happens off the UI thread, for the frames
the viewports ask for (the one on screen first, then its neighbours). Until a
pyramid is ready the viewport averages the stored pixels itself: right, only slower.

A frame about to be shown for the first time (a series' first image, handed over by
the loader the moment it is decoded: `prepare`) first gets one *coarse* level, the
means of 4x4 stored pixels for a mammogram (`render.reduce`, ~5 ms), built while the
UI thread still waits for its next frame; the viewport then resamples that level
(`coarse`, which waits the few milliseconds it may still need) instead of reducing
the stored pixels itself, and the full pyramid follows.

Entries are keyed by the frame's pixel array and dropped when that array is freed
(the loader's cache evicted the frame and no viewport shows it), and the whole is
bounded by a byte budget, least recently used first. Plain Python: no GUI.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import render
from viewer.loader import WorkerPool

__all__ = ["DEFAULT_PYRAMID_BUDGET", "PYRAMID_MIN_FRAME_SIDE", "PYRAMID_NICENESS", "PyramidCache"]

log = logging.getLogger("viewer.app.pyramids")

#: Frames whose longer side is below this get no pyramid: at most ~3x minification in
#: any viewport, which averaging the stored pixels does in about a millisecond.
PYRAMID_MIN_FRAME_SIDE = 1024
#: Levels add a third of a frame's bytes; this bounds them all together.
DEFAULT_PYRAMID_BUDGET = 384 * 1024**2
#: Niceness of the builder thread: below the UI thread, like the loader's workers (what
#: the user sees is the frame rate, not how soon a neighbour's pyramid is ready).
PYRAMID_NICENESS = 10
#: Requests beyond this many wait nowhere: the oldest (farthest scrolled past) go.
_MAX_WANTED = 16
#: A coarse level's longer side is at most this: a viewport's height or less on most
#: screens, so it only ever needs averaging further (never magnifying).
COARSE_MAX_SIDE = 1024
#: Coarse levels kept (first images of the series on screen): each is 1/16 of a frame.
_MAX_COARSE = 8


@dataclass(slots=True)
class _Entry:
    ref: weakref.ref[np.ndarray]
    levels: tuple[np.ndarray, ...]
    nbytes: int


class PyramidCache:
    """`levels(pixels)` answers at once (possibly empty) and asks for the rest."""

    def __init__(
        self,
        *,
        min_side: int = PYRAMID_MIN_FRAME_SIDE,
        budget: int = DEFAULT_PYRAMID_BUDGET,
        niceness: int = 0,
    ) -> None:
        self.min_side = min_side
        self.budget = budget
        self._cond = threading.Condition()
        self._built: OrderedDict[int, _Entry] = OrderedDict()
        self._nbytes = 0
        #: Frames asked for and not built yet, newest last (built first).
        self._wanted: OrderedDict[int, weakref.ref[np.ndarray]] = OrderedDict()
        self._building: int | None = None
        #: Coarse levels asked for (built before any pyramid) and built: (factor, level).
        self._coarse_wanted: OrderedDict[int, weakref.ref[np.ndarray]] = OrderedDict()
        self._coarse: OrderedDict[int, tuple[weakref.ref[np.ndarray], int, np.ndarray]] = (
            OrderedDict()
        )
        self._building_coarse: int | None = None
        self._closed = False
        self._pool = WorkerPool(
            1, self._cond, self._take, self._failed, name="pyramid", niceness=niceness
        )

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def wants_pyramid(self, pixels: np.ndarray) -> bool:
        return pixels.ndim in (2, 3) and max(pixels.shape[:2]) >= self.min_side

    def levels(self, pixels: np.ndarray, *, want: bool = True) -> tuple[np.ndarray, ...]:
        """Levels 1.. of `pixels` if built (empty otherwise, and then asked for unless
        `want` is False)."""
        key = id(pixels)
        with self._cond:
            entry = self._built.get(key)
            if entry is not None and entry.ref() is pixels:
                self._built.move_to_end(key)
                return entry.levels
        if want:
            self.want(pixels)
        return ()

    def want(self, pixels: np.ndarray) -> None:
        """Build `pixels`' pyramid soon (the latest asked is built first)."""
        if not self.wants_pyramid(pixels):
            return
        key = id(pixels)
        with self._cond:
            if self._closed or key in self._built or key == self._building:
                return
            self._wanted.pop(key, None)
            self._wanted[key] = weakref.ref(pixels, self._forget_key(key))
            while len(self._wanted) > _MAX_WANTED:
                self._wanted.popitem(last=False)
            self._cond.notify_all()

    def coarse_factor(self, pixels: np.ndarray) -> int:
        """The power of two that brings `pixels`' longer side to COARSE_MAX_SIDE or less
        (1: the frame is that small already)."""
        factor, side = 1, max(pixels.shape[:2])
        while side > COARSE_MAX_SIDE * factor:
            factor *= 2
        return factor

    def prepare(self, pixels: np.ndarray) -> None:
        """`pixels` is about to be shown: its coarse level, before any pyramid (the
        pyramid itself is asked for when the frame is shown, `levels`).

        Any thread, and cheap: the loader calls it with its own lock held."""
        if not self.wants_pyramid(pixels):
            return
        if self.coarse_factor(pixels) == 1:
            self.want(pixels)
            return
        key = id(pixels)
        with self._cond:
            if self._closed:
                return
            known = self._coarse.get(key)
            if known is None or known[0]() is not pixels:
                self._coarse_wanted[key] = weakref.ref(pixels, self._forget_key(key))
                while len(self._coarse_wanted) > _MAX_WANTED:
                    self._coarse_wanted.popitem(last=False)
                self._cond.notify_all()

    def coarse(self, pixels: np.ndarray, wait: float = 0.0) -> tuple[int, np.ndarray] | None:
        """`pixels`' coarse level as (factor, level) if `prepare` asked for it and it
        is made, or being made (then this waits up to `wait` seconds for it). None:
        none; a request still queued behind other work is dropped, because the
        caller then averages the frame itself sooner than the queue would."""
        key = id(pixels)

        def ready() -> tuple[int, np.ndarray] | None:
            known = self._coarse.get(key)
            if known is not None and known[0]() is pixels:
                return known[1], known[2]
            return None

        with self._cond:
            if ready() is None:
                wanted = self._coarse_wanted.pop(key, None)
                if wanted is not None and wanted() is pixels and self._building is None:
                    # Not started only because the worker has not woken yet.
                    self._coarse_wanted[key] = wanted
                    self._cond.wait_for(lambda: self._building_coarse == key, wait)
                if self._building_coarse == key and wait > 0:
                    # Started when the frame arrived: nearly done, and cheaper than
                    # averaging the frame a second time here.
                    self._cond.wait_for(lambda: self._building_coarse != key, wait)
                self._coarse_wanted.pop(key, None)
            return ready()

    def _forget_key(self, key: int) -> Callable[[weakref.ref[np.ndarray]], None]:
        def forget(ref: weakref.ref[np.ndarray]) -> None:
            # The frame is gone (evicted and shown nowhere): so is its pyramid.
            with self._cond:
                wanted = self._wanted.get(key)
                if wanted is ref:
                    del self._wanted[key]
                if self._coarse_wanted.get(key) is ref:
                    del self._coarse_wanted[key]
                coarse = self._coarse.get(key)
                if coarse is not None and coarse[0] is ref:
                    del self._coarse[key]
                entry = self._built.get(key)
                if entry is not None and entry.ref is ref:
                    del self._built[key]
                    self._nbytes -= entry.nbytes

        return forget

    # -- the worker ---------------------------------------------------------------------

    def _take(self) -> tuple[Callable[[], None] | None, float | None]:
        while self._coarse_wanted and not self._closed:
            key, ref = self._coarse_wanted.popitem(last=True)
            pixels = ref()
            if pixels is None:
                continue
            self._building = self._building_coarse = key
            return functools.partial(self._build_coarse, pixels, key, ref), None
        while self._wanted and not self._closed:
            key, ref = self._wanted.popitem(last=True)
            pixels = ref()
            if pixels is None:
                continue
            self._building = key

            return functools.partial(self._build, pixels, key, ref), None
        return None, None

    def _build(self, pixels: np.ndarray, key: int, ref: weakref.ref[np.ndarray]) -> None:
        try:
            levels = render.build_pyramid(pixels)
        finally:
            with self._cond:
                self._building = None
        nbytes = sum(int(level.nbytes) for level in levels)
        with self._cond:
            if self._closed or ref() is None:
                return
            self._built[key] = _Entry(ref, levels, nbytes)
            self._nbytes += nbytes
            while self._nbytes > self.budget and len(self._built) > 1:
                _, old = self._built.popitem(last=False)
                self._nbytes -= old.nbytes
            self._cond.notify_all()

    def _build_coarse(self, pixels: np.ndarray, key: int, ref: weakref.ref[np.ndarray]) -> None:
        factor = self.coarse_factor(pixels)
        try:
            level = render.reduce(pixels, factor)
        except BaseException:
            with self._cond:
                self._building = self._building_coarse = None
                self._cond.notify_all()
            raise
        with self._cond:
            self._building = self._building_coarse = None
            self._cond.notify_all()
            if self._closed or ref() is None:
                return
            self._coarse[key] = (ref, factor, level)
            while len(self._coarse) > _MAX_COARSE:
                self._coarse.popitem(last=False)
            self._cond.notify_all()

    def _failed(self, exc: BaseException) -> None:
        # A frame that cannot be averaged is still shown, from its stored pixels.
        log.error("a pyramid could not be built", exc_info=exc)

    # -- lifecycle ----------------------------------------------------------------------

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is wanted or being built (tests, benchmarks)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (
                    not self._wanted
                    and not self._coarse_wanted
                    and self._building is None
                    and self._pool.busy == 0
                ),
                timeout,
            )

    def clear(self) -> None:
        with self._cond:
            self._wanted.clear()
            self._coarse_wanted.clear()
            self._coarse.clear()
            self._built.clear()
            self._nbytes = 0

    def shutdown(self, timeout: float | None = 10.0) -> bool:
        """Stop the worker (a pyramid being built is finished first) and drop everything."""
        with self._cond:
            self._closed = True
            self._wanted.clear()
            self._coarse_wanted.clear()
            self._cond.notify_all()
        stopped = self._pool.stop(timeout)
        self.clear()
        return stopped
