"""Several viewports in a real window: layouts, the active one, linked scrolling.

Four series of three generated studies are opened as local files into a 2x2 layout.
Two share a Frame of Reference (a stack and the coarser multi-frame of the same
phantom), so they match by patient position; the others go by slice index. What each
viewport shows is read back from one screenshot with the phantom's slice code.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg
import numpy as np
import pydicom
import pytest

from tests.gui.driver import Driver, count_near
from viewer import phantom
from viewer.app.viewer_page import ViewerPage, layout_tag
from viewer.app.viewport_view import ACTIVE
from viewer.phantom import read_slice_code

MakeApp = Callable[..., Driver]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str]]]:
    """Three phantom studies in one folder: A (a 40-slice stack and its 20-frame
    multi-frame, one Frame of Reference), B (25 slices) and C (50 slices); and the
    (study, series) UIDs in viewport order: A's stack, A's multi-frame, B, C."""
    root = tmp_path_factory.mktemp("viewports")
    a = phantom.generate_study(root / "a", slices=40, rows=96, cols=96,
                               variants=("uncompressed", "multiframe"),
                               multiframe_frames=20, multiframe_size=96)  # fmt: skip
    b = phantom.generate_study(root / "b", slices=25, rows=96, cols=96, variants=("uncompressed",))
    c = phantom.generate_study(root / "c", slices=50, rows=96, cols=96, variants=("uncompressed",))
    series = [
        (a.study_uid, a["uncompressed"].series_uid),
        (a.study_uid, a["multiframe"].series_uid),
        (b.study_uid, b["uncompressed"].series_uid),
        (c.study_uid, c["uncompressed"].series_uid),
    ]
    return root, series


def _four_series(ui: Driver, studies: tuple[Path, list[tuple[str, str]]]) -> ViewerPage:
    """2x2, each viewport one of the four series."""
    folder, series = studies
    app = ui.app
    ui.frames_until(lambda: app.demo_study is not None and ui.slice_ready(), what="the demo")
    app.open_local([folder])
    listed = app.studies
    assert listed is not None
    # Listed as the folder is scanned: wait for all of it (40 + 1 + 25 + 50 instances).
    ui.frames_until(
        lambda: sum(r.instance_count or 0 for r in listed.rows) == 116, what="the three studies"
    )
    loader = app.list_loader
    page = app.viewer_page
    assert loader is not None and page is not None
    app.state.navigate("viewer")
    ui.frames(3)
    ui.click(layout_tag("2x2"))
    ui.frames_until(lambda: app.layout.grid == (2, 2), what="2x2")
    for viewport, (study_uid, series_uid) in enumerate(series):
        page.show_series(loader, series_uid, study_uid, viewport=viewport)
    ui.frames_until(
        lambda: all(v.count and view.slot == "ready" for v, view in zip(app.layout.visible, page.views, strict=False)),
        what="four series on screen",
        timeout=30,
    )  # fmt: skip
    return page


def _centre(ui: Driver, page: ViewerPage, viewport: int) -> None:
    box = page.views[viewport].image_box()
    assert box is not None
    x, y = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    ui.xdotool("mousemove", "--window", ui.window(), str(x), str(y))
    ui.frames(2)


def _codes(ui: Driver, page: ViewerPage, path: Path) -> list[int]:
    """The phantom slice each visible viewport shows, read from one screenshot."""
    shot = ui.screenshot(path)
    codes = []
    for view in page.views[: len(ui.app.layout.visible)]:
        box, size = view.image_box(), view.state.image_size
        assert box is not None and size is not None
        codes.append(read_slice_code(np.asarray(shot.crop(box)), (size[1], size[0])))
    return codes


def _content(page: ViewerPage, viewport: int) -> int:
    """The phantom index of what viewport `viewport` shows (instance or frame number)."""
    state = page.layout.viewport(viewport)
    source = state.source
    assert source is not None
    header = source.header(state.index)
    assert header is not None
    frames = int(header.get("NumberOfFrames") or 1)
    geometry = source.geometry(state.index)
    if frames > 1:
        assert geometry is not None
        return geometry.frame
    return int(header.InstanceNumber) - 1


def _z(page: ViewerPage, viewport: int, index: int) -> float:
    source = page.layout.viewport(viewport).source
    assert source is not None
    geometry = source.geometry(index)
    assert geometry is not None and geometry.position is not None
    return float(geometry.position[2])


def test_linked_viewports_follow_a_scroll_by_position_or_index_and_stay_once_unlinked(
    make_app: MakeApp, studies: tuple[Path, list[tuple[str, str]]], tmp_path: Path
) -> None:
    ui = make_app()
    page = _four_series(ui, studies)
    layout = ui.app.layout
    ui.click("viewer/link")
    ui.frames_until(lambda: layout.linked, what="the viewports to link")
    lead, multiframe, b, c = layout.visible
    lead.go(5)  # room to scroll on in every series (the group follows)
    ui.frames_until(lambda: b.index == 5, what="the group at slice 6")
    # Wheel down 6 times over the top-left viewport: all four follow.
    _centre(ui, page, 0)
    start = lead.index
    for _ in range(6):
        ui.xdotool("click", "5")
        ui.frames(2)
    ui.frames_until(lambda: lead.index == start + 6, what="six slices on")
    ui.frames_until(lambda: all(view.slot == "ready" for view in page.views), what="all drawn")
    # The multi-frame shows the frame nearest the stack's slice along the normal ...
    zs = [_z(page, 1, i) for i in range(multiframe.count)]
    nearest = min(range(len(zs)), key=lambda i: abs(zs[i] - _z(page, 0, lead.index)))
    assert multiframe.index == nearest != lead.index
    # ... the other studies (other frames of reference) the same slice number.
    assert b.index == c.index == lead.index
    codes = _codes(ui, page, tmp_path / "linked.png")
    assert codes == [_content(page, n) for n in range(4)]

    # L over the bottom-right viewport: it leaves the group and stays where it is.
    _centre(ui, page, 3)
    ui.xdotool("click", "1")  # the window takes the keys (and this viewport is active)
    ui.frames(3)
    ui.xdotool("key", "l")
    ui.frames_until(lambda: c.link_group is None, what="the viewport to leave the group")
    kept, kept_content = c.index, _content(page, 3)
    lead.go(lead.index + 10)
    ui.frames_until(lambda: b.index == lead.index and all(v.slot == "ready" for v in page.views),
                    what="the group to follow")  # fmt: skip
    assert c.index == kept
    codes = _codes(ui, page, tmp_path / "unlinked.png")
    assert codes == [_content(page, n) for n in range(4)] and codes[3] == kept_content


def test_layouts_from_the_toolbar_and_keys_and_the_active_viewport_is_outlined(
    make_app: MakeApp, studies: tuple[Path, list[tuple[str, str]]], tmp_path: Path
) -> None:
    ui = make_app()
    page = _four_series(ui, studies)
    layout = ui.app.layout
    # A press on the bottom-left viewport makes it the active one, outlined.
    box = page.views[2].image_box()
    assert box is not None
    ui.xdotool("mousemove", "--window", ui.window(), str(box[0] + 5), str(box[1] + 5), "click", "1")
    ui.frames_until(lambda: layout.active_id == 2, what="viewport 3 to be active")
    shot = ui.screenshot(tmp_path / "active.png")
    left, top = page.views[2].origin()
    width = page.views[2].size[0]
    outline = (int(left), int(top), int(left + width), int(top + 3))
    assert count_near(shot, outline, ACTIVE[:3], tol=30) > width * 0.8
    other = page.views[1].origin()
    assert (
        count_near(
            shot,
            (int(other[0]), int(other[1]), int(other[0] + width), int(other[1] + 3)),
            ACTIVE[:3],
            tol=30,
        )
        == 0
    )
    # Keys act on the viewport under the pointer: Down scrolls it alone (not linked).
    layout.viewport(2).go(3)
    ui.frames(2)
    before = [v.index for v in layout.visible]
    ui.xdotool("key", "Down")
    ui.frames_until(lambda: layout.viewport(2).index == before[2] + 1, what="Down on viewport 3")
    assert [v.index for v in layout.visible][:2] == before[:2]
    # Ctrl+2: 1x2; the active viewport (now hidden) hands over to the first.
    ui.xdotool("key", "ctrl+2")
    ui.frames_until(lambda: layout.grid == (1, 2), what="1x2")
    assert layout.active_id == 0 and not dpg.is_item_shown(page.views[2].canvas)
    ui.frames_until(
        lambda: not page.views[2].pool.sizes, what="the hidden viewport's texture to go"
    )
    ui.click(layout_tag("2x1"))
    ui.frames_until(lambda: layout.grid == (2, 1), what="2x1")
    # 2x1: the second viewport goes under the first.
    ui.frames(3)
    (x0, y0), (x1, y1) = page.views[0].origin(), page.views[1].origin()
    assert x1 == x0 and y1 > y0 + page.views[0].size[1] - 1
    ui.xdotool("key", "ctrl+1")
    ui.frames_until(lambda: layout.grid == (1, 1), what="1x1")
    ui.frames_until(lambda: all(not v.pool.sizes for v in page.views[1:]), what="one texture")


def _sagittal(stack: phantom.SeriesManifest, folder: Path) -> tuple[str, Path]:
    """The stack resliced into sagittal images (same study and Frame of Reference):
    columns along +y, rows down -z; its series UID and folder."""
    slices = sorted(
        (pydicom.dcmread(path) for path in stack.paths),
        key=lambda ds: float(ds.ImagePositionPatient[2]),
    )
    volume = np.stack([ds.pixel_array for ds in slices])[::-1]  # top slice first
    top = slices[-1]
    spacing = float(slices[1].ImagePositionPatient[2]) - float(slices[0].ImagePositionPatient[2])
    column_mm = float(top.PixelSpacing[1])
    x0, y0, z_top = (float(v) for v in top.ImagePositionPatient)
    series_uid = phantom.phantom_uid("sagittal", stack.series_uid)
    folder.mkdir()
    for k in range(volume.shape[2]):
        ds = copy.deepcopy(top)
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 9
        ds.SeriesDescription = "Sagittal reslice"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = phantom.phantom_uid(
            "sagittal", stack.series_uid, k
        )
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
        ds.ImagePositionPatient = [x0 + k * column_mm, y0, z_top]
        ds.PixelSpacing = [spacing, float(top.PixelSpacing[0])]
        image = np.ascontiguousarray(volume[:, :, k])
        ds.Rows, ds.Columns = image.shape
        ds.PixelData = image.tobytes()
        for keyword in ("SliceLocation",):
            if keyword in ds:
                delattr(ds, keyword)
        ds.save_as(folder / f"sag{k:03d}.dcm", enforce_file_format=True)
    return series_uid, folder


def test_the_active_slice_is_a_reference_line_across_the_other_plane(
    make_app: MakeApp, tmp_path: Path
) -> None:
    manifest = phantom.generate_study(tmp_path / "ct", slices=40, rows=96, cols=96,
                                      variants=("uncompressed",))  # fmt: skip
    stack = manifest["uncompressed"]
    sagittal_uid, _ = _sagittal(stack, tmp_path / "ct" / "sagittal")
    ui = make_app()
    app = ui.app
    ui.frames_until(lambda: app.demo_study is not None and ui.slice_ready(), what="the demo")
    app.open_local([tmp_path / "ct"])
    # The folder is listed as it is scanned: wait for all of it (40 + 96 instances).
    ui.frames_until(
        lambda: app.studies is not None and [r.instance_count for r in app.studies.rows] == [136],
        what="the study, scanned",
    )
    page, loader = app.viewer_page, app.list_loader
    assert page is not None and loader is not None
    app.state.navigate("viewer")
    app.layout.set_grid("1x2")
    page.show_series(loader, stack.series_uid, manifest.study_uid, viewport=0)
    page.show_series(loader, sagittal_uid, manifest.study_uid, viewport=1)
    axial, sagittal = app.layout.visible
    ui.frames_until(lambda: axial.count == 40 and sagittal.count == 96
                    and all(v.slot == "ready" for v in page.views[:2]), what="both planes",
                    timeout=30)  # fmt: skip
    sagittal.go(48)  # through the middle of the body
    app.layout.activate(0)
    rows, zs = [], []
    for index in (10, 25):
        axial.go(index)
        ui.frames_until(lambda: page.views[0].slot == "ready" and page.views[1].reference is not None,
                        what=f"the line for slice {index + 1}")  # fmt: skip
        ui.park_mouse()
        line = page.views[1].reference
        transform = page.views[1].transform()
        assert line is not None and transform is not None
        (u0, v0), (u1, v1) = line
        assert v0 == pytest.approx(v1) and {u0, u1} == {0.0, 96.0}  # across, level
        # Its row: the axial slice's z counted down from the sagittal image's top.
        z = float(_z_of(page, 0, index))
        geometry = sagittal.source.geometry(sagittal.index)  # type: ignore[union-attr]
        assert geometry is not None and geometry.position is not None
        assert v0 == pytest.approx((float(geometry.position[2]) - z) / 1.25 + 0.5)
        shot = ui.screenshot(tmp_path / f"reference{index}.png")
        top = page.views[1].origin()[1]
        y = round(top + transform.to_screen((0.0, v0))[1])
        box = page.views[1].image_box()
        assert box is not None
        band = np.asarray(shot.crop((box[0], y - 2, box[2], y + 3)), np.int16)
        # The line's blue over the (grey or black) image, blended at its edges.
        blue = (band[..., 2] > band[..., 0] + 60) & (band[..., 2] > 120)
        assert blue.any(axis=0).sum() > (box[2] - box[0]) * 0.9
        rows.append(y)
        zs.append(z)
    # 15 slices on (15 x 1.25 mm): the line moved 15 of the sagittal image's 1.25 mm
    # rows on screen, down where z went down (its rows run down -z), up otherwise.
    transform = page.views[1].transform()
    assert transform is not None
    assert abs(zs[0] - zs[1]) == pytest.approx(15 * 1.25)
    moved_rows = (zs[0] - zs[1]) / 1.25
    assert rows[1] - rows[0] == pytest.approx(moved_rows * transform.scale[1], abs=1.5)
    assert page.views[0].reference is None  # no line on the active viewport itself


def _z_of(page: ViewerPage, viewport: int, index: int) -> float:
    source = page.layout.viewport(viewport).source
    assert source is not None
    geometry = source.geometry(index)
    assert geometry is not None and geometry.position is not None
    return float(geometry.position[2])
