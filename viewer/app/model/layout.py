"""The Viewer's layout: a grid of viewports, which one is active, and how they link.

`LayoutState` holds `MAX_VIEWPORTS` `ViewportState`s and shows the first rows x
columns of them (1x1, 1x2, 2x1, 2x2, 1x3); the others keep their series, hidden (their
loading paused), so going back to 2x2 brings them back. As immvision links images by
a shared key, linking is data here: viewports with the same `link_group` scroll
together, and with `link_camera` / `link_contrast` on they also share zoom/pan and
window/level. A scroll in one is matched in the others by patient position when the
planes are parallel and share a Frame of Reference (or were aligned once with
`sync_here`), by slice index otherwise (`sync`). Plain Python: tested with no display.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from ..state import Signal
from .source import ViewportSource
from .sync import Geometry, Vector, nearest_index, parallel, position_along, slice_normal
from .viewport import SeriesText, ViewportState, ViewportTopic

__all__ = ["GRIDS", "MAX_VIEWPORTS", "Grid", "LayoutState", "LayoutTopic"]

Grid = tuple[int, int]
#: The layouts offered, by name (rows x columns).
GRIDS: dict[str, Grid] = {
    "1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1), "2x2": (2, 2),
    "1x3": (1, 3),  # the MPR layout: axial, coronal, sagittal side by side
}  # fmt: skip
MAX_VIEWPORTS = 4
#: "grid": rows x columns changed; "active": another viewport is active; "links":
#: link groups, their toggles or alignment changed; "sources": a viewport got a source.
LayoutTopic = Literal["grid", "active", "links", "sources"]
#: The one link group the toolbar makes ("Link"); more can exist (`link`).
DEFAULT_GROUP = 1


class LayoutState:
    """See the module docstring. UI thread only."""

    def __init__(self, count: int = MAX_VIEWPORTS) -> None:
        self.changed: Signal[LayoutTopic] = Signal()
        self.viewports = [ViewportState(i) for i in range(count)]
        self.grid: Grid = (1, 1)
        self.active_id = 0
        self.link_camera = False
        self.link_contrast = False
        self.banner: str | None = None
        # Alignment from "sync here": mm added to a viewport's positions, slices added to
        # its index, and which viewports may be matched by position across frames.
        self._offset_mm: dict[int, float] = {}
        self._offset_index: dict[int, int] = {}
        self._aligned: set[int] = set()
        self._positions: dict[int, tuple[object, int, Vector, list[float | None]]] = {}
        self._propagating = False
        for viewport in self.viewports:
            viewport.changed.connect(self._listener(viewport))

    # -- the grid -----------------------------------------------------------------------

    @property
    def visible(self) -> list[ViewportState]:
        rows, columns = self.grid
        return self.viewports[: rows * columns]

    @property
    def active(self) -> ViewportState:
        return self.viewports[self.active_id]

    def viewport(self, viewport_id: int) -> ViewportState:
        return self.viewports[viewport_id]

    def set_grid(self, grid: Grid | str) -> None:
        """Show rows x columns viewports; those beyond keep their series, paused."""
        if isinstance(grid, str):
            if grid not in GRIDS:
                raise ValueError(f"unknown layout {grid!r}; one of {', '.join(GRIDS)}")
            grid = GRIDS[grid]
        if grid not in GRIDS.values():
            raise ValueError(f"unsupported layout {grid[0]}x{grid[1]}")
        if grid == self.grid:
            return
        self.grid = grid
        shown = self.visible
        for viewport in self.viewports:
            if viewport.source is not None:
                viewport.source.set_visible(viewport in shown)
        if self.active not in shown:
            self.activate(0)
        self.changed.emit("grid")

    def activate(self, viewport_id: int) -> None:
        if not 0 <= viewport_id < len(self.viewports):
            raise ValueError(f"no viewport {viewport_id}")
        if viewport_id != self.active_id:
            self.active_id = viewport_id
            self.changed.emit("active")

    # -- sources ------------------------------------------------------------------------

    def load(self, viewport_id: int, source: ViewportSource | None) -> ViewportState:
        """Show `source` in a viewport (None: empty it); the series it showed is closed."""
        viewport = self.viewports[viewport_id]
        old = viewport.source
        if old is not None and old is not source:
            old.close()
        viewport.source = source
        self._forget_alignment(viewport_id)
        # Reset without moving the source's cursor: one set before its layout is known
        # would make the loader wait for it instead of showing the first arrival.
        viewport.on_cursor = lambda index: None
        viewport.open_series(0, SeriesText())
        if source is not None:
            viewport.on_cursor = source.set_cursor
            source.set_visible(viewport in self.visible)
        self.changed.emit("sources")
        return viewport

    def close(self) -> None:
        """Close every viewport's source (the page goes, the app exits)."""
        for viewport in self.viewports:
            if viewport.source is not None:
                viewport.source.close()
                viewport.source = None

    def next_empty(self) -> ViewportState | None:
        """The first visible viewport without a source, if any."""
        return next((v for v in self.visible if v.source is None), None)

    # -- link groups --------------------------------------------------------------------

    def members(self, viewport: ViewportState) -> list[ViewportState]:
        """The visible viewports linked with `viewport` (itself included); [] if alone."""
        if viewport.link_group is None:
            return []
        return [v for v in self.visible if v.link_group == viewport.link_group]

    @property
    def linked(self) -> bool:
        """Whether the visible viewports scroll together (the toolbar's "Link")."""
        visible = self.visible
        return len(visible) > 1 and all(v.link_group == DEFAULT_GROUP for v in visible)

    def link(self, viewport_ids: Sequence[int], group: int = DEFAULT_GROUP) -> None:
        for viewport_id in viewport_ids:
            self.viewports[viewport_id].link_group = group
        self.changed.emit("links")
        self._follow(self.active)

    def link_all(self, on: bool = True) -> None:
        """Link (or unlink) every visible viewport; the others follow the active one."""
        for viewport in self.visible:
            viewport.link_group = DEFAULT_GROUP if on else None
        self.changed.emit("links")
        if on:
            self._follow(self.active)

    def unlink(self, viewport_id: int) -> None:
        """The viewport leaves its group: it scrolls alone from now on."""
        viewport = self.viewports[viewport_id]
        if viewport.link_group is not None:
            viewport.link_group = None
            self._forget_alignment(viewport_id)
            self.changed.emit("links")

    def toggle_link(self, viewport_id: int) -> None:
        """Leave the group, or join the toolbar's group (following its active member)."""
        viewport = self.viewports[viewport_id]
        if viewport.link_group is not None:
            self.unlink(viewport_id)
            return
        viewport.link_group = DEFAULT_GROUP
        self.changed.emit("links")
        others = [v for v in self.members(viewport) if v is not viewport]
        if others:
            leader = self.active if self.active in others else others[0]
            self._follow(leader)

    def set_link_camera(self, on: bool) -> None:
        self.link_camera = on
        self.changed.emit("links")
        if on:
            self._share(self.active, "camera")

    def set_link_contrast(self, on: bool) -> None:
        self.link_contrast = on
        self.changed.emit("links")
        if on:
            self._share(self.active, "contrast")

    def sync_here(self) -> None:
        """Link the visible viewports at the slices they show now: from here on they
        match by position (even across Frames of Reference) or by index, relative to
        these slices. Scroll each alone to the same anatomy first, then sync."""
        leader = self.active
        visible = self.visible
        if len(visible) < 2:
            return
        for viewport in visible:
            viewport.link_group = DEFAULT_GROUP
        lead_geometry = self._geometry(leader)
        for viewport in visible:
            self._aligned.add(viewport.id)
            if viewport is leader:
                continue
            self._offset_index[viewport.id] = (
                leader.index + self._offset_index.get(leader.id, 0) - viewport.index
            )
            normal = slice_normal(self._geometry(viewport))
            if normal is None:
                continue
            lead = position_along(lead_geometry, normal)
            own = position_along(self._geometry(viewport), normal)
            if lead is not None and own is not None:
                self._offset_mm[viewport.id] = lead + self._offset_mm.get(leader.id, 0.0) - own
        self.changed.emit("links")

    # -- matching -----------------------------------------------------------------------

    def match(self, leader: ViewportState, other: ViewportState) -> int | None:
        """The slice of `other` that matches the one `leader` shows; None if `other`
        has nothing to show yet."""
        if leader.source is None or other.source is None or not other.count:
            return None
        by_position = self._match_position(leader, other)
        if by_position is not None:
            return by_position
        index = leader.index + self._offset_index.get(leader.id, 0)
        index -= self._offset_index.get(other.id, 0)
        return max(0, min(other.count - 1, index))

    def matched_by_position(self, leader: ViewportState, other: ViewportState) -> bool:
        return self._match_position(leader, other) is not None

    def _match_position(self, leader: ViewportState, other: ViewportState) -> int | None:
        source, other_source = leader.source, other.source
        if source is None or other_source is None:
            return None
        geometry = self._geometry(leader)
        normal = slice_normal(self._geometry(other)) or slice_normal(other_source.geometry(0))
        if normal is None or not parallel(slice_normal(geometry), normal):
            return None
        frame = source.frame_of_reference(leader.index)
        same_frame = frame is not None and frame == other_source.frame_of_reference(other.index)
        if not same_frame and not {leader.id, other.id} <= self._aligned:
            return None
        lead = position_along(geometry, normal)
        if lead is None:
            return None
        target = lead + self._offset_mm.get(leader.id, 0.0) - self._offset_mm.get(other.id, 0.0)
        return nearest_index(self._positions_of(other, normal), target)

    def _geometry(self, viewport: ViewportState) -> Geometry | None:
        source = viewport.source
        if source is None or not viewport.count:
            return None
        return source.geometry(viewport.index)

    def _positions_of(self, viewport: ViewportState, normal: Vector) -> list[float | None]:
        """Each slice's position along `normal` (None for slices not parallel to it),
        worked out once per source, count and normal."""
        source = viewport.source
        assert source is not None
        known = self._positions.get(viewport.id)
        if known is not None and (known[0], known[1], known[2]) == (source, viewport.count, normal):
            return known[3]
        positions: list[float | None] = []
        for index in range(viewport.count):
            geometry = source.geometry(index)
            same_plane = parallel(slice_normal(geometry), normal)
            positions.append(position_along(geometry, normal) if same_plane else None)
        self._positions[viewport.id] = (source, viewport.count, normal, positions)
        return positions

    # -- propagation --------------------------------------------------------------------

    def _listener(self, viewport: ViewportState) -> Callable[[ViewportTopic], None]:
        def changed(topic: ViewportTopic) -> None:
            if self._propagating or viewport.link_group is None:
                return
            if topic == "slice":
                self._follow(viewport)
            elif topic == "camera" and self.link_camera:
                self._share(viewport, "camera")
            elif topic == "contrast" and self.link_contrast:
                self._share(viewport, "contrast")
            elif topic == "series":
                self._forget_alignment(viewport.id)
                self._catch_up(viewport)

        return changed

    def _catch_up(self, viewport: ViewportState) -> None:
        """A linked viewport got its layout: it starts at the slice matching its group."""
        others = [v for v in self.members(viewport) if v is not viewport and v.count]
        if not viewport.count or not others:
            return
        leader = self.active if self.active in others else others[0]
        index = self.match(leader, viewport)
        if index is not None:
            self._propagating = True
            try:
                viewport.go(index)
            finally:
                self._propagating = False

    def _follow(self, leader: ViewportState) -> None:
        """The other members of `leader`'s group show the slices matching its own."""
        if self._propagating:
            return
        self._propagating = True
        try:
            for other in self.members(leader):
                if other is not leader:
                    index = self.match(leader, other)
                    if index is not None:
                        other.go(index)
        finally:
            self._propagating = False

    def _share(self, leader: ViewportState, what: Literal["camera", "contrast"]) -> None:
        if self._propagating:
            return
        self._propagating = True
        try:
            for other in self.members(leader):
                if other is leader:
                    continue
                if what == "camera":
                    other.set_camera(leader.camera)
                else:
                    other.set_contrast(leader.contrast)
        finally:
            self._propagating = False

    def _forget_alignment(self, viewport_id: int) -> None:
        self._offset_mm.pop(viewport_id, None)
        self._offset_index.pop(viewport_id, None)
        self._aligned.discard(viewport_id)
        self._positions.pop(viewport_id, None)
