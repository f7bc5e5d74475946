"""MPR: axial, coronal and sagittal planes of a loaded series, with one crosshair point.

`MprVolume` turns one series (a `SeriesHandle` of its own, sharing the series' cached
frames) into a `render.Volume` as its slices arrive: the volume is built from the
layout's geometry (the largest stack), each slice is copied into one block and handed
back to the frame cache as a view of that block (`SeriesHandle.share_pixels`), so the
volume *is* the cached values, not a second copy. A stack that is not one volume
(two sizes, repeated positions, a wide gap, per-slice rescale, colour) is refused
with the reason, which the viewports show.

`PlaneSource` is one family of planes as a `ViewportSource`: a viewport scrolls
through coronal planes as it scrolls through slices. Each plane comes with a header
of its own (orientation, position, pixel spacing of the plane; the series' patient,
study and rescale), so orientation letters, the scale bar, the physical aspect ratio
and the value under the pointer are right in every plane with no special code. A
per-viewport thick slab (MIP, MinIP, mean, in mm) is a property of the source.

`MprState` keeps the point the three planes go through: scrolling a plane moves the
point along that plane's normal (so its line moves in the others), clicking or
dragging in a plane moves the point there (so the other planes follow), and it says
which crosshair lines each viewport draws. Plain Python: no GUI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

import render

from .source import SourceChange

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from viewer.loader import CachedFrame, SeriesHandle, SeriesProgress

    from .layout import LayoutState
    from .viewport import SlotState, ViewportState

__all__ = [
    "PLANE_COLOURS",
    "SLAB_MODES",
    "CrosshairLine",
    "MprState",
    "MprVolume",
    "PlaneSource",
]

#: The colour of each plane family's line in the other planes (none of them the yellow
#: of the overlay text).
PLANE_COLOURS: dict[render.PlaneKind, tuple[int, int, int, int]] = {
    "axial": (230, 80, 80, 255),
    "coronal": (80, 200, 90, 255),
    "sagittal": (90, 150, 255, 255),
}
#: The slab modes offered, with their labels ("off": a plane one voxel thick).
SLAB_MODES: dict[str, str] = {"off": "Off", "mip": "MIP", "minip": "MinIP", "mean": "Average"}
#: Attributes a plane's header takes from the series: who, what, and how to colour it.
_SERIES_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
    "StudyDescription", "StudyDate", "StudyTime", "AccessionNumber", "SeriesInstanceUID",
    "SeriesNumber", "SeriesDescription", "Modality", "FrameOfReferenceUID",
    "PhotometricInterpretation", "SamplesPerPixel", "BitsAllocated", "BitsStored",
    "HighBit", "PixelRepresentation", "RescaleSlope", "RescaleIntercept", "RescaleType",
    "WindowCenter", "WindowWidth", "VOILUTFunction", "LossyImageCompression",
    "LossyImageCompressionRatio", "LossyImageCompressionMethod",
)  # fmt: skip


class MprVolume:
    """One series as a volume, filled in as its slices arrive (see the module docstring).

    Made over a handle of its own (`loader.open_series` again: handles of one series
    share its frames); `close` closes it when the last plane source lets go.
    """

    def __init__(self, handle: SeriesHandle) -> None:
        self.handle = handle
        self.volume: render.Volume | None = None
        self.planes: dict[render.PlaneKind, render.PlaneGeometry] = {}
        #: Why there is no volume (shown in the viewports), or None.
        self.failure: str | None = None
        #: For the user when the stack was resampled; empty otherwise.
        self.note = ""
        self.header: Dataset | None = None
        self.info: render.ImageInfo | None = None
        #: Volume source index -> layout index (the largest stack, in layout order).
        self._layout_indices: list[int] = []
        #: Counts the volumes made over the handle's layouts (a reload makes another).
        self.generation = 0
        self._users = 0
        self._visible_users: set[int] = set()
        self._last_event: object = None
        self._last_change: bool = False

    @property
    def ready(self) -> bool:
        return self.volume is not None

    def acquire(self) -> None:
        self._users += 1

    def release(self) -> None:
        self._users -= 1
        if self._users <= 0:
            self.handle.close()
            self.volume = None

    def set_visible(self, user: int, visible: bool) -> None:
        if visible:
            self._visible_users.add(user)
        else:
            self._visible_users.discard(user)
        self.handle.set_visible(bool(self._visible_users))

    # -- building -----------------------------------------------------------------------

    def build(self) -> bool:
        """Make the volume once the layout is known; True if it was made now."""
        if self.volume is not None or self.failure is not None:
            return False
        if self.handle.failure is not None:
            self.failure = self.handle.failure
            return False
        layout = self.handle.layout
        if layout is None or not len(layout):
            return False
        stack = layout.stacks[0] if layout.stacks else range(len(layout))
        indices = list(stack)
        try:
            header = layout.header(indices[0])
            info = layout.image_info(indices[0])
            spacing = render.scale_pixel_spacing(header)
            if spacing is None or spacing.source != "PixelSpacing":
                raise render.UnsupportedImage(
                    "the other planes need the Pixel Spacing of the slices in the patient"
                )
            if info.format.samples_per_pixel != 1:
                raise render.UnsupportedImage("the other planes are made of greyscale images")
            if any(layout.image_info(i).modality != info.modality for i in indices[1:]):
                raise render.UnsupportedImage(
                    "the slices are scaled differently (Rescale Slope/Intercept per slice)"
                )
            geometry = render.volume_geometry(
                [layout.slices[i].geometry for i in indices],
                (spacing.row_spacing, spacing.column_spacing),
            )
        except render.RenderError as exc:
            self.failure = f"No MPR for this series: {exc}."
            return False
        fmt = info.format
        dtype = np.dtype(
            f"{'i' if fmt.signed else 'u'}{max(1, fmt.bits_allocated // 8)}"
            if fmt.bits_allocated in (8, 16, 32)
            else "i2"
        )
        self.volume = render.Volume.allocate(geometry, dtype)
        self.planes = {kind: render.plane_geometry(geometry, kind) for kind in render.PLANE_AXES}
        self.header, self.info, self.note = header, info, geometry.note
        self._layout_indices = indices
        taken = sum(self._take(source) for source in range(len(indices)))
        if taken and not geometry.resampled:
            _return_freed_memory()
        return True

    def _take(self, source: int) -> bool:
        """Copy layout slice `source` (of the stack) into the volume if it is cached."""
        volume = self.volume
        assert volume is not None
        index = self._layout_indices[source]
        frame = self.handle.frame(index)
        if frame is None or frame.pixels.ndim != 2:
            return False
        pixels = frame.pixels
        if pixels.shape != volume.data.shape[1:]:
            return False
        if pixels.dtype != volume.data.dtype:
            pixels = pixels.astype(volume.data.dtype)
        volume.put(source, pixels)
        if not volume.geometry.resampled:
            # The cache keeps the block's slice instead of its own array: one copy.
            shared = volume.data[source]
            shared.flags.writeable = False
            if frame.pixels.dtype == shared.dtype:
                self.handle.share_pixels(index, shared)
        return True

    def on_event(self, event: object) -> bool:
        """A loader event: True if the volume changed (asked once per plane source,
        worked out once)."""
        if event is self._last_event:
            return self._last_change
        self._last_event = event
        self._last_change = self._on_event(event)
        return self._last_change

    def _on_event(self, event: object) -> bool:
        from viewer.loader import FrameReady, SeriesFailed, SeriesOpened

        if getattr(event, "handle", None) is not self.handle:
            return False
        if isinstance(event, SeriesFailed):
            self.failure = event.reason
            return True
        if isinstance(event, SeriesOpened):
            if event.reloaded:
                # The series was read again with more slices (a folder scanned while it
                # was open): the volume of the old layout is no longer its shape.
                self.volume, self.planes, self.failure = None, {}, None
                self.generation += 1
            return self.build()
        if isinstance(event, FrameReady) and self.volume is not None:
            try:
                source = self._layout_indices.index(event.index)
            except ValueError:
                return False  # a slice of another stack (a scout)
            complete = self.volume.complete
            taken = self._take(source)
            if taken and not complete and self.volume.complete:
                _return_freed_memory()  # the arrays of the slices copied while loading
            return taken
        return False

    def retry(self) -> None:
        self.failure = None
        self.handle.retry()


def _return_freed_memory() -> None:
    """Give the frames' own arrays, freed now that the cache holds the volume's slices,
    back to the operating system.

    Each frame was its own ~0.5 MB allocation; glibc keeps such freed blocks in its
    heap for reuse, so without this the process's memory would still count the series
    twice (measured: +100% of the volume; with it, ~0). A no-op without glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


