"""What the loader tells the UI, through the results queue the render loop drains.

Every event names the generation it belongs to: after a series or study switch the
UI ignores events whose generation is not the loader's current one (the loader
also stops producing them, but some may already be queued). Events carry indices
and small values, never pixel arrays (except the one `FirstImage`), so an undrained
queue cannot hold the memory budget hostage: pixels live only in the cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from net import SeriesSummary

from ._cache import CachedFrame
from ._layout import SeriesLayout
from ._progress import SeriesProgress

__all__ = [
    "FirstImage",
    "FrameFailed",
    "FrameReady",
    "LoaderError",
    "LoaderEvent",
    "SeriesOpened",
    "StudyOpened",
    "ThumbnailFailed",
    "ThumbnailReady",
]


@dataclass(frozen=True, slots=True)
class StudyOpened:
    """The series of the opened study (with lazy load, all that was fetched)."""

    study_generation: int
    study_uid: str
    series: tuple[SeriesSummary, ...]


@dataclass(frozen=True, slots=True)
class FirstImage:
    """The first frame of a series that arrived, before its layout is known.

    Shown at once so the user sees an image while the rest streams in; when the
    layout arrives, `SeriesOpened.cursor` is this frame's position.
    """

    generation: int
    series_uid: str
    sop_uid: str
    frame_number: int
    image: CachedFrame


@dataclass(frozen=True, slots=True)
class SeriesOpened:
    """The series' layout is known: slice count, order, and where the cursor is."""

    generation: int
    study_uid: str
    series_uid: str
    layout: SeriesLayout
    cursor: int


@dataclass(frozen=True, slots=True)
class FrameReady:
    """Slice `index` is in the memory cache (`SeriesLoader.frame(index)`)."""

    generation: int
    series_uid: str
    index: int
    progress: SeriesProgress


@dataclass(frozen=True, slots=True)
class FrameFailed:
    """Slice `index` gave up after its retries; the UI shows "failed — retry"."""

    generation: int
    series_uid: str
    index: int
    message: str
    progress: SeriesProgress


@dataclass(frozen=True, slots=True)
class ThumbnailReady:
    """A series thumbnail: C-contiguous float32 RGBA (rows, columns, 4)."""

    study_generation: int
    study_uid: str
    series_uid: str
    image: np.ndarray


@dataclass(frozen=True, slots=True)
class ThumbnailFailed:
    study_generation: int
    study_uid: str
    series_uid: str
    message: str


@dataclass(frozen=True, slots=True)
class LoaderError:
    """A failure that belongs to no single slice (metadata, a bug): the notification sink."""

    generation: int
    message: str
    error: BaseException


LoaderEvent = (
    StudyOpened
    | FirstImage
    | SeriesOpened
    | FrameReady
    | FrameFailed
    | ThumbnailReady
    | ThumbnailFailed
    | LoaderError
)
