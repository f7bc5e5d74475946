"""The state `SeriesLoader` shares with its two halves, and what each half provides.

`SeriesLoader` is split in three modules so each stays readable: `_loader` (the API
the UI calls, handles, lifecycle), `_plan` (what to do next, decided under the
condition) and `_jobs` (doing it: I/O and decoding outside the lock). This base
declares the shared attributes (set up by `SeriesLoader.__init__`; the condition,
cache, trace and queues are the `LoaderHub`'s) and the methods one half calls on
the other, so both type-check on their own.
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

import numpy as np

from net import RetryPolicy, StudySource

from ._cache import FrameCache, FrameKey
from ._disk import InstanceDiskCache
from ._events import LoaderEvent
from ._instance import Instance
from ._layout import SeriesLayout
from ._pool import Job
from ._run import Run
from ._study import StudyState
from ._trace import Trace

if TYPE_CHECKING:
    from ._handle import SeriesHandle
    from ._hub import LoaderHub

__all__ = ["LoaderBase"]


class LoaderBase:
    id: int
    cache: FrameCache
    namespace: str
    workers: int
    prefetch_radius: int
    layout_wait: float
    image_rendering: str
    thumbnail_rendering: str
    lazy_load: bool
    results: queue.Queue[LoaderEvent]
    _hub: LoaderHub
    _cond: threading.Condition
    _source: StudySource
    _disk: InstanceDiskCache | None
    _frames_ok: bool
    _trace: Trace
    _retry: RetryPolicy
    _stopping: threading.Event
    _closed: bool
    _study_generation: int
    _runs: dict[str, Run]
    _study: StudyState | None
    _studies: OrderedDict[str, StudyState]
    _meta_jobs: deque[tuple[Run, Job]]
    _thumb_jobs: deque[tuple[int, Job, Future[np.ndarray]]]

    # -- provided by _plan ----------------------------------------------------------

    def _install(self, run: Run, layout: SeriesLayout, source: str) -> None:
        raise NotImplementedError

    def _request_metadata(self, run: Run) -> None:
        raise NotImplementedError

    # -- provided by _jobs ----------------------------------------------------------

    def _stale(self, run: Run) -> bool:
        raise NotImplementedError

    def _fetch_metadata(self, run: Run) -> None:
        raise NotImplementedError

    def _fetch_refresh(self, run: Run) -> None:
        raise NotImplementedError

    def _stream(self, run: Run) -> None:
        raise NotImplementedError

    def _single(self, run: Run, group: list[int], kind: str) -> None:
        raise NotImplementedError

    def _disk_instances(self, order: Sequence[str]) -> Iterator[Instance]:
        raise NotImplementedError

    def _evicted(self, run: Run, key: FrameKey) -> None:
        raise NotImplementedError

    # -- provided by _loader ----------------------------------------------------------

    def _post(self, event: LoaderEvent) -> None:
        raise NotImplementedError

    def _post_each(self, run: Run, make: Callable[[SeriesHandle], LoaderEvent]) -> None:
        raise NotImplementedError

    def _report(self, exc: BaseException, run: Run | None = None) -> None:
        raise NotImplementedError

    def _announce(self, run: Run, handle: SeriesHandle) -> None:
        raise NotImplementedError

    def _refreshed(self, run: Run, layout: SeriesLayout) -> None:
        raise NotImplementedError

    def _fail_series(self, run: Run, reason: str, error: BaseException | None) -> None:
        raise NotImplementedError

    def _frame_keys(self, run: Run) -> dict[FrameKey, int]:
        raise NotImplementedError

    def _update_cursors(self, run: Run) -> None:
        raise NotImplementedError
