"""The state `SeriesLoader` shares with its two halves, and what each half provides.

`SeriesLoader` is split in three modules so each stays readable: `_loader` (the API
the UI calls, lifecycle), `_plan` (what to do next, decided under the condition) and
`_jobs` (doing it: I/O and decoding outside the lock). This base declares the shared
attributes (set up by `SeriesLoader.__init__`) and the methods one half calls on the
other, so both type-check on their own.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future

import numpy as np

from net import RetryPolicy, StudySource

from ._cache import FrameCache, FrameKey
from ._disk import InstanceDiskCache
from ._events import LoaderEvent
from ._instance import Instance
from ._layout import SeriesLayout
from ._pool import Job, WorkerPool
from ._run import Run
from ._study import StudyState
from ._trace import Trace

__all__ = ["LoaderBase"]


class LoaderBase:
    cache: FrameCache
    namespace: str
    workers: int
    prefetch_radius: int
    layout_wait: float
    image_rendering: str
    thumbnail_rendering: str
    lazy_load: bool
    results: queue.Queue[LoaderEvent]
    _cond: threading.Condition
    _pool: WorkerPool
    _source: StudySource
    _disk: InstanceDiskCache | None
    _frames_ok: bool
    _trace: Trace
    _retry: RetryPolicy
    _stopping: threading.Event
    _closed: bool
    _generation: int
    _study_generation: int
    _run: Run | None
    _study: StudyState | None
    _seq: itertools.count[int]
    _meta_jobs: deque[tuple[Run, Job]]
    _decode_jobs: list[tuple[int, int, Run, Job]]
    _decode_backlog: int
    _thumb_jobs: deque[tuple[int, Job, Future[np.ndarray]]]
    _thumbs_running: int
    _disk_jobs: deque[Job]
    _disk_backlog: int
    _retries: list[tuple[float, int, int, Run]]
    _singles_while_streaming: int

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

    def _stream(self, run: Run) -> None:
        raise NotImplementedError

    def _single(self, run: Run, group: list[int], kind: str) -> None:
        raise NotImplementedError

    def _disk_instances(self, order: Sequence[str]) -> Iterator[Instance]:
        raise NotImplementedError

    def _evicted(self, run: Run, key: FrameKey) -> None:
        raise NotImplementedError

    # -- provided by _loader (the notification sink) --------------------------------

    def _post(self, event: LoaderEvent) -> None:
        raise NotImplementedError

    def _report(self, exc: BaseException, generation: int | None = None) -> None:
        raise NotImplementedError
