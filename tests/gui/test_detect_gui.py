"""Detect on Settings > Servers: the state with no display, then the real window.

Discovery runs on a worker (`BackgroundTasks`); what it proposes fills the form, each
field it set marked until the user looks at it; nothing is saved until Save Settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import dearpygui.dearpygui as dpg
import pytest

from tests.gui.driver import Driver, count_near
from tests.gui.test_servers_model import registry_of
from tests.support.pacs import DCM4CHEE_AET, TestPacs
from viewer.app import theme
from viewer.app.servers_page import field_tag
from viewer.app.servers_state import ServersPageState
from viewer.app.state import AppState
from viewer.app.ui_thread import BackgroundTasks, UiQueue

pytestmark = pytest.mark.integration

MakeApp = Callable[..., Driver]


@pytest.fixture
def page(isolated_env: Path) -> Iterator[ServersPageState]:
    tasks = BackgroundTasks(UiQueue())
    state = ServersPageState(registry_of(isolated_env), AppState(), tasks)
    yield state
    tasks.shutdown()


def test_detect_fills_the_form_marks_what_it_set_and_saves_nothing(
    page: ServersPageState, pacs: TestPacs, isolated_env: Path
) -> None:
    page.create_new()
    for name, value in (("name", "Archive"), ("url", pacs.origin + "/dcm4chee-arc"),
                        ("auth_type", "basic"), ("username", "zhiva-admin"),
                        ("password", pacs.users["zhiva-admin"]), ("ca_file", pacs.ca_file)):  # fmt: skip
        page.set_field(name, value)
    assert page.can_detect
    page.detect()
    assert page.detection.status == "running" and not page.can_detect
    assert page.tasks.wait_until_idle(30)
    form = page.form
    assert page.detection.found and "dcm4chee" in page.detection.summary
    assert form.text("postfix") == f"aets/{DCM4CHEE_AET}" and form.text("qido_postfix") == "rs"
    assert {"postfix", "qido_postfix", "wado_postfix"} <= form.detected
    assert any(line.startswith("[found] DICOMweb at") for line in page.detection.lines)
    assert form.valid and registry_of(isolated_env).settings.servers == ()  # a proposal only
    page.set_field("postfix", f"aets/{DCM4CHEE_AET}")  # the user looked at it
    assert "postfix" not in page.form.detected
    assert page.save()
    saved = registry_of(isolated_env).find("Archive").config
    assert saved.postfix == f"aets/{DCM4CHEE_AET}" and saved.wado_uri_postfix == "wado"


def test_the_detect_button_runs_on_a_worker_and_marks_the_fields(
    make_app: MakeApp, isolated_env: Path, pacs: TestPacs, tmp_path: Path
) -> None:
    ui = make_app()
    ui.click("servers/new")
    servers = ui.app.servers
    ui.frames_until(lambda: servers is not None and servers.form.is_new, what="a new form")
    assert servers is not None
    servers.set_field("ca_file", pacs.ca_file)
    ui.type_into(field_tag("name"), "Found")
    ui.type_into(field_tag("url"), pacs.origin)
    ui.click("servers/detect")
    ui.frames_until(lambda: servers.detection.status == "done", what="discovery", timeout=30)
    ui.frames_until(lambda: ui.shown("servers/detect/findings"), what="the findings")
    # The host became the Zhiva layout's URL; sign-in is needed (no credentials given).
    assert dpg.get_value(field_tag("url")) == pacs.base_url
    assert "sign-in: Basic" in dpg.get_value("servers/detect/findings")
    assert ui.shown("servers/detected/url")
    # Further down the form (scrolled out of view): marked all the same.
    assert dpg.get_item_configuration("servers/detected/wado_uri_postfix")["show"]
    assert not dpg.get_item_configuration("servers/detected/name")["show"]
    ui.park_mouse()
    shot = ui.screenshot(tmp_path / "detected.png")
    # The marks are drawn in the success green under the fields Detect set.
    assert count_near(shot, ui.box("servers/detected/url"), theme.SUCCESS) > 40
    assert count_near(shot, ui.box("servers/detect/summary"), theme.SUCCESS) > 40
