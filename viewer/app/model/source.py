"""What a viewport scrolls through: the `ViewportSource` protocol and a series stack.

A viewport needs little of where its images come from: how many there are, frame i
as stored values with what colours it (`ImageInfo`) and its header (annotations),
where it lies in the patient (`geometry(i)`, for linked scrolling and reference
lines), whether it is there yet, and to be told which one is on screen. A series
stack (`SeriesSource`, over a loader's `SeriesHandle`) is one implementation; a plane
of a volume (MPR, issue 16) is meant to be another, its `geometry(i)` the plane's.

`changed_by(event)` lets a source say what a loader event means to it (the page asks
every viewport's source about every event), so a volume's planes can react to their
stack's frames without the page knowing about volumes. Plain Python: no GUI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    import render
    from viewer.loader import CachedFrame, SeriesHandle, SeriesProgress

    from .viewport import SlotState

__all__ = ["SeriesSource", "SourceChange", "ViewportSource", "index_of"]

ChangeKind = Literal["first", "layout", "relayout", "frame", "failed", "progress"]


@dataclass(frozen=True, slots=True)
class SourceChange:
    """What an event changed: the first image (before the layout), the layout (count
    and order; `index` the image to show), the layout again with more images of the
    same source (`relayout`: `index` is the image that was on screen, the view stays),
    one frame (`index`; None: possibly any), the whole source failed, or only the
    progress."""

    kind: ChangeKind
    index: int | None = None
    message: str = ""


class ViewportSource(Protocol):
    """A stack of 2-D images a viewport shows one at a time (see the module docstring)."""

    @property
    def key(self) -> str:
        """Stable identity (what is shown, not which object shows it)."""
        ...

    @property
    def count(self) -> int:
        """How many images there are; 0 until known."""
        ...

    @property
    def failure(self) -> str | None:
        """Why nothing of it can be shown (the user can retry), or None."""
        ...

    def frame(self, index: int) -> CachedFrame | None:
        """Image `index` as stored values, or None if it is not in memory (yet)."""
        ...

    def first_frame(self) -> CachedFrame | None:
        """An image to show before `count` is known (None when there is none)."""
        ...

    def info(self, index: int) -> render.ImageInfo | None:
        """How to colour image `index` (None: display values, e.g. server-rendered)."""
        ...

    def header(self, index: int) -> Dataset | None:
        """The attributes of image `index` (annotations, tags); None if unknown."""
        ...

    def geometry(self, index: int) -> render.SliceGeometry | None:
        """Where image `index` lies in the patient (position, orientation), if known."""
        ...

    def frame_of_reference(self, index: int) -> str | None: ...

    def slot(self, index: int) -> SlotState:
        """Whether image `index` is ready, still loading, or failed."""
        ...

    def progress(self) -> SeriesProgress | None: ...

    def changed_by(self, event: object) -> SourceChange | None:
        """What `event` (a loader event) changes here; None if it is not about this."""
        ...

    def set_cursor(self, index: int) -> None: ...

    def set_visible(self, visible: bool) -> None: ...

    def retry(self, index: int | None = None) -> None: ...

    def close(self) -> None: ...


class SeriesSource:
    """A series stack as a `ViewportSource`, over one `SeriesHandle`."""

    def __init__(self, handle: SeriesHandle) -> None:
        self.handle = handle
        self._first: CachedFrame | None = None
        self._failure: str | None = None

    def __repr__(self) -> str:
        return f"SeriesSource({self.handle!r})"

    @property
    def key(self) -> str:
        return self.handle.series_uid

    @property
    def study_uid(self) -> str:
        return self.handle.study_uid

    @property
    def count(self) -> int:
        layout = self.handle.layout
        return len(layout) if layout is not None else 0

    @property
    def failure(self) -> str | None:
        return self._failure

    def frame(self, index: int) -> CachedFrame | None:
        return self.handle.frame(index)

    def first_frame(self) -> CachedFrame | None:
        return self._first

    def info(self, index: int) -> render.ImageInfo | None:
        layout = self.handle.layout
        if layout is None or not 0 <= index < len(layout):
            return None
        frame = self.handle.frame(index)
        if frame is not None and frame.server_rendered:
            return None
        return layout.image_info(index)

    def header(self, index: int) -> Dataset | None:
        layout = self.handle.layout
        if layout is None or not 0 <= index < len(layout):
            return self._first.header if self._first is not None else None
        return layout.header(index)

    def geometry(self, index: int) -> render.SliceGeometry | None:
        layout = self.handle.layout
        if layout is None or not 0 <= index < len(layout):
            return None
        return layout.slices[index].geometry

    def index_of(self, sop_uid: str, frame: int = 0) -> int | None:
        """The scroll position of frame `frame` of instance `sop_uid`, if it is here."""
        layout = self.handle.layout
        return layout.index_of(sop_uid, frame) if layout is not None else None

    def frame_of_reference(self, index: int) -> str | None:
        header = self.header(index)
        value = header.get("FrameOfReferenceUID") if header is not None else None
        return str(value) if value else None

    def slot(self, index: int) -> SlotState:
        from viewer.loader import SliceState

        if self._failure is not None:
            return "failed"
        if self.handle.frame(index) is not None:
            return "ready"
        return "failed" if self.handle.state(index) is SliceState.FAILED else "loading"

    def progress(self) -> SeriesProgress | None:
        return self.handle.progress()

    def changed_by(self, event: object) -> SourceChange | None:
        from viewer.loader import FirstImage, FrameFailed, FrameReady, SeriesFailed, SeriesOpened

        if getattr(event, "handle", None) is not self.handle:
            return None
        if isinstance(event, FirstImage):
            if self.count:
                return None  # the layout came first: nothing to show early
            self._first = event.image
            return SourceChange("first")
        if isinstance(event, SeriesOpened):
            self._first = None
            return SourceChange("relayout" if event.reloaded else "layout", event.cursor)
        if isinstance(event, FrameReady | FrameFailed):
            if self._failure is not None and self.handle.failure is None:
                self._failure = None  # a retry brought slices back
                return SourceChange("frame", None)
            message = event.message if isinstance(event, FrameFailed) else ""
            return SourceChange("frame", event.index, message)
        if isinstance(event, SeriesFailed):
            self._failure = event.reason
            self._first = None
            return SourceChange("failed", None, event.reason)
        return SourceChange("progress")

    def set_cursor(self, index: int) -> None:
        self.handle.set_cursor(index)

    def set_visible(self, visible: bool) -> None:
        self.handle.set_visible(visible)

    def retry(self, index: int | None = None) -> None:
        if self._failure is not None:
            self._failure = None
            self.handle.retry()  # the whole series: reopened
        else:
            self.handle.retry(index)

    def close(self) -> None:
        self.handle.close()


def index_of(source: ViewportSource | None, sop_uid: str, frame: int = 0) -> int | None:
    """Where image (`sop_uid`, `frame`) is in `source`'s stack; None if it is not there.

    A source may say it itself (`index_of`, as `SeriesSource` does); otherwise its
    headers are compared (an MPR plane's are made once and kept).
    """
    if source is None:
        return None
    own = getattr(source, "index_of", None)
    if callable(own):
        found = own(sop_uid, frame)
        return found if isinstance(found, int) else None
    if frame:
        return None  # headers name instances: frame 0 is all they can tell apart
    return next((i for i in range(source.count) if _sop_uid(source.header(i)) == sop_uid), None)


def _sop_uid(header: Dataset | None) -> str:
    return str(header.get("SOPInstanceUID") or "") if header is not None else ""