@dataclass(frozen=True, slots=True)
class CrosshairLine:
    """A line a viewport draws: end points in its image's (column, row) coordinates, as
    `render.ViewTransform` takes them (pixel c covers [c, c + 1))."""

    start: tuple[float, float]
    end: tuple[float, float]
    colour: tuple[int, int, int, int]


class PlaneSource:
    """One family of planes of an `MprVolume` as a `ViewportSource`."""

    def __init__(self, stack: MprVolume, kind: render.PlaneKind) -> None:
        self.stack = stack
        self.kind = kind
        self.slab_mm = 0.0
        self.slab_mode: render.SlabMode = "mip"
        self._headers: dict[int, Dataset] = {}
        self._frame: tuple[tuple[object, ...], CachedFrame | None] | None = None
        self._closed = False
        stack.acquire()

    def __repr__(self) -> str:
        return f"PlaneSource({self.kind}, {self.stack.handle!r})"

    @property
    def plane(self) -> render.PlaneGeometry | None:
        return self.stack.planes.get(self.kind)

    @property
    def key(self) -> str:
        return f"{self.stack.handle.series_uid}/mpr/{self.kind}"

    @property
    def study_uid(self) -> str:
        return self.stack.handle.study_uid

    @property
    def count(self) -> int:
        plane = self.plane
        return plane.count if plane is not None else 0

    @property
    def failure(self) -> str | None:
        return self.stack.failure

    def set_slab(self, mm: float, mode: render.SlabMode | Literal["off"]) -> None:
        """A thick slab `mm` thick (0 or "off": a single plane)."""
        if mode == "off":
            mm = 0.0
        else:
            self.slab_mode = mode
        self.slab_mm = max(0.0, float(mm))
        self._frame = None
        # The headers made so far say the old thickness (Slice Thickness): made again.
        self._headers.clear()

    def frame(self, index: int) -> CachedFrame | None:
        from viewer.loader import CachedFrame, InstanceHeader

        volume, plane = self.stack.volume, self.plane
        if volume is None or plane is None or not 0 <= index < plane.count:
            return None
        key = (index, self.slab_mm, self.slab_mode, volume.revision)
        if self._frame is not None and self._frame[0] == key:
            return self._frame[1]  # the same object: the viewport keeps its texels
        image = render.plane_image(volume, plane, index, slab_mm=self.slab_mm, mode=self.slab_mode)
        found: CachedFrame | None = None
        if not image.empty:
            pixels = image.pixels
            if pixels.flags.writeable:
                pixels = pixels.view()
                pixels.flags.writeable = False
            header = self.header(index)
            assert header is not None
            found = CachedFrame(
                pixels,
                str(header.get("PhotometricInterpretation") or "MONOCHROME2"),
                InstanceHeader.of(header),
            )
        self._frame = (key, found)
        return found

    def first_frame(self) -> CachedFrame | None:
        return None

    def info(self, index: int) -> render.ImageInfo | None:
        return self.stack.info

    def header(self, index: int) -> Dataset | None:
        """Plane `index`'s own header: the series' attributes, the plane's geometry."""
        plane, series = self.plane, self.stack.header
        if plane is None or series is None or not 0 <= index < plane.count:
            return None
        known = self._headers.get(index)
        if known is not None:
            return known
        from pydicom.dataset import Dataset
        from pydicom.uid import generate_uid

        ds = Dataset()
        for keyword in _SERIES_KEYWORDS:
            if keyword in series:
                setattr(ds, keyword, series.data_element(keyword).value)  # type: ignore[union-attr]
        # A UID of its own per plane (deterministic), never one of the series' instances.
        ds.SOPInstanceUID = generate_uid(
            prefix=None,
            entropy_srcs=[str(series.get("SeriesInstanceUID", "")), self.kind, str(index)],
        )
        ds.ImageType = ["DERIVED", "SECONDARY", "MPR"]
        ds.Rows, ds.Columns = plane.rows, plane.columns
        ds.ImageOrientationPatient = [round(v, 6) for v in plane.orientation]
        ds.ImagePositionPatient = [round(float(v), 4) for v in plane.position(index)]
        ds.PixelSpacing = [round(plane.spacing[0], 6), round(plane.spacing[1], 6)]
        ds.SliceThickness = round(max(self.slab_mm, plane.step), 4)
        ds.InstanceNumber = index + 1
        self._headers[index] = ds
        return ds

    def geometry(self, index: int) -> render.SliceGeometry | None:
        plane = self.plane
        if plane is None or not 0 <= index < plane.count:
            return None
        return plane.slice_geometry(index)

    def frame_of_reference(self, index: int) -> str | None:
        series = self.stack.header
        value = series.get("FrameOfReferenceUID") if series is not None else None
        return str(value) if value else None

    def slot(self, index: int) -> SlotState:
        if self.stack.failure is not None:
            return "failed"
        return "ready" if self.frame(index) is not None else "loading"

    def progress(self) -> SeriesProgress | None:
        return self.stack.handle.progress()

    def changed_by(self, event: object) -> SourceChange | None:
        if getattr(event, "handle", None) is not self.stack.handle:
            return None
        was_ready, generation = self.stack.ready, self.stack.generation
        changed = self.stack.on_event(event)
        if self.stack.failure is not None and changed:
            return SourceChange("failed", None, self.stack.failure)
        if generation != self.stack.generation:
            self._headers.clear()  # planes of the volume made before (another shape)
            self._frame = None
        if self.stack.ready and (not was_ready or generation != self.stack.generation):
            return SourceChange("layout", self.count // 2)
        if changed:
            return SourceChange("frame", None)
        return SourceChange("progress")

    def set_cursor(self, index: int) -> None:
        # The loader fetches the slices nearest the cursor first: the axial plane's
        # cursor is a slice; the others need every slice, from the middle out.
        stack, plane = self.stack, self.plane
        if self.kind != "axial" or plane is None or stack.volume is None:
            return
        point = plane.position(index)
        source = round(float(stack.volume.geometry.to_voxel(point)[2]))
        indices = stack._layout_indices
        if 0 <= source < len(indices):
            stack.handle.set_cursor(indices[source])

    def set_visible(self, visible: bool) -> None:
        self.stack.set_visible(id(self), visible)

    def retry(self, index: int | None = None) -> None:
        self.stack.retry()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.stack.set_visible(id(self), False)
            self.stack.release()


class MprState:
    """The crosshair point of three plane viewports (see the module docstring).

    `viewports` maps each plane family to the id of the viewport showing it. The
    point starts at the volume's centre; UI thread only.
    """

    def __init__(
        self, layout: LayoutState, stack: MprVolume, viewports: dict[render.PlaneKind, int]
    ) -> None:
        self.layout = layout
        self.stack = stack
        self.viewports = dict(viewports)
        self.point: np.ndarray | None = None
        self.lines_visible = True
        #: Called when the point or the lines change (the page redraws the viewports).
        self.on_change: Callable[[], None] = lambda: None
        self._moving = False
        self._disconnects = [
            layout.viewport(vid).changed.connect(self._listener(kind))
            for kind, vid in self.viewports.items()
        ]

    def close(self) -> None:
        for disconnect in self._disconnects:
            disconnect()
        self._disconnects.clear()

    def state(self, kind: render.PlaneKind) -> ViewportState:
        return self.layout.viewport(self.viewports[kind])

    def kind_of(self, viewport_id: int) -> render.PlaneKind | None:
        return next((k for k, v in self.viewports.items() if v == viewport_id), None)

    def start(self) -> None:
        """The volume is known: the point at its centre, every plane through it."""
        if self.stack.volume is None:
            return
        self.point = self.stack.volume.geometry.centre
        self._follow(None)

    def _listener(self, kind: render.PlaneKind) -> Callable[[str], None]:
        def changed(topic: str) -> None:
            if self._moving:
                return
            if topic == "slice":
                self._scrolled(kind)
            elif topic == "series" and self.stack.ready:
                # This plane's viewport got its count: it goes through the point.
                self._place(kind)

        return changed

    def _place(self, kind: render.PlaneKind) -> None:
        volume, plane = self.stack.volume, self.stack.planes.get(kind)
        if volume is None or plane is None:
            return
        if self.point is None:
            self.point = volume.geometry.centre
        self._moving = True
        try:
            self.state(kind).go(plane.nearest_index(self.point))
        finally:
            self._moving = False
        self.on_change()

    def _scrolled(self, kind: render.PlaneKind) -> None:
        """A plane was scrolled: the point moves along its normal to the new plane."""
        plane = self.stack.planes.get(kind)
        if plane is None or self.point is None:
            return
        index = self.state(kind).index
        offset = (index - plane.index_of(self.point)) * plane.step
        self.point = self.point + offset * plane.normal
        self.on_change()

    def pick(self, viewport_id: int, column: float, row: float) -> None:
        """A click or drag at (column, row) of a plane's image: the point goes there and
        the other planes follow."""
        kind = self.kind_of(viewport_id)
        plane = self.stack.planes.get(kind) if kind is not None else None
        if plane is None or kind is None:
            return
        # Viewport image coordinates put pixel c over [c, c + 1); planes at its centre.
        column = min(max(column - 0.5, 0.0), plane.columns - 1.0)
        row = min(max(row - 0.5, 0.0), plane.rows - 1.0)
        self.point = plane.to_patient(self.state(kind).index, column, row)
        self._follow(kind)

    def _follow(self, moved: render.PlaneKind | None) -> None:
        point = self.point
        if point is None:
            return
        self._moving = True
        try:
            for kind, plane in self.stack.planes.items():
                if kind != moved and kind in self.viewports:
                    self.state(kind).go(plane.nearest_index(point))
        finally:
            self._moving = False
        self.on_change()

    def set_lines_visible(self, visible: bool) -> None:
        self.lines_visible = visible
        self.on_change()

    def lines(self, viewport_id: int) -> list[CrosshairLine]:
        """The other planes through the point, as lines across this viewport's image."""
        kind = self.kind_of(viewport_id)
        point, planes = self.point, self.stack.planes
        if not self.lines_visible or kind is None or point is None or kind not in planes:
            return []
        plane = planes[kind]
        index = self.state(kind).index
        found: list[CrosshairLine] = []
        for other, other_plane in planes.items():
            if other == kind or other not in self.viewports:
                continue
            ends = render.plane_line(plane, index, other_plane, point)
            if ends is not None:
                (c0, r0), (c1, r1) = ends
                found.append(
                    CrosshairLine((c0 + 0.5, r0 + 0.5), (c1 + 0.5, r1 + 0.5), PLANE_COLOURS[other])
                )
        return found
