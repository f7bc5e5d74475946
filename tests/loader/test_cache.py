"""The memory cache: byte budget, eviction order, the cursor's neighbourhood kept last."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from pydicom.dataset import Dataset

from viewer.loader import CachedFrame, FrameCache, FrameKey, SeriesKey

A = SeriesKey("server", "1.2.3")
B = SeriesKey("server", "1.2.4")
FRAME_BYTES = 100


def frame(nbytes: int = FRAME_BYTES) -> CachedFrame:
    pixels = np.zeros(nbytes, dtype=np.uint8)
    pixels.flags.writeable = False
    return CachedFrame(pixels, "MONOCHROME2", Dataset())


def key(series: SeriesKey, i: int) -> FrameKey:
    return FrameKey(series, f"sop{i}", 0)


def fill(cache: FrameCache, series: SeriesKey, indices: range) -> None:
    for i in indices:
        assert cache.put(key(series, i), frame(), index=i).admitted


def test_budget_counts_bytes_and_is_never_exceeded() -> None:
    cache = FrameCache(budget=5 * FRAME_BYTES)
    for i in range(20):
        cache.put(key(B, i), frame())
        assert cache.nbytes <= cache.budget
    assert cache.nbytes == 5 * FRAME_BYTES
    assert cache.peak_nbytes == 5 * FRAME_BYTES
    assert len(cache) == 5


def test_other_series_go_first_least_recently_used_first() -> None:
    cache = FrameCache(budget=4 * FRAME_BYTES)
    fill(cache, A, range(2))  # no focus yet: ordinary LRU entries
    cache.put(key(B, 0), frame())
    cache.put(key(B, 1), frame())
    assert cache.get(key(A, 0)) is not None  # A0 becomes the most recent
    cache.set_focus(B, cursor=0)
    cache.reindex(B, {key(B, 0): 0, key(B, 1): 1})
    result = cache.put(key(B, 2), frame(), index=2)
    assert result.admitted
    assert result.evicted == (key(A, 1),)  # the least recently used other entry
    assert key(A, 0) in cache


def test_focus_series_evicts_farthest_from_cursor_and_refuses_farther_frames() -> None:
    cache = FrameCache(budget=5 * FRAME_BYTES)
    cache.set_focus(A, cursor=10)
    fill(cache, A, range(8, 13))  # 8..12 around the cursor
    # A frame farther than everything kept is refused, not allowed to thrash.
    far = cache.put(key(A, 30), frame(), index=30)
    assert not far.admitted and far.evicted == ()
    # The cursor moves: the farthest (from 14) goes first.
    cache.set_cursor(A, 14)
    near = cache.put(key(A, 14), frame(), index=14)
    assert near.admitted
    assert near.evicted == (key(A, 8),)
    assert sorted(int(k.sop_uid[3:]) for k in cache.frame_keys(A)) == [9, 10, 11, 12, 14]


def test_neighbourhood_is_evicted_last_even_when_least_recently_used() -> None:
    cache = FrameCache(budget=4 * FRAME_BYTES)
    cache.set_focus(A, cursor=0)
    fill(cache, A, range(3))
    cache.put(key(B, 0), frame())  # the most recent entry, but not on screen
    result = cache.put(key(A, 3), frame(), index=3)
    assert result.evicted == (key(B, 0),)
    assert all(key(A, i) in cache for i in range(4))


def test_unfocused_frames_become_ordinary_entries_nearest_the_cursor_kept_longest() -> None:
    cache = FrameCache(budget=4 * FRAME_BYTES)
    cache.set_focus(A, cursor=0)
    fill(cache, A, range(3))
    cache.unfocus(A)
    cache.set_focus(B, cursor=0)
    fill(cache, B, range(3))  # must push A's frames out, the series no longer shown
    assert [k for k in cache.frame_keys() if k.series == A] == [key(A, 0)]
    assert len(cache.frame_keys(B)) == 3


def test_two_series_on_screen_each_keep_their_window_and_give_up_the_outside() -> None:
    cache = FrameCache(budget=6 * FRAME_BYTES)
    cache.set_focus(A, cursor=10, window=(9, 11))
    cache.set_focus(B, cursor=0, window=(0, 2))
    fill(cache, A, range(8, 13))  # 8 and 12 are outside A's window
    fill(cache, B, range(0, 1))
    # The cache is full: B's window slices push out A's slices outside A's window...
    result = cache.put(key(B, 1), frame(), index=1)
    assert result.admitted and result.evicted == (key(A, 8),)
    result = cache.put(key(B, 2), frame(), index=2)
    assert result.admitted and result.evicted == (key(A, 12),)
    result = cache.put(key(B, 5), frame(), index=5)  # outside B's window, farther than A's
    assert not result.admitted
    # ...and never a slice inside A's window for one outside B's.
    assert all(key(A, i) in cache for i in (9, 10, 11))
    assert set(cache.focused()) == {A, B}


def test_oversized_frame_is_refused_and_budget_can_shrink() -> None:
    cache = FrameCache(budget=3 * FRAME_BYTES)
    assert not cache.put(key(A, 0), frame(4 * FRAME_BYTES)).admitted
    cache.set_focus(A, cursor=0)
    fill(cache, A, range(3))
    evicted = cache.set_budget(FRAME_BYTES)
    assert set(evicted) == {key(A, 1), key(A, 2)}
    assert cache.nbytes == FRAME_BYTES
    with pytest.raises(ValueError):
        FrameCache(budget=-1)


def test_discard_series_and_hit_counting() -> None:
    cache = FrameCache(budget=10 * FRAME_BYTES)
    cache.set_focus(A, cursor=0)
    fill(cache, A, range(3))
    assert cache.get(key(A, 1)) is not None
    assert cache.get(key(A, 7)) is None
    assert (cache.hits, cache.misses) == (1, 1)
    assert cache.peek(key(A, 2)) is not None
    assert (cache.hits, cache.misses) == (1, 1)  # peeking is not the UI asking
    assert cache.discard_series(A) == 3
    assert cache.nbytes == 0 and len(cache) == 0


def test_concurrent_puts_and_gets_keep_the_books_straight() -> None:
    cache = FrameCache(budget=50 * FRAME_BYTES)
    cache.set_focus(A, cursor=500)

    def writer(offset: int) -> None:
        for i in range(offset, 1000, 4):
            cache.put(key(A, i), frame(), index=i)
            cache.get(key(A, i - 1))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.peak_nbytes <= cache.budget
    assert cache.nbytes == len(cache) * FRAME_BYTES
    kept = sorted(int(k.sop_uid[3:]) for k in cache.frame_keys(A))
    assert max(abs(i - 500) for i in kept) <= 26  # the 50 nearest the cursor, give or take ties


def test_the_loaders_window_is_kept_before_nearer_slices_outside_it() -> None:
    cache = FrameCache(budget=4 * FRAME_BYTES)
    cache.set_focus(A, cursor=10, window=(10, 13))  # the loader keeps 10..13
    fill(cache, A, range(8, 12))  # 8 and 9 are near, but outside the window
    result = cache.put(key(A, 12), frame(), index=12)
    assert result.admitted and result.evicted == (key(A, 8),)
    result = cache.put(key(A, 13), frame(), index=13)
    assert result.admitted and result.evicted == (key(A, 9),)
    # Nothing outside the window may push a window slice out.
    assert not cache.put(key(A, 9), frame(), index=9).admitted
    assert sorted(int(k.sop_uid[3:]) for k in cache.frame_keys(A)) == [10, 11, 12, 13]
