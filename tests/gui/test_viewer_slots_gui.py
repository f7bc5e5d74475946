"""The Viewer page's per-slice states in a real window: loading and failed slices.

A slice that is not in memory is drawn as a placeholder ("Loading…", or "failed —
click to retry"), never as the previous slice's image under the new slice's number.
The demo series is served through a `LocalFolderSource` that holds back or breaks
chosen instances in both of the loader's paths (left out of the bulk stream, their
single retrieval waiting at a gate or failing), so which slice is missing, and until
when, is decided by the test, not by timing. What the canvas shows is read back from
screenshots: the image's pixels, the placeholder's grey text, the phantom's slice code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import dearpygui.dearpygui as dpg
import numpy as np
from PIL import Image
from pydicom.dataset import Dataset

from net import RetryPolicy, TransportError
from tests.gui.driver import Box, Driver, count_near
from viewer.app.model.viewport import ViewportState
from viewer.app.viewer_page import CANVAS, ViewerPage
from viewer.demo import DemoStudy
from viewer.loader import LocalFolderSource, SeriesHandle, SliceState, build_layout

MakeApp = Callable[..., Driver]

#: A held retrieval waits at most this long: a test still waiting has failed already.
HOLD_TIMEOUT = 30.0
#: Two attempts a few milliseconds apart, then "failed": the retry path, kept fast.
FAST_RETRY = RetryPolicy(max_attempts=2, backoff_base=0.001, backoff_max=0.005)
#: The colour `ViewerPage` draws its placeholder text in.
PLACEHOLDER = (160, 160, 160)


class FaultySource(LocalFolderSource):
    """A folder whose `held` instances wait for `released` and whose `broken` ones
    fail (a transient `TransportError`, every time) until `healed`.

    Both are always left out of the series stream, so only a single retrieval can
    bring them, and that one waits or fails as the test says: when a slice arrives
    does not depend on how far the stream got.
    """

    def __init__(
        self,
        root: Path,
        *,
        held: frozenset[str] = frozenset(),
        broken: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(root)
        self.held = held
        self.broken = broken
        self.released = threading.Event()
        self.healed = threading.Event()
        self._attempts_lock = threading.Lock()
        #: Single retrievals asked for, per SOP Instance UID.
        self.attempts: dict[str, int] = {}

    def iter_series(self, study_uid: str, series_uid: str) -> Iterator[Dataset]:
        for ds in super().iter_series(study_uid, series_uid):
            sop_uid = str(ds.SOPInstanceUID)
            if sop_uid not in self.held and sop_uid not in self.broken:
                yield ds

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        with self._attempts_lock:
            self.attempts[sop_uid] = self.attempts.get(sop_uid, 0) + 1
        if sop_uid in self.held:
            self.released.wait(HOLD_TIMEOUT)
        if sop_uid in self.broken and not self.healed.is_set():
            raise TransportError(f"injected failure for {sop_uid}")
        return super().retrieve_instance(study_uid, series_uid, sop_uid)

    def open_everything(self) -> None:
        """Let every held and broken instance through (the end of a test, pass or fail)."""
        self.released.set()
        self.healed.set()


def _demo(make_app: MakeApp) -> tuple[Driver, DemoStudy]:
    """An app and its demo study, once the app has put the demo on the Viewer page.

    The app opens the demo by itself (with ``demo=True``, and on a first launch
    without it too); waiting for that means it cannot replace, a moment later, the
    series the test opens.
    """
    ui = make_app(demo=True)
    ui.frames_until(lambda: ui.app.demo_study is not None, what="the demo")
    demo = ui.app.demo_study
    assert demo is not None
    return ui, demo


def _sop_uids(demo: DemoStudy) -> list[str]:
    """The demo's SOP Instance UIDs in the loader's slice order (by geometry)."""
    headers = LocalFolderSource(demo.root).series_metadata(demo.study_uid, demo.series_uid)
    layout = build_layout(demo.study_uid, demo.series_uid, headers)
    return [ref.sop_uid for ref in layout.slices]


def _open(ui: Driver, source: FaultySource, demo: DemoStudy, cursor: int) -> ViewerPage:
    """Open the series on the Viewer page as `App._demo_ready` does, at `cursor`."""
    app = ui.app
    # Over the app's hub, so its events reach the page; app.close() shuts it down.
    loader = app.loader_hub().loader(source, retry=FAST_RETRY, owns_source=True)
    app.loaders.append(loader)
    page = app.ensure_viewer_page()
    page.set_banner(None)
    page.show_series(loader, demo.series_uid, demo.study_uid, cursor=cursor)
    app.state.navigate("viewer")
    return page


def _open_on(
    ui: Driver, source: FaultySource, demo: DemoStudy, index: int
) -> tuple[ViewerPage, SeriesHandle, Box, Box]:
    """Open the series at `index` and wait for it: the page, its handle, where the
    image is drawn and the band the placeholder text goes in."""
    page = _open(ui, source, demo, cursor=index)
    ui.frames_until(lambda: ui.slice_ready(index), what=f"slice {index + 1}")
    assert page.handle is not None
    image_box = page.image_box()
    assert image_box is not None
    return page, page.handle, image_box, _text_band(ui)


def _text_band(ui: Driver) -> Box:
    """Where the placeholder line is drawn: a band across the canvas at its middle."""
    left, top, right, bottom = ui.box(CANVAS)
    middle = (top + bottom) // 2
    return left, middle - 6, right, middle + 30


def _image_pixels(shot: Image.Image, box: Box, band: Box) -> int:
    """Grey pixels brighter than the black background in `box`, outside `band`.

    The phantom is grey; the corner overlays are yellow and the placeholder text is
    inside the band, so neither counts.
    """
    region = np.asarray(shot.crop(box), dtype=np.int16)
    grey = (region.min(axis=-1) > 40) & (np.ptp(region, axis=-1) < 24)
    top, bottom = band[1] - box[1], band[3] - box[1]
    grey[max(0, top) : max(0, bottom)] = False
    return int(grey.sum())


def _drawn_texts() -> list[str]:
    """The text of every text item on the canvas (the placeholder, the overlays)."""
    texts = []
    for item in dpg.get_item_children(CANVAS, slot=2) or []:
        text = dpg.get_item_configuration(item).get("text")
        if isinstance(text, str):
            texts.append(text)
    return texts


def _point_at_canvas_middle(ui: Driver) -> None:
    left, top, right, bottom = ui.box(CANVAS)
    x, y = (left + right) // 2, (top + bottom) // 2
    ui.xdotool("mousemove", "--window", ui.window(), str(x), str(y))
    ui.frames(3)


def test_a_slice_not_yet_loaded_shows_a_placeholder_never_the_previous_image(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui, demo = _demo(make_app)
    neighbour, held = 30, 31  # layout positions: the wheel goes from one to the other
    sops = _sop_uids(demo)
    source = FaultySource(demo.root, held=frozenset({sops[held]}))
    try:
        page, handle, image_box, band = _open_on(ui, source, demo, neighbour)
        assert handle.state(held) is not SliceState.READY
        code, neighbour_shot = ui.shown_slice(tmp_path / "neighbour.png")
        assert code == ui.slice_content(neighbour)
        # The check below has teeth: the neighbour's image is there to be left behind.
        assert _image_pixels(neighbour_shot, image_box, band) > 1000

        _point_at_canvas_middle(ui)
        ui.xdotool("click", "5")  # wheel down: one slice on
        ui.frames_until(lambda: page.state.index == held, what="the wheel to move one slice")
        # The loader is asking for it (the retrieval waits at the gate): still loading.
        ui.frames_until(lambda: sops[held] in source.attempts, what="the held slice's request")
        assert page.slot == "loading"
        assert page.image_box() is None
        assert handle.state(held) is not SliceState.READY
        placeholder = ViewportState.placeholder("loading")
        assert placeholder
        assert f"Slice {held + 1}: {placeholder}" in _drawn_texts()
        shot = ui.screenshot(tmp_path / "held.png")
        assert _image_pixels(shot, image_box, band) == 0
        assert count_near(shot, band, PLACEHOLDER, tol=12) > 30

        source.released.set()
        ui.frames_until(lambda: ui.slice_ready(held), what="the held slice once released")
        code, _ = ui.shown_slice(tmp_path / "released.png")
        assert code == ui.slice_content(held)
        assert ui.slice_content(held) != ui.slice_content(neighbour)
    finally:
        source.open_everything()


def test_a_failed_slice_shows_failed_and_a_click_retries_it(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui, demo = _demo(make_app)
    neighbour, broken = 20, 21  # layout positions: Down goes from one to the other
    sops = _sop_uids(demo)
    source = FaultySource(demo.root, broken=frozenset({sops[broken]}))
    try:
        page, handle, image_box, band = _open_on(ui, source, demo, neighbour)

        _point_at_canvas_middle(ui)
        ui.xdotool("click", "1")  # focus for the key; a click on a drawn slice does nothing
        ui.frames(3)
        ui.xdotool("key", "Down")
        ui.frames_until(lambda: page.state.index == broken, what="Down to move one slice")
        ui.frames_until(lambda: page.slot == "failed", what="the slice to fail")
        assert handle.state(broken) is SliceState.FAILED
        # Failed only after the loader's own retries.
        assert source.attempts[sops[broken]] >= FAST_RETRY.max_attempts
        assert page.image_box() is None
        failed = ViewportState.placeholder("failed")
        assert failed is not None and "retry" in failed
        assert f"Slice {broken + 1}: {failed}" in _drawn_texts()
        shot = ui.screenshot(tmp_path / "failed.png")
        assert _image_pixels(shot, image_box, band) == 0
        assert count_near(shot, band, PLACEHOLDER, tol=12) > 30
        # Nothing retries a failed slice by itself.
        attempts = source.attempts[sops[broken]]
        ui.frames(10)
        assert page.slot == "failed"
        assert source.attempts[sops[broken]] == attempts

        source.healed.set()  # the server is back; the user clicks the placeholder
        _point_at_canvas_middle(ui)
        ui.xdotool("click", "1")
        ui.frames_until(lambda: ui.slice_ready(broken), what="the slice after the retry click")
        assert source.attempts[sops[broken]] == attempts + 1
        assert any(
            e.kind == "retry" and e.index == broken and e.detail == "user" for e in handle.trace()
        )
        code, _ = ui.shown_slice(tmp_path / "retried.png")
        assert code == ui.slice_content(broken)
    finally:
        source.open_everything()


def test_a_series_whose_every_instance_failed_says_why_and_a_click_retries_it(
    make_app: MakeApp, tmp_path: Path
) -> None:
    # Issue 13 item 12, viewer side: never "Loading…" forever.
    ui, demo = _demo(make_app)
    source = FaultySource(demo.root, broken=frozenset(_sop_uids(demo)))
    try:
        page = _open(ui, source, demo, cursor=0)
        ui.frames_until(lambda: page.failure is not None, what="the series to fail")
        ui.frames_until(lambda: page.slot == "failed", what="the failed state")
        assert "injected failure" in (page.failure or "")
        texts = _drawn_texts()
        assert any(page.failure in t and "Click to retry" in t for t in texts), texts
        assert not any("Loading" in t for t in texts)
        assert page.state.progress is None  # no progress bar left spinning
        shot = ui.screenshot(tmp_path / "series-failed.png")
        assert count_near(shot, _text_band(ui), PLACEHOLDER, tol=12) > 30

        source.healed.set()
        _point_at_canvas_middle(ui)
        ui.xdotool("click", "1")
        ui.frames_until(lambda: page.failure is None and ui.slice_ready(), what="the retry")
        code, _ = ui.shown_slice(tmp_path / "recovered.png")
        assert code == ui.slice_content(page.state.index)
    finally:
        source.open_everything()
