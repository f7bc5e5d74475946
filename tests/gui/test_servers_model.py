"""Every rule of the Settings > Servers form and page, with no display."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import msgspec
import pytest

from net import SERVER_FIELDS, CheckResult, ServerCheck, ServerConfig
from viewer.app import servers_state
from viewer.app.servers_state import (
    FORM_FIELDS,
    ServerForm,
    ServersPageState,
    StoredSecrets,
)
from viewer.app.state import AppState
from viewer.app.ui_thread import BackgroundTasks, UiQueue
from viewer.settings import (
    LOCAL_SERVER_PRESET_ID,
    ServerRegistry,
    resolve_paths,
)

NOW = 1_750_000_000.0


def make_token(lifetime: float = 3600, **claims: object) -> str:
    body: dict[str, object] = {
        "name": "Anna Kowalska",
        "username": "akowalska",
        "canEditResource": True,
        "tokenServer": "https://pacs.example.org/auth/generate-access-token",
        "refreshServer": "https://pacs.example.org/auth/refresh-token",
        "pacs": "https://pacs.example.org/zhiva/pacs",
        "iss": "zhiva.ai",
        "iat": NOW,
        "exp": NOW + lifetime,
    }
    body.update(claims)
    return jwt.encode(body, "test-key-not-verified-by-the-client-at-all", algorithm="HS256")


def form(config: ServerConfig | None = None, **kw: object) -> ServerForm:
    base = config or ServerConfig(name="Ward", url="https://ward.example.org/dicom-web")
    kw.setdefault("kind", "user")
    kw.setdefault("clock", lambda: NOW)
    return ServerForm(base, **kw)  # type: ignore[arg-type]


def registry_of(config_dir: Path) -> ServerRegistry:
    return ServerRegistry.open(resolve_paths(config_dir), fetch_organisation=False)


@pytest.fixture
def page(isolated_env: Path) -> Iterator[ServersPageState]:
    ui = UiQueue()
    app = AppState()
    tasks = BackgroundTasks(ui, on_activity=app.set_activity)
    state = ServersPageState(registry_of(isolated_env), app, tasks, clock=lambda: NOW)
    yield state
    tasks.shutdown()


# --- the form's fields -----------------------------------------------------------------


def test_the_form_is_the_field_catalogue() -> None:
    # One catalogue (tests/net/test_fields.py checks it is complete): the form adds none.
    assert FORM_FIELDS is SERVER_FIELDS


def test_an_invalid_url_is_reported_and_blocks_the_form_until_fixed() -> None:
    f = form()
    assert f.valid
    f.set("url", "http://ward.example.org")
    assert "https://" in f.errors["url"] and not f.valid
    f.set("url", "https://ward.example.org/dicom-web")
    assert "url" not in f.errors and f.valid


def test_a_new_form_is_invalid_until_its_required_fields_are_filled() -> None:
    f = form(ServerConfig(), kind="new", pristine=True)
    assert set(f.errors) == {"name", "url"}
    assert f.unsaved_description() is None  # nobody typed anything yet
    f.set("name", "Ward")
    assert set(f.errors) == {"url"}
    assert f.unsaved_description() == "'Ward' is not saved yet."
    f.set("url", "https://ward.example.org")
    assert f.valid


def test_names_are_unique_ignoring_case_but_a_server_keeps_its_own() -> None:
    def taken(name: str, server_id: str) -> str | None:
        return (
            "A server called 'Archive' already exists (yours)."
            if name.casefold() == "archive"
            else None
        )

    f = form(name_taken=taken)
    f.set("name", "ARCHIVE")
    assert f.errors["name"].startswith("A server called 'Archive'")


def test_timeouts_must_be_numbers_in_range() -> None:
    f = form()
    f.set("read_timeout", "ten")
    assert f.errors["read_timeout"] == "Timeout must be a number of seconds, e.g. 30."
    assert f.config() is None
    f.set("read_timeout", "0")
    assert "between 0 and 3600" in f.errors["read_timeout"]
    f.set("read_timeout", " 30 ")
    assert f.valid and f.config() is not None and f.config().read_timeout == 30.0  # type: ignore[union-attr]


def test_uuid_is_checked_and_generate_makes_a_valid_one() -> None:
    f = form()
    f.set("uuid", "not-a-uuid")
    assert "Generate" in f.errors["uuid"]
    f.set("uuid", str(uuid.uuid1()))
    assert "version 4" in f.errors["uuid"]
    value = f.generate_uuid()
    assert uuid.UUID(value).version == 4 and "uuid" not in f.errors


def test_postfixes_and_ca_file_are_checked(tmp_path: Path) -> None:
    f = form()
    f.set("qido_postfix", "rs?x=1")
    assert "QIDO Postfix" in f.errors["qido_postfix"]
    f.set("qido_postfix", "rs")
    f.set("ca_file", str(tmp_path / "missing.pem"))
    assert "does not exist" in f.errors["ca_file"]
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    f.set("ca_file", str(tmp_path / "ca.pem"))
    assert f.valid
    assert f.roots() == {
        "QIDO-RS": "https://ward.example.org/dicom-web/rs",
        "WADO-RS": "https://ward.example.org/dicom-web",
        "WADO-URI": "https://ward.example.org/dicom-web/wado",
    }


def test_the_credential_widgets_follow_the_authentication_type() -> None:
    f = form()
    credentials = ("username", "password", "token", "auth_server_url", "token_server")
    expected = {
        "none": set(),
        "basic": {"username", "password"},
        "token": {"token", "token_server"},
        "zhiva": {"auth_server_url", "token_server"},
    }
    for auth, shown in expected.items():
        f.set("auth_type", auth)
        assert {n for n in credentials if f.visible(n)} == shown, auth
    assert f.visible("url") and f.visible("ca_file")
    assert not f.set("auth_type", "kerberos")  # not a choice: refused


def test_basic_needs_a_user_name_and_warns_without_a_password() -> None:
    f = form()
    f.set("auth_type", "basic")
    assert "user name" in f.errors["username"]
    f.set("username", "jdoe")
    assert f.valid
    assert "No password" in f.warnings["password"]  # a warning: saving is still allowed
    f.set("password", "secret")
    assert "password" not in f.warnings
    stored = form(stored=StoredSecrets(password=True))
    stored.set("auth_type", "basic")
    assert "password" not in stored.warnings


def test_a_pasted_token_shows_its_claims_and_fills_the_server_from_them() -> None:
    f = form(ServerConfig(name="Zhiva"), kind="new")
    f.set("auth_type", "token")
    assert "Not signed in" in f.warnings["token"]
    f.set("token", make_token())
    assert f.token_claims is not None and f.token_claims.username == "akowalska"
    text = f.claims_text()
    assert text.startswith("Token for Anna Kowalska (akowalska) · may store and edit data")
    assert "(in 60 min)" in text
    assert f.text("url") == "https://pacs.example.org/zhiva/pacs"
    assert f.text("token_server").endswith("/auth/generate-access-token")
    assert f.flag("can_store") is True
    assert f.valid


def test_an_expired_or_broken_token_blocks_saving() -> None:
    f = form()
    f.set("auth_type", "token")
    f.set("token", make_token(lifetime=-60))
    assert "expired" in f.errors["token"]
    f.set("token", "three.broken.parts")
    assert "not a valid sign-in token" in f.errors["token"]


def test_the_stored_session_is_shown_for_token_and_zhiva_servers() -> None:
    claims = servers_state.TokenClaims(name="Ola", username="ola", exp=NOW + 7200)
    f = form(stored=StoredSecrets(session=claims))
    f.set("auth_type", "zhiva")
    assert f.claims_text().startswith("Signed in as Ola (ola) · read-only · expires")
    f.set("auth_type", "none")
    assert f.claims_text() == ""


def test_unsaved_marker_follows_the_values_not_the_keystrokes() -> None:
    f = form()
    assert not f.dirty and f.unsaved_description() is None
    f.set("name", "Ward 2")
    assert f.dirty and f.unsaved_description() == "You have unsaved changes to 'Ward 2'."
    f.set("name", "Ward")
    assert not f.dirty


def test_a_managed_server_cannot_be_edited() -> None:
    f = form(ServerConfig(name="Org", url="http://org.example"), kind="managed")
    assert f.read_only and f.valid  # its problems are the organisation's to fix
    assert not f.set("url", "https://other.example")
    assert f.unsaved_description() is None


# --- the page --------------------------------------------------------------------------


def test_first_launch_offers_the_local_server_preset_without_selecting_it(
    page: ServersPageState,
) -> None:
    assert page.form.id == LOCAL_SERVER_PRESET_ID and page.form.kind == "preset"
    assert page.selected_id is None
    assert page.app.server_label == "No server selected"
    assert page.can_save  # saving a preset saves and selects it
    assert page.entry_labels()[0][1] == "Local Server (preset)"


def test_save_new_server_writes_settings_selects_it_and_a_restart_shows_it(
    page: ServersPageState, isolated_env: Path
) -> None:
    page.create_new()
    assert page.form.is_new and not page.can_save
    page.set_field("name", "Ward PACS")
    page.set_field("url", "https://ward.example.org/dicom-web")
    page.set_field("auth_type", "basic")
    page.set_field("username", "jdoe")
    page.set_field("password", "s3cret")
    assert page.can_save
    assert page.save()
    assert not page.form.dirty and page.form.kind == "user"
    text = (isolated_env / "settings.json").read_text()
    assert "https://ward.example.org/dicom-web" in text and "s3cret" not in text
    assert page.app.server_label == "Server: Ward PACS"
    assert page.app.signin_label == "Basic: jdoe"
    fresh = ServersPageState(registry_of(isolated_env), AppState(), page.tasks)
    assert fresh.form.text("url") == "https://ward.example.org/dicom-web"
    assert fresh.registry.secrets.get(fresh.form.id, "password") == "s3cret"


def test_saving_the_preset_saves_it_into_your_servers(page: ServersPageState) -> None:
    page.set_field("url", "https://192.168.1.20/zhiva/pacs")
    assert page.save()
    entry = page.registry.find(LOCAL_SERVER_PRESET_ID)
    assert entry.kind == "user" and entry.config.url == "https://192.168.1.20/zhiva/pacs"
    assert page.selected_id == LOCAL_SERVER_PRESET_ID


def test_switching_servers_with_unsaved_edits_asks_first(page: ServersPageState) -> None:
    page.registry.add(ServerConfig(name="Archive", url="https://archive.example.org"))
    page.reload_entries()
    archive = page.registry.find("Archive").id
    page.set_field("name", "Local Server 2")
    page.choose(archive)
    assert page.app.confirmation is not None and page.form.id == LOCAL_SERVER_PRESET_ID
    page.app.answer(False)
    assert page.form.text("name") == "Local Server 2"
    page.choose(archive)
    page.app.answer(True)
    assert page.form.id == archive and not page.form.dirty


def test_save_is_refused_when_someone_else_changed_the_server(
    page: ServersPageState, isolated_env: Path
) -> None:
    page.registry.add(ServerConfig(name="Archive", url="https://archive.example.org"))
    page.reload_entries()
    page.choose(page.registry.find("Archive").id)
    registry_of(isolated_env).edit("Archive", {"url": "https://elsewhere.example.org"})
    page.set_field("postfix", "dicom-web")
    assert not page.save()
    assert page.message is not None and "changed by another Zhiva Viewer" in page.message.text
    assert page.form.dirty  # the edit is still there to retry


def test_delete_asks_then_removes_the_server_and_its_secrets(page: ServersPageState) -> None:
    config = page.registry.add(
        ServerConfig(name="Old", url="https://old.example.org", auth_type="basic", username="u"),
        password="pw",
    )
    page.reload_entries()
    page.choose(config.id)
    page.request_delete()
    assert page.app.confirmation is not None and "Delete 'Old'" in page.app.confirmation.message
    page.app.answer(True)
    assert all(e.id != config.id for e in page.registry.entries())
    assert page.registry.secrets.get(config.id, "password") is None
    assert page.form.id != config.id


def test_duplicate_makes_an_editable_unsaved_copy(page: ServersPageState) -> None:
    page.duplicate()
    assert page.form.is_new and page.form.text("name") == "Local Server (copy)"
    assert page.form.unsaved_description() == "'Local Server (copy)' is not saved yet."
    assert page.save()
    assert page.registry.find("Local Server (copy)").kind == "user"


def test_import_and_export_round_trip(page: ServersPageState, tmp_path: Path) -> None:
    page.registry.add(ServerConfig(name="Archive", url="https://archive.example.org"))
    out = tmp_path / "servers.json"
    page.export_to(str(out))
    assert page.message is not None and "Exported 1 server(s)" in page.message.text
    assert json.loads(out.read_text())["servers"][0]["name"] == "Archive"
    page.import_from(str(out))
    assert "Already there: Archive" in page.message.text
    page.import_from(str(tmp_path / "missing.json"))
    assert page.message.level == "error"


def test_test_connection_runs_in_the_background_with_the_typed_password(
    page: ServersPageState, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[object] = []

    def fake_check(config: ServerConfig, auth: object) -> ServerCheck:
        seen.append(auth)
        return ServerCheck(
            server=config.name,
            results=(
                CheckResult(name="signed in", status="pass"),
                CheckResult(
                    name="thumbnails",
                    status="pass",
                    fallback="/rendered (the server has no /thumbnail)",
                ),
            ),
        )

    monkeypatch.setattr(servers_state, "check_server", fake_check)
    page.set_field("auth_type", "basic")
    page.set_field("username", "jdoe")
    page.set_field("password", "typed")
    page.test_connection()
    assert page.check.status == "running" and page.app.activity
    assert page.tasks.wait_until_idle(10)
    assert page.check.status == "done" and page.check.summary == "All checks passed."
    assert page.check.result("thumbnails").fallback  # type: ignore[union-attr]
    assert seen[0]._auth_header.startswith("Basic ")  # type: ignore[attr-defined]
    assert page.app.activity == ()
    assert page.registry.secrets.get(page.form.id, "password") is None  # not saved


def test_test_connection_with_an_unsaved_token_explains_why_it_cannot_sign_in(
    page: ServersPageState,
) -> None:
    page.set_field("auth_type", "token")
    page.set_field("token", make_token(lifetime=10**9))
    page.test_connection()
    assert page.tasks.wait_until_idle(10)
    row = page.check.result("signed in")
    assert row is not None and row.status == "fail"
    assert "Save Settings first" in row.fix


def test_sign_out_forgets_the_session(page: ServersPageState) -> None:
    config = page.registry.add(
        ServerConfig(name="Zhiva", url="https://z.example.org/zhiva/pacs", auth_type="token")
    )
    access = make_token(lifetime=10**9)
    page.registry.secrets.set(config.id, "access_token", access)
    page.registry.select(config.id)
    page.reload_entries()
    page.choose(config.id)
    assert page.form.claims_text().startswith("Signed in as Anna Kowalska")
    assert page.app.signin_label.startswith("Signed in as Anna Kowalska")
    page.sign_out()
    assert page.registry.secrets.get(config.id, "access_token") is None
    assert page.form.claims_text() == ""
    assert page.app.signin_label == "Not signed in"


def test_a_saved_pasted_token_replaces_the_old_session(page: ServersPageState) -> None:
    config = page.registry.add(
        ServerConfig(name="Zhiva", url="https://pacs.example.org/zhiva/pacs", auth_type="token")
    )
    page.registry.secrets.set(config.id, "access_token", make_token(lifetime=10**9))
    page.reload_entries()
    page.choose(config.id)
    page.set_field("token", make_token(lifetime=10**9))
    assert page.save()
    assert page.registry.secrets.get(config.id, "access_token") is None
    assert page.registry.secrets.get(config.id, "token") is not None


def test_describe_claims_handles_expired_and_nameless_tokens() -> None:
    claims = servers_state.TokenClaims(username="u", exp=NOW - 5)
    assert servers_state.describe_claims(claims, NOW).startswith("u · read-only · expired ")
    assert servers_state.describe_claims(servers_state.TokenClaims(), time.time()) == (
        "unknown user · read-only"
    )
    copy = msgspec.structs.replace(claims, name="U", can_edit=True, exp=None)
    assert servers_state.describe_claims(copy, NOW) == "U (u) · may store and edit data"


class _FakeLogin:
    url = "https://auth.example.org/auth/sign-in?return_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcallback"

    def __init__(self) -> None:
        import threading

        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()


def test_zhiva_sign_in_waits_for_the_browser_and_can_be_cancelled(
    page: ServersPageState, monkeypatch: pytest.MonkeyPatch
) -> None:
    from net import LoginCancelled

    login = _FakeLogin()

    def fake_sign_in(registry: object, url: str, **kw: object) -> object:
        kw["started"](login)  # type: ignore[operator]
        login.cancelled.wait(10)
        raise LoginCancelled("Sign-in cancelled.")

    monkeypatch.setattr(servers_state, "sign_in_with_browser", fake_sign_in)
    page.create_new()
    page.set_field("auth_type", "zhiva")
    page.set_field("auth_server_url", "https://auth.example.org/auth")
    page.sign_in()
    assert page.signin.status == "waiting" and page.tasks.running("signin")
    deadline = time.monotonic() + 10
    while not page.signin.url and time.monotonic() < deadline:
        page.tasks._ui.drain()  # the worker reports the login page's URL
    assert page.signin.url == login.url
    page.cancel_sign_in()
    assert login.cancelled.is_set() and page.signin.status == "idle"
    assert page.message is not None and page.message.text == "Sign-in cancelled."


def test_a_successful_sign_in_shows_the_server_it_set_up(
    page: ServersPageState, monkeypatch: pytest.MonkeyPatch
) -> None:
    from viewer.signin import LinkResult

    def fake_sign_in(registry: ServerRegistry, url: str, **kw: object) -> LinkResult:
        config = registry.add(
            ServerConfig(
                name="Zhiva (pacs)", url="https://pacs.example.org/zhiva/pacs", auth_type="token"
            )
        )
        registry.select(config.id)
        claims = servers_state.decode_token(make_token(lifetime=10**9))
        return LinkResult(config=config, claims=claims, created=True)

    monkeypatch.setattr(servers_state, "sign_in_with_browser", fake_sign_in)
    opened: list[str] = []
    page.on_server_ready = lambda result: opened.append(result.config.name)
    page.create_new()
    page.set_field("auth_type", "zhiva")
    page.set_field("auth_server_url", "https://auth.example.org/auth")
    page.sign_in()
    assert page.tasks.wait_until_idle(10)
    assert page.form.text("name") == "Zhiva (pacs)" and page.form.kind == "user"
    assert page.message is not None
    assert page.message.text == "Added 'Zhiva (pacs)' and signed in as Anna Kowalska."
    assert opened == ["Zhiva (pacs)"]


def _use_link_until_asked(page: ServersPageState, token: str) -> None:
    """Use a link for `token` and run the page until it asks for a confirmation."""
    page.use_link(f"zhiva-viewer://oauth?token={token}")
    deadline = time.monotonic() + 20
    while page.app.confirmation is None and time.monotonic() < deadline:
        page.tasks.wait_until_idle(1)
        page.tasks._ui.drain()
    assert page.app.confirmation is not None


@pytest.mark.integration
def test_a_link_that_would_change_a_server_asks_and_cancel_changes_nothing(
    isolated_env: Path, pacs: object, token_admin: object
) -> None:
    from tests.support.pacs import TestPacs
    from tests.support.token_admin import TokenServerAdmin

    assert isinstance(pacs, TestPacs) and isinstance(token_admin, TokenServerAdmin)
    token_admin.reset()
    registry = registry_of(isolated_env)
    ours = registry.add(
        ServerConfig(
            name="Ours",
            url=pacs.token_base_url,
            auth_type="basic",
            username="me",
            ca_file=pacs.ca_file,
        )
    )
    registry.secrets.set(ours.id, "password", "our-basic-password")
    app = AppState()
    tasks = BackgroundTasks(UiQueue(), on_activity=app.set_activity)
    page = ServersPageState(registry, app, tasks, clock=time.time)
    try:
        token = token_admin.mint_auth_token("zhiva")
        before = token_admin.stats()
        _use_link_until_asked(page, token)
        assert "Authentication Type: basic -> token" in app.confirmation.message
        assert "CA file" not in app.confirmation.message  # the link keeps the server's
        app.answer(False)
        assert tasks.wait_until_idle(10)
        assert registry_of(isolated_env).find("Ours").config == ours
        assert registry.secrets.get(ours.id, "password") == "our-basic-password"
        assert token_admin.stats().since(before).exchanges == 0

        _use_link_until_asked(page, token)  # the token is still good
        app.answer(True)
        deadline = time.monotonic() + 20
        while not (page.message and "signed in as" in page.message.text):
            assert time.monotonic() < deadline, page.message
            tasks.wait_until_idle(1)
            tasks._ui.drain()
        changed = registry_of(isolated_env).find("Ours").config
        assert changed.id == ours.id and changed.auth_type == "token"
        assert registry.secrets.get(ours.id, "password") is None  # no Basic any more
        assert token_admin.stats().since(before).exchanges == 1
    finally:
        tasks.shutdown()


def test_a_link_for_another_server_does_not_bring_the_shown_forms_ca_file(
    isolated_env: Path, tmp_path: Path
) -> None:
    # The form on screen belongs to server A; the link is for server B. A's CA file
    # must not be offered to B (nor given to a new server the link creates).
    a_ca, b_ca = tmp_path / "a.pem", tmp_path / "b.pem"
    a_ca.write_text("A"), b_ca.write_text("B")
    registry = registry_of(isolated_env)
    a = registry.add(ServerConfig(name="A", url="https://a.example.org/rs", ca_file=str(a_ca)))
    registry.add(
        ServerConfig(name="B", url="https://pacs.example.org/zhiva/pacs", ca_file=str(b_ca))
    )
    registry.select(a.id)
    app = AppState()
    tasks = BackgroundTasks(UiQueue(), on_activity=app.set_activity)
    page = ServersPageState(registry, app, tasks, clock=lambda: NOW)
    try:
        assert page.form.id == a.id
        token = make_token(lifetime=10**9)  # pacs: B's URL; nothing is sent before asking
        _use_link_until_asked(page, token)
        assert "'B'" in app.confirmation.message
        assert "Authentication Type: none -> token" in app.confirmation.message
        assert "CA file" not in app.confirmation.message
    finally:
        tasks.shutdown()
