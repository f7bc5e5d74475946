"""Settings > Cache in a real window, and the disk cache across a restart of the app.

The restart test is against the test PACS: a series opened once, the app closed and
started again over the same config dir, the series opened again — nginx's access log
must show no request for that series, and the first slice must come from the disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg
import pytest

from net import ServerConfig
from tests.gui.driver import Driver
from tests.support.pacs import TestPacs
from viewer.app.shell import CACHE_TAB

MakeApp = Callable[..., Driver]
WAIT = 60.0
MiB = 1024**2


def _cache_tab(ui: Driver) -> None:
    ui.app.state.navigate("settings")
    dpg.set_value("shell/settings/tabs", CACHE_TAB)
    ui.frames_until(lambda: ui.shown("cache/memory"), what="the Cache section")


def test_the_cache_section_saves_the_budgets_and_clears_the_cache(
    make_app: MakeApp, isolated_env: Path
) -> None:
    ui = make_app()  # no server yet: the demo opens, so the app's hub runs
    app = ui.app
    ui.frames_until(lambda: ui.slice_ready(), what="the demo's first slice")
    hub = app.hub
    assert hub is not None and hub.disk is not None
    assert hub.disk.root == isolated_env / "cache" / "instances"
    _cache_tab(ui)
    ui.frames_until(lambda: "slices of 1 series" in dpg.get_value("cache/usage/memory"),
                    what="what the memory cache holds")  # fmt: skip
    assert not dpg.get_item_configuration("cache/save")["enabled"]
    ui.type_into("cache/memory", "32")
    ui.frames_until(lambda: "at least 64" in dpg.get_value("cache/memory/error"), what="error")
    assert not dpg.get_item_configuration("cache/save")["enabled"]
    ui.type_into("cache/memory", "256")
    ui.type_into("cache/disk", "100")
    assert dpg.get_value("cache/memory/error") == ""
    ui.click("cache/save")
    ui.frames_until(lambda: dpg.get_value("cache/status") == "Saved.", what="the save")
    saved = json.loads((isolated_env / "settings.json").read_text())
    assert saved["cache"] == {"memory_mib": 256, "disk_mib": 100}
    assert hub.cache.budget == 256 * MiB and hub.disk.budget == 100 * MiB
    ui.click("cache/clear")
    ui.frames_until(lambda: ui.shown("shell/confirm"), what="the confirmation")
    ui.click("shell/confirm/yes")
    ui.frames_until(lambda: dpg.get_value("cache/status").startswith("Cleared"), what="clear")
    assert "in memory" in dpg.get_value("cache/status")
    # A restart keeps the budgets.
    ui = make_app()
    state = ui.app.cache_state
    assert state is not None and state.memory_text == "256" and state.disk_text == "100"


@pytest.mark.integration
def test_a_series_opened_again_after_a_restart_comes_from_disk_not_the_server(
    make_app: MakeApp, select_pacs: Callable[..., ServerConfig], pacs: TestPacs
) -> None:
    select_pacs()
    study_uid, series_uid = pacs.data.study_uid, pacs.data.series("uncompressed").series_uid

    def open_series(ui: Driver, run: str) -> tuple[list[str], str, list[str]]:
        """Open the series in `ui`'s app: the loader's requests, where the first image
        came from, and what nginx was asked about the series meanwhile."""
        app = ui.app
        ui.frames_until(lambda: app.server_loader is not None, what="the server", timeout=WAIT)
        mark = pacs.access_mark()
        app.open_series(study_uid, series_uid)
        ui.frames_until(ui.slice_ready, what=f"the first slice ({run})", timeout=WAIT)
        hub = app.hub
        assert hub is not None and hub.wait_until_idle(WAIT)  # every instance on disk
        page = app.viewer_page
        assert page is not None and page.handle is not None
        trace = page.handle.trace()
        requests = [e.detail for e in trace if e.kind == "request"]
        first = next(e for e in trace if e.kind == "first-image")
        return requests, first.detail, [r for r in pacs.requests_since(mark) if series_uid in r]

    requests, first, asked = open_series(make_app(), "first")
    assert "stream" in requests and first == "stream" and asked
    # The second make_app closes the first app: a restart over the same config dir.
    requests, first, asked = open_series(make_app(), "after the restart")
    assert requests == ["disk-stream"] and first == "disk-stream"
    assert asked == []  # nothing about this series reached the server
