"""DICOMs against the test PACS: search, open the study, open the CT series, see slice 1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg
import numpy as np
import pytest

from net import ServerConfig
from tests.gui.driver import Driver
from tests.support.pacs import TestPacs
from viewer.app.studies_page import field_tag, series_tag, study_tag
from viewer.app.studies_state import StudiesState

MakeApp = Callable[..., Driver]


def _search_phantom(ui: Driver) -> StudiesState:
    """Search the DICOMs page for the phantom's patient ID; the page once it answered."""
    studies = ui.app.studies
    assert studies is not None
    ui.type_into(field_tag("patient_id"), "ZHIVA-PHANTOM")
    ui.click("studies/search")
    ui.frames_until(lambda: studies.status in ("ready", "empty", "error"), what="the search")
    return studies


@pytest.mark.integration
def test_search_finds_the_phantom_and_its_ct_series_opens_in_the_viewer(
    make_app: MakeApp,
    select_pacs: Callable[..., ServerConfig],
    pacs: TestPacs,
    tmp_path: Path,
) -> None:
    select_pacs()

    ui = make_app()
    app = ui.app
    ui.frames_until(lambda: app.server_loader is not None, what="the server connection")
    app.state.navigate("studies")
    ui.frames(3)
    studies = _search_phantom(ui)
    assert studies.status == "ready", studies.message
    uids = [s.study_uid for s in studies.rows]
    assert pacs.data.study_uid in uids
    ui.shot = ui.screenshot(tmp_path / "list.png")  # type: ignore[attr-defined]

    ui.frames_until(lambda: dpg.does_item_exist(study_tag(pacs.data.study_uid)), what="the row")
    ui.click(study_tag(pacs.data.study_uid))
    series_uid = pacs.data.series("uncompressed").series_uid
    ui.frames_until(
        lambda: dpg.does_item_exist(series_tag(series_uid)), what="the series list", timeout=30
    )
    ui.click(series_tag(series_uid))
    ui.frames_until(lambda: app.state.page == "viewer", what="the viewer")
    ui.frames_until(ui.slice_ready, what="the first slice", timeout=30)
    code, _ = ui.shown_slice(tmp_path / "viewer.png")
    assert code == ui.slice_content(app.viewer.index)

    # Scroll the PACS series with the wheel: slice n shows slice n's content.
    state = app.viewer
    ui.frames_until(lambda: state.count == 300, what="the series layout", timeout=30)
    state.go(150)
    ui.frames_until(lambda: ui.slice_ready(150), what="slice 151", timeout=30)
    ui.wheel_over_image("5", 4)  # wheel down: towards the end
    ui.frames_until(lambda: ui.slice_ready(154), what="four slices on", timeout=30)
    code, before = ui.shown_slice(tmp_path / "scrolled.png")
    assert code == ui.slice_content(154)
    assert ui.slice_content(154) != ui.slice_content(150)

    # Window/level by a left drag: down raises the level, soft tissue gets darker.
    page = app.viewer_page
    assert page is not None
    box = page.image_box()
    assert box is not None and state.window is not None
    level = state.window[0]
    x, y = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    ui.xdotool("mousemove", "--window", ui.window(), str(x), str(y), "mousedown", "1")
    ui.frames(3)
    for step in range(1, 5):
        ui.xdotool("mousemove", "--window", ui.window(), str(x), str(y + 25 * step))
        ui.frames(2)
    ui.xdotool("mouseup", "1")
    ui.frames_until(lambda: state.window is not None and state.window[0] > level, what="W/L")
    code, after = ui.shown_slice(tmp_path / "windowed.png")
    assert code == ui.slice_content(154)  # the same slice, still readable
    inner = (x - 20, y + 40, x + 20, y + 60)  # soft tissue below the centre
    mean_before = float(np.asarray(before.crop(inner), dtype=np.float64).mean())
    mean_after = float(np.asarray(after.crop(inner), dtype=np.float64).mean())
    assert mean_after < mean_before - 10, (mean_before, mean_after)


@pytest.mark.integration
def test_fixing_the_selected_servers_port_in_settings_reconnects_the_study_list(
    make_app: MakeApp,
    select_pacs: Callable[..., ServerConfig],
    pacs: TestPacs,
    tmp_path: Path,
) -> None:
    # The connection used to be kept until restart because only the server id was
    # compared: an edit of the selected server now makes a new one.
    from tests.support.pacs import free_port
    from viewer.app.servers_page import field_tag as server_field
    from viewer.app.shell import nav_tag

    wrong = pacs.base_url.replace(f":{pacs.port}/", f":{free_port()}/")
    select_pacs(url=wrong)
    ui = make_app()
    app = ui.app
    ui.click(nav_tag("studies"))
    ui.frames_until(lambda: app.server_loader is not None, what="the server connection")
    studies = _search_phantom(ui)
    assert studies.status == "error", studies.message
    old_client = app.server_client
    assert old_client is not None

    ui.click(nav_tag("settings"))
    ui.frames_until(lambda: app.state.page == "settings", what="Settings")
    ui.type_into(server_field("url"), pacs.base_url)
    ui.click("servers/save")
    servers = app.servers
    assert servers is not None
    ui.frames_until(
        lambda: servers.message is not None and servers.message.text.startswith("Saved"),
        what="the save",
    )
    ui.click(nav_tag("studies"))
    ui.frames_until(
        lambda: app.server_client is not None and app.server_client is not old_client,
        what="a new connection",
        timeout=30,
    )
    assert app.server_config is not None and app.server_config.url == pacs.base_url
    assert old_client not in app._clients  # the old one was closed, not kept
    ui.click("studies/search")
    ui.frames_until(lambda: studies.status in ("ready", "empty", "error"), what="the search")
    assert studies.status == "ready", studies.message
    assert pacs.data.study_uid in [s.study_uid for s in studies.rows]
    ui.frames_until(lambda: dpg.does_item_exist(study_tag(pacs.data.study_uid)), what="the row")
    shot = ui.screenshot(tmp_path / "reconnected.png")
    left, top, right, bottom = ui.box(study_tag(pacs.data.study_uid))
    row = np.asarray(shot.crop((left, top, right, bottom)))
    assert row.size and int(row.max()) - int(row.min()) > 60  # the row is drawn, with text
