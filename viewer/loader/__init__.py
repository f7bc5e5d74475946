"""Lazy series loading: a background prefetch pool and a bounded frame cache.

`SeriesLoader` fetches the series on screen ahead of the cursor — the visible slice
first, then by distance — through one streamed request plus single requests for
jumps, decodes in its worker threads, keeps decoded frames (as stored values) in a
byte-bounded `FrameCache` and retrieved instances in an `InstanceDiskCache`, and
reports to the UI through a `queue.Queue` of events that the render loop drains.
`LocalFolderSource` serves a folder of DICOM files through the same interface as
a DICOMweb server. Plain Python: no GUI import anywhere in this package.
"""

from ._cache import DEFAULT_MEMORY_BUDGET, CachedFrame, FrameCache, FrameKey, SeriesKey
from ._decode import fit_within, to_rgba
from ._disk import DEFAULT_DISK_BUDGET, InstanceDiskCache, default_cache_dir
from ._events import (
    FirstImage,
    FrameFailed,
    FrameReady,
    LoaderError,
    LoaderEvent,
    SeriesOpened,
    StudyOpened,
    ThumbnailFailed,
    ThumbnailReady,
)
from ._layout import InstanceHeader, SeriesLayout, SliceRef, build_layout
from ._loader import DEFAULT_PREFETCH_RADIUS, LOADER_RETRY, SeriesLoader, default_workers
from ._local import LocalFolderSource
from ._progress import SeriesProgress, SliceState
from ._sources import RenderingSource
from ._trace import TraceEntry

__all__ = [
    "DEFAULT_DISK_BUDGET",
    "DEFAULT_MEMORY_BUDGET",
    "DEFAULT_PREFETCH_RADIUS",
    "LOADER_RETRY",
    "CachedFrame",
    "FirstImage",
    "FrameCache",
    "FrameFailed",
    "FrameKey",
    "FrameReady",
    "InstanceDiskCache",
    "InstanceHeader",
    "LoaderError",
    "LoaderEvent",
    "LocalFolderSource",
    "RenderingSource",
    "SeriesKey",
    "SeriesLayout",
    "SeriesLoader",
    "SeriesOpened",
    "SeriesProgress",
    "SliceRef",
    "SliceState",
    "StudyOpened",
    "ThumbnailFailed",
    "ThumbnailReady",
    "TraceEntry",
    "build_layout",
    "default_cache_dir",
    "default_workers",
    "fit_within",
    "to_rgba",
]
