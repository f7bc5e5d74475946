"""What the loader tells the UI, through the hub's results queue the render loop drains.

Events are routed by type, never by message text: the per-series ones
(`HandleEvent`) carry the `SeriesHandle` that asked, so each viewport takes its own
(`event.handle is my_handle`) and events of a handle closed meanwhile are simply
dropped (the loader also stops producing them, but some may already be queued).
Study-level ones (`StudyEvent`) carry the id of the per-source loader that fetched
them and its study generation, so a study list that moved on ignores them. Events
carry indices and small values, never pixel arrays (except the one `FirstImage`), so
an undrained queue cannot hold the memory budget hostage: pixels live only in the
cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from net import SeriesSummary

from ._cache import CachedFrame
from ._layout import SeriesLayout
from ._progress import SeriesProgress

if TYPE_CHECKING:
    from ._handle import SeriesHandle

__all__ = [
    "FirstImage",
    "FrameFailed",
    "FrameReady",
    "HandleEvent",
    "LoaderError",
    "LoaderEvent",
    "SeriesFailed",
    "SeriesOpened",
    "StudyEvent",
    "StudyFailed",
    "StudyOpened",
    "ThumbnailFailed",
    "ThumbnailReady",
]


@dataclass(frozen=True, slots=True)
class StudyOpened:
    """The series of the opened study (with lazy load, all that was fetched)."""

    loader_id: int
    study_generation: int
    study_uid: str
    series: tuple[SeriesSummary, ...]


@dataclass(frozen=True, slots=True)
class StudyFailed:
    """The study's series list (or metadata) could not be fetched."""

    loader_id: int
    study_generation: int
    study_uid: str
    message: str
    error: BaseException


@dataclass(frozen=True, slots=True)
class FirstImage:
    """The first frame of a series that arrived, before its layout is known.

    Shown at once so the user sees an image while the rest streams in; when the
    layout arrives, `SeriesOpened.cursor` is this frame's position.
    """

    handle: SeriesHandle
    sop_uid: str
    frame_number: int
    image: CachedFrame


@dataclass(frozen=True, slots=True)
class SeriesOpened:
    """The series' layout is known: slice count, order, and where the cursor is.

    `reloaded`: the series was read again while open because its source holds more of
    it now (`SeriesLoader.refresh_series`): the same series with more slices, `cursor`
    on the same image as before (its position may have moved), so a viewport keeps its
    view instead of starting over.
    """

    handle: SeriesHandle
    layout: SeriesLayout
    cursor: int
    reloaded: bool = False


@dataclass(frozen=True, slots=True)
class FrameReady:
    """Slice `index` is in the memory cache (`SeriesHandle.frame(index)`)."""

    handle: SeriesHandle
    index: int
    progress: SeriesProgress


@dataclass(frozen=True, slots=True)
class FrameFailed:
    """Slice `index` gave up after its retries; the UI shows "failed — retry"."""

    handle: SeriesHandle
    index: int
    message: str
    progress: SeriesProgress


@dataclass(frozen=True, slots=True)
class SeriesFailed:
    """The series cannot be shown: its layout could not be fetched, it has no image
    slices, or every slice failed. `reason` is a sentence for the user; the viewport
    shows it with a retry (`SeriesHandle.retry()`)."""

    handle: SeriesHandle
    reason: str
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class ThumbnailReady:
    """A series thumbnail: C-contiguous float32 RGBA (rows, columns, 4)."""

    loader_id: int
    study_generation: int
    study_uid: str
    series_uid: str
    image: np.ndarray


@dataclass(frozen=True, slots=True)
class ThumbnailFailed:
    loader_id: int
    study_generation: int
    study_uid: str
    series_uid: str
    message: str


@dataclass(frozen=True, slots=True)
class LoaderError:
    """A failure that belongs to no slice, series or study (a bug): the notification sink."""

    message: str
    error: BaseException
    handle: SeriesHandle | None = None


HandleEvent = FirstImage | SeriesOpened | FrameReady | FrameFailed | SeriesFailed
StudyEvent = StudyOpened | StudyFailed | ThumbnailReady | ThumbnailFailed
LoaderEvent = HandleEvent | StudyEvent | LoaderError
