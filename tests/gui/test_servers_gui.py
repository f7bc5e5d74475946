"""Settings > Servers in a real window, driven by real input (xdotool) under Xvfb."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg
import msgspec
import pytest

from net import ServerConfig
from tests.gui.driver import Driver, count_near, dominant
from tests.support.pacs import TestPacs
from tests.support.token_admin import TokenServerAdmin
from viewer.app import theme
from viewer.app.servers_page import field_tag
from viewer.settings import ServerRegistry, resolve_paths

MakeApp = Callable[..., Driver]


def _registry(config_dir: Path) -> ServerRegistry:
    return ServerRegistry.open(resolve_paths(config_dir), fetch_organisation=False)


def test_invalid_url_blocks_save_and_a_fixed_one_is_saved_and_survives_a_restart(
    make_app: MakeApp, isolated_env: Path, tmp_path: Path
) -> None:
    ui = make_app()
    ui.click("servers/new")
    ui.frames_until(lambda: ui.app.servers and ui.app.servers.form.is_new, what="a new form")
    ui.type_into(field_tag("name"), "Ward PACS")
    ui.type_into(field_tag("url"), "http://ward.example.org/dicom-web")

    error = "servers/error/url"
    ui.frames_until(lambda: ui.shown(error), what="the URL message")
    assert "https://" in dpg.get_value(error)
    assert dpg.get_item_configuration("servers/save")["enabled"] is False
    ui.park_mouse()
    shot = ui.screenshot(tmp_path / "invalid.png")
    error_box = ui.box(error)
    # The message is drawn in the error red; the Save button in the disabled grey.
    assert count_near(shot, error_box, theme.ERROR) > 40
    assert dominant(shot, ui.box("servers/save")) == theme.DISABLED_BUTTON

    ui.type_into(field_tag("url"), "https://ward.example.org/dicom-web")
    ui.frames_until(lambda: not ui.shown(error), what="the URL message to go")
    assert dpg.get_item_configuration("servers/save")["enabled"] is True
    shot = ui.screenshot(tmp_path / "valid.png")
    assert count_near(shot, error_box, theme.ERROR) == 0
    assert dominant(shot, ui.box("servers/save")) == theme.ACCENT
    assert dpg.get_value("servers/unsaved")

    ui.click("servers/save")
    ui.frames_until(lambda: not ui.app.servers.form.is_new, what="the save")  # type: ignore[union-attr]
    saved = json.loads((isolated_env / "settings.json").read_text())
    ward = [s for s in saved["servers"] if s["name"] == "Ward PACS"]
    assert ward and ward[0]["url"] == "https://ward.example.org/dicom-web"
    assert saved["selected_server_id"] == ward[0]["id"]
    assert not dpg.get_value("servers/unsaved")

    # A restart: a new app (new registry) over the same settings directory.
    ui = make_app()
    assert dpg.get_value("servers/combo") == "Ward PACS"
    assert dpg.get_value(field_tag("url")) == "https://ward.example.org/dicom-web"
    assert dpg.get_value("shell/status/server") == "Server: Ward PACS"


def test_leaving_unsaved_edits_asks_first(make_app: MakeApp, isolated_env: Path) -> None:
    _registry(isolated_env).add(
        ServerConfig(name="Archive", url="https://archive.example.org/dicom-web")
    )
    ui = make_app()
    ui.type_into(field_tag("name"), "Archive 2")
    ui.click("servers/new")
    ui.frames_until(lambda: ui.shown("shell/confirm"), what="the confirmation")
    assert "unsaved changes" in dpg.get_value("shell/confirm/message")
    ui.click("shell/confirm/no")  # Keep editing
    ui.frames_until(lambda: not ui.shown("shell/confirm"), what="the dialog to close")
    assert dpg.get_value(field_tag("name")) == "Archive 2"

    ui.click("servers/new")
    ui.frames_until(lambda: ui.shown("shell/confirm"), what="the confirmation")
    ui.click("shell/confirm/yes")  # Discard
    ui.frames_until(lambda: ui.app.servers and ui.app.servers.form.is_new, what="a new form")
    assert dpg.get_value(field_tag("name")) == ""
    assert _registry(isolated_env).find("Archive").name == "Archive"


def test_authentication_type_switches_the_credential_widgets(
    make_app: MakeApp, isolated_env: Path
) -> None:
    ui = make_app()
    servers = ui.app.servers
    assert servers is not None
    shown = {
        "none": set(),
        "basic": {"username", "password"},
        "token": {"token", "token_server", "refresh_server"},
        "zhiva": {"auth_server_url", "token_server", "refresh_server"},
    }
    credentials = {"username", "password", "token", "auth_server_url", "token_server"}
    for auth, expected in shown.items():
        servers.set_field("auth_type", auth)
        ui.frames(2)
        visible = {n for n in credentials if dpg.get_item_configuration(f"servers/row/{n}")["show"]}
        assert visible == (expected & credentials), auth
        assert dpg.get_item_configuration("servers/signin")["show"] is (auth == "zhiva")


def test_a_managed_server_is_read_only_with_duplicate_to_edit(
    make_app: MakeApp, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = tmp_path / "servers.json"
    org.write_text(
        json.dumps(
            {
                "format": "zhiva-viewer/servers",
                "version": 1,
                "servers": [{"name": "Hospital", "url": "https://pacs.hospital.example/rs"}],
            }
        )
    )
    monkeypatch.setenv("ZHIVA_SERVERS_FILE", str(org))
    ui = make_app()
    servers = ui.app.servers
    assert servers is not None
    hospital = next(i for i, label in servers.entry_labels() if label.startswith("Hospital"))
    servers.choose(hospital)
    ui.frames(2)
    assert dpg.get_item_configuration(field_tag("url"))["enabled"] is False
    assert "read-only" in dpg.get_value("servers/kind")
    ui.click("servers/duplicate")
    ui.frames_until(lambda: servers.form.is_new, what="the copy")
    assert dpg.get_value(field_tag("name")) == "Hospital (copy)"
    assert dpg.get_item_configuration(field_tag("url"))["enabled"] is True


def _pacs_server(config_dir: Path, config: ServerConfig) -> None:
    registry = _registry(config_dir)
    registry.add(config)
    registry.select(config.id)


@pytest.mark.integration
def test_test_connection_with_the_typed_password_passes_and_shows_the_thumbnail_fallback(
    make_app: MakeApp, isolated_env: Path, pacs: TestPacs, pacs_server_config: ServerConfig
) -> None:
    # Orthanc has no /thumbnail: with thumbnail rendering "https" the check must pass
    # by falling back to /rendered, and say so.
    _pacs_server(
        isolated_env, msgspec.structs.replace(pacs_server_config, thumbnail_rendering="https")
    )
    ui = make_app()
    servers = ui.app.servers
    assert servers is not None
    ui.type_into(field_tag("password"), pacs.users["zhiva-admin"])
    ui.click("servers/test")
    ui.frames_until(lambda: servers.check.status == "done", what="the checks", timeout=60)
    ui.frames_until(lambda: ui.shown("servers/check/table"), what="the results")
    statuses = {
        r.name: dpg.get_value(f"servers/check/status/{r.name.replace(' ', '_')}")
        for r in servers.check.results
    }
    assert "FAIL" not in statuses.values(), statuses
    assert statuses["signed in"] == "PASS"
    assert statuses["thumbnails"] == "PASS"
    assert "will use /rendered" in dpg.get_value("servers/check/detail/thumbnails")
    assert dpg.get_value("servers/check/summary") == "All checks passed."
    # The typed password was used, not stored: nothing is saved until Save Settings.
    assert not _registry(isolated_env).secrets.has(pacs_server_config.id, "password")


@pytest.mark.integration
def test_test_connection_with_a_wrong_password_says_so_on_the_sign_in_row(
    make_app: MakeApp, isolated_env: Path, pacs: TestPacs, pacs_server_config: ServerConfig
) -> None:
    _pacs_server(isolated_env, pacs_server_config)
    ui = make_app()
    servers = ui.app.servers
    assert servers is not None
    ui.type_into(field_tag("password"), "not-the-password")
    ui.click("servers/test")
    ui.frames_until(lambda: servers.check.status == "done", what="the checks", timeout=60)
    ui.frames_until(lambda: ui.shown("servers/check/table"), what="the results")
    assert dpg.get_value("servers/check/status/signed_in") == "FAIL"
    detail = dpg.get_value("servers/check/detail/signed_in")
    assert "401" in detail
    assert "fix: Check the user name and password" in detail
    assert dpg.get_value("servers/check/summary") == "1 check(s) failed."


@pytest.mark.integration
def test_a_configuration_link_for_an_existing_server_asks_then_sets_it_up_and_opens_it(
    make_app: MakeApp,
    isolated_env: Path,
    pacs: TestPacs,
    token_admin: TokenServerAdmin,
) -> None:
    token_admin.reset()  # the token server is shared by the session: start from its defaults
    # A server the user trusts with the test CA already exists under that URL.
    ours = ServerConfig(name="Ours", url=pacs.token_base_url, ca_file=pacs.ca_file)
    _pacs_server(isolated_env, ours)
    token = token_admin.mint_auth_token("zhiva-admin")
    before = token_admin.stats()
    ui = make_app(link=f"zhiva-viewer://oauth?token={token}")
    servers = ui.app.servers
    assert servers is not None
    # The link would turn 'Ours' (no sign-in) into a token server: the user is asked
    # first, shown each change, and nothing is sent until they agree.
    ui.frames_until(lambda: ui.shown("shell/confirm"), what="the confirmation", timeout=30)
    message = dpg.get_value("shell/confirm/message")
    assert "'Ours'" in message and "Authentication Type: none -> token" in message
    assert f"Token server: (none) -> {pacs.auth_url}/generate-access-token" not in message
    assert token_admin.stats().since(before).exchanges == 0
    assert _registry(isolated_env).find("Ours").config.auth_type == "none"
    ui.click("shell/confirm/yes")
    ui.frames_until(
        lambda: servers.message is not None and "signed in as" in servers.message.text,
        what="the link to be used",
        timeout=30,
    )
    assert servers.message is not None
    assert servers.message.text == "Updated 'Ours' and signed in as Zhiva Admin."
    assert ui.app.state.page == "studies"
    assert dpg.get_value("shell/status/signin").startswith("Signed in as Zhiva Admin")
    registry = _registry(isolated_env)
    assert registry.selected() is not None and registry.selected().id == ours.id  # type: ignore[union-attr]
    assert registry.find("Ours").config.auth_type == "token"
    assert registry.secrets.get(ours.id, "access_token")


def test_typed_text_that_looks_like_an_xdotool_option_arrives_as_typed(
    make_app: MakeApp, isolated_env: Path
) -> None:
    # Generated passwords start with "-" now and then; xdotool took them for options.
    ui = make_app()
    ui.click("servers/new")
    ui.frames_until(lambda: ui.app.servers and ui.app.servers.form.is_new, what="a new form")
    ui.type_into(field_tag("name"), "--delay 9 -x")
    assert dpg.get_value(field_tag("name")) == "--delay 9 -x"
