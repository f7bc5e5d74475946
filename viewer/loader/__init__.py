"""Lazy series loading: one prefetch pool and one bounded frame cache for the app.

The app makes one `LoaderHub`: it owns the byte-bounded `FrameCache` (decoded frames
as stored values), the `InstanceDiskCache` (retrieved instances) and the worker
threads, and drains every event (`hub.drain()`). Each source — a DICOMweb server, a
local folder (`LocalFolderSource`), the demo — gets a `SeriesLoader` from it::

    hub = LoaderHub(memory_budget=..., disk_cache=InstanceDiskCache(dir))
    loader = hub.loader_for_client(client)        # or hub.loader(local_source)
    loader.open_study(study_uid)                  # -> StudyOpened / StudyFailed
    handle = loader.open_series(series_uid, study_uid=study_uid, cursor=None)

A `SeriesHandle` is one opened series as one viewport sees it: `id`, `series_uid`,
`study_uid`, `layout`, `opened` (a future of the layout), `frame(i)`, `rgba(i, voi,
invert=, lut_cache=, out=)`, `state(i)`, `progress()`, `failure`, `set_cursor(i)`,
`set_visible(bool)`, `retry(i=None)`, `set_window(w)` (server-rendered images) and
`close()`. Several handles stay open at once; the prefetch follows every visible
handle's cursor (the slice on screen of each first, then by distance, taking
turns); a hidden handle gets nothing new; closing one stops its work.

Events are routed by type, never by text: `HandleEvent`s (`FirstImage`,
`SeriesOpened`, `FrameReady`, `FrameFailed`, `SeriesFailed`) carry their `handle`;
`StudyEvent`s (`StudyOpened`, `StudyFailed`, `ThumbnailReady`, `ThumbnailFailed`)
carry the `loader_id` and study generation that asked; `LoaderError` is a bug.
`hub.wait_until_idle(timeout)` and `hub.shutdown(cancel_futures=True)` serve tests
and exit. A `SeriesLoader` made without a hub makes a private one (tests, scripts).
Plain Python: no GUI import anywhere in this package.
"""

from ._cache import (
    DEFAULT_MEMORY_BUDGET,
    CachedFrame,
    CacheUsage,
    FrameCache,
    FrameKey,
    SeriesKey,
)
from ._decode import fit_within, to_rgba
from ._disk import DEFAULT_DISK_BUDGET, InstanceDiskCache, default_cache_dir
from ._events import (
    FirstImage,
    FrameFailed,
    FrameReady,
    HandleEvent,
    LoaderError,
    LoaderEvent,
    SeriesFailed,
    SeriesOpened,
    StudyEvent,
    StudyFailed,
    StudyOpened,
    ThumbnailFailed,
    ThumbnailReady,
)
from ._handle import SeriesHandle
from ._hub import CacheInfo, LoaderHub, default_workers
from ._layout import InstanceHeader, SeriesLayout, SliceRef, build_layout
from ._loader import DEFAULT_PREFETCH_RADIUS, LOADER_RETRY, SeriesLoader
from ._local import LocalFolderSource, ScanProgress
from ._pool import WorkerPool
from ._progress import SeriesProgress, SliceState
from ._sources import RenderingSource
from ._trace import TraceEntry

__all__ = [
    "DEFAULT_DISK_BUDGET",
    "DEFAULT_MEMORY_BUDGET",
    "DEFAULT_PREFETCH_RADIUS",
    "LOADER_RETRY",
    "CacheInfo",
    "CacheUsage",
    "CachedFrame",
    "FirstImage",
    "FrameCache",
    "FrameFailed",
    "FrameKey",
    "FrameReady",
    "HandleEvent",
    "InstanceDiskCache",
    "InstanceHeader",
    "LoaderError",
    "LoaderEvent",
    "LoaderHub",
    "LocalFolderSource",
    "RenderingSource",
    "ScanProgress",
    "SeriesFailed",
    "SeriesHandle",
    "SeriesKey",
    "SeriesLayout",
    "SeriesLoader",
    "SeriesOpened",
    "SeriesProgress",
    "SliceRef",
    "SliceState",
    "StudyEvent",
    "StudyFailed",
    "StudyOpened",
    "ThumbnailFailed",
    "ThumbnailReady",
    "TraceEntry",
    "WorkerPool",
    "build_layout",
    "default_cache_dir",
    "default_workers",
    "fit_within",
    "to_rgba",
]
