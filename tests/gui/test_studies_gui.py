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
from viewer.phantom import read_slice_code
from viewer.settings import ServerRegistry, resolve_paths

MakeApp = Callable[..., Driver]


@pytest.mark.integration
def test_search_finds_the_phantom_and_its_ct_series_opens_in_the_viewer(
    make_app: MakeApp,
    isolated_env: Path,
    pacs: TestPacs,
    pacs_server_config: ServerConfig,
    tmp_path: Path,
) -> None:
    registry = ServerRegistry.open(resolve_paths(isolated_env), fetch_organisation=False)
    registry.add(pacs_server_config)
    registry.select(pacs_server_config.id)
    registry.secrets.set(pacs_server_config.id, "password", pacs.users["zhiva-admin"])

    ui = make_app()
    app = ui.app
    ui.frames_until(lambda: app.server_loader is not None, what="the server connection")
    app.state.navigate("studies")
    ui.frames(3)
    studies = app.studies
    assert studies is not None
    ui.type_into(field_tag("patient_id"), "ZHIVA-PHANTOM")
    ui.click("studies/search")
    ui.frames_until(lambda: studies.status in ("ready", "empty", "error"), what="the search")
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
    page = app.viewer_page
    assert page is not None
    ui.frames_until(
        lambda: app.viewer.count > 0 and page.slot == "ready" and page.image_box() is not None,
        what="the first slice",
        timeout=30,
    )
    box = page.image_box()
    assert box is not None and app.viewer.image_size is not None
    shot = ui.screenshot(tmp_path / "viewer.png")
    columns, rows = app.viewer.image_size
    code = read_slice_code(np.asarray(shot.crop(box)), source_shape=(rows, columns))
    layout = page.loader.layout if page.loader is not None else None
    assert layout is not None
    assert code == int(layout.header(app.viewer.index).InstanceNumber) - 1
