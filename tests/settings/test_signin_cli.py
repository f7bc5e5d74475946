"""`servers link` and `servers test` with Zhiva tokens, against the token-gated test PACS."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.capture import CaptureFixture

from tests.settings.test_cli import run
from tests.support.pacs import TestPacs
from tests.support.token_admin import TokenServerAdmin
from viewer.settings import ServerRegistry, resolve_paths

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_token_server")]


def _registry(config_dir: Path) -> ServerRegistry:
    return ServerRegistry.open(resolve_paths(str(config_dir)))


def test_link_sets_up_signs_in_and_test_passes(
    capsys: CaptureFixture, pacs: TestPacs, token_admin: TokenServerAdmin, isolated_env: Path
) -> None:
    token = token_admin.mint_auth_token("zhiva-editor")
    link = f"{pacs.token_origin}/auth/oauth?token={token}"
    code, out, err = run(capsys, "servers", "link", link, "--ca-file", pacs.ca_file)
    assert code == 0, err
    assert "Added server" in out and "may store and edit data" in out
    assert token not in out + err

    registry = _registry(isolated_env)
    selected = registry.selected()
    assert selected is not None and selected.config.url == pacs.token_base_url
    assert selected.config.auth_type == "token" and selected.config.can_store
    access = registry.secrets.get(selected.id, "access_token")
    assert access and registry.secrets.get(selected.id, "refresh_token")
    # Secrets never reach the settings file.
    settings_text = (isolated_env / "settings.json").read_text()
    assert access not in settings_text and token not in settings_text

    # The access token expires: `test` refreshes it once, stores the new one, passes.
    token_admin.expire_access_tokens()
    before = token_admin.stats()
    code, out, err = run(capsys, "servers", "test", selected.name)
    assert code == 0, out + err
    assert "[pass] signed in" in out and "[pass] QIDO search" in out
    assert token_admin.stats().since(before).refreshes == 1
    assert _registry(isolated_env).secrets.get(selected.id, "access_token") != access

    # The same link again: the token is used up, the server stays as it was.
    code, out, err = run(capsys, "servers", "link", link, "--ca-file", pacs.ca_file)
    assert code == 1 and "only once" in err and token not in out + err
    assert len(_registry(isolated_env).settings.servers) == 1


def test_a_20_s_access_token_costs_one_refresh_per_servers_test(
    capsys: CaptureFixture, pacs: TestPacs, token_admin: TokenServerAdmin, isolated_env: Path
) -> None:
    # A fixed 60 s early-refresh margin refreshed a 20 s token before every request
    # (5 refreshes for one `servers test`); the margin is now at most 10% of its life.
    token_admin.configure(access_lifetime=20)
    token = token_admin.mint_auth_token("zhiva")
    link = f"{pacs.token_origin}/auth/oauth?token={token}"
    code, _, err = run(capsys, "servers", "link", link, "--ca-file", pacs.ca_file)
    assert code == 0, err
    token_admin.expire_access_tokens()  # the session's token is refused once: one refresh
    before = token_admin.stats()
    code, out, err = run(capsys, "servers", "test", "Zhiva (localhost)")
    assert code == 0, out + err
    during = token_admin.stats().since(before)
    assert during.refreshes == 1, during.counts
    assert during.ok("verify") >= 3  # the checks really ran on the refreshed 20 s token


def test_link_for_an_existing_server_needs_replace_and_lists_every_change(
    capsys: CaptureFixture, pacs: TestPacs, token_admin: TokenServerAdmin, isolated_env: Path
) -> None:
    run(capsys, "servers", "add", "Gate", "--url", pacs.token_base_url, "--ca-file", pacs.ca_file)
    token = token_admin.mint_auth_token("zhiva")
    link = f"{pacs.token_origin}/auth/oauth?token={token}"
    before = token_admin.stats()
    code, out, err = run(capsys, "servers", "link", link)
    assert code == 1, out + err
    assert "would change how it signs in" in err and "--replace" in err
    assert "Authentication Type: none -> token" in err
    assert token not in out + err
    # Refused before anything was sent: the one-off token is still good.
    assert token_admin.stats().since(before).exchanges == 0
    (server,) = _registry(isolated_env).settings.servers
    assert server.auth_type == "none" and server.token_server == ""

    code, out, _ = run(capsys, "servers", "link", link, "--replace")
    assert code == 0 and "Updated server 'Gate'" in out and "read-only" in out
    (server,) = _registry(isolated_env).settings.servers
    assert server.name == "Gate" and server.auth_type == "token" and not server.can_store
    assert server.ca_file == pacs.ca_file  # kept: the link named none


def test_a_link_cannot_point_an_existing_token_server_at_other_endpoints(
    capsys: CaptureFixture, pacs: TestPacs, token_admin: TokenServerAdmin, isolated_env: Path
) -> None:
    # The takeover of the issue: a link whose pacs is the user's server, and whose token
    # endpoints are elsewhere, must neither rewrite them silently nor be exchanged.
    token = token_admin.mint_auth_token("zhiva-editor")
    code, _, err = run(
        capsys, "servers", "link", f"{pacs.token_origin}/auth/oauth?token={token}",
        "--ca-file", pacs.ca_file,
    )  # fmt: skip
    assert code == 0, err
    registry = _registry(isolated_env)
    (server,) = registry.settings.servers
    refresh = registry.secrets.get(server.id, "refresh_token")
    assert refresh

    # Another site entirely: refused whatever --replace says, nothing sent anywhere.
    elsewhere = token_admin.mint_auth_token(
        "zhiva", claims={"refreshServer": f"{pacs.origin}/auth/refresh-token"}
    )
    before = token_admin.stats()
    for extra in ((), ("--replace",)):
        code, out, err = run(
            capsys, "servers", "link", f"{pacs.token_origin}/auth/oauth?token={elsewhere}", *extra
        )
        assert code == 1 and "must name the servers of one site" in err, out + err
        assert pacs.origin in err
    # Same site, other endpoints: the change is shown field by field and not made.
    moved = token_admin.mint_auth_token(
        "zhiva", claims={"refreshServer": f"{pacs.token_origin}/auth/other-refresh"}
    )
    code, _, err = run(capsys, "servers", "link", f"{pacs.token_origin}/auth/oauth?token={moved}")
    assert code == 1
    assert f"Refresh server: {pacs.auth_url}/refresh-token -> {pacs.auth_url}/other-refresh" in err
    assert token_admin.stats().since(before).exchanges == 0
    registry = _registry(isolated_env)
    assert registry.settings.servers == (server,)
    assert registry.secrets.get(server.id, "refresh_token") == refresh


def test_a_basic_server_turned_token_server_by_a_link_loses_its_password(
    capsys: CaptureFixture,
    pacs: TestPacs,
    token_admin: TokenServerAdmin,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, err = run(
        capsys, "servers", "add", "Gate", "--url", pacs.token_base_url, "--auth", "basic",
        "--username", "zhiva", "--password-stdin", "--ca-file", pacs.ca_file,
        stdin="old-basic-password\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0, err
    (server,) = _registry(isolated_env).settings.servers
    assert _registry(isolated_env).secrets.get(server.id, "password") == "old-basic-password"
    token = token_admin.mint_auth_token("zhiva")
    link = f"{pacs.token_origin}/auth/oauth?token={token}"
    code, _, err = run(capsys, "servers", "link", link)
    assert code == 1 and "Authentication Type: basic -> token" in err
    assert _registry(isolated_env).secrets.get(server.id, "password") == "old-basic-password"
    code, _, err = run(capsys, "servers", "link", link, "--replace")
    assert code == 0, err
    registry = _registry(isolated_env)
    assert registry.find("Gate").config.auth_type == "token"
    assert registry.secrets.get(server.id, "password") is None
    assert registry.secrets.get(server.id, "access_token")


def test_a_refresh_token_never_follows_its_endpoint_to_another_site(
    capsys: CaptureFixture, pacs: TestPacs, token_admin: TokenServerAdmin, isolated_env: Path
) -> None:
    token = token_admin.mint_auth_token("zhiva-editor")
    link = f"{pacs.token_origin}/auth/oauth?token={token}"
    assert run(capsys, "servers", "link", link, "--ca-file", pacs.ca_file)[0] == 0
    registry = _registry(isolated_env)
    (server,) = registry.settings.servers
    assert registry.secrets.get(server.id, "refresh_origin") == pacs.token_origin
    # The endpoint is moved afterwards (an edit, an organisation list): the stored
    # refresh token stays with the site that issued it.
    other = f"{pacs.origin}/auth/refresh-token"
    assert run(capsys, "servers", "edit", server.name, "--refresh-server", other)[0] == 0
    token_admin.expire_access_tokens()
    before = token_admin.stats()
    code, out, err = run(capsys, "servers", "test", server.name)
    assert code == 1 and "Sign in again" in out + err
    assert f"issued by {pacs.token_origin}" in out + err
    assert token_admin.stats().since(before).count("refresh") == 0


def test_revoked_session_tells_the_user_to_sign_in(
    capsys: CaptureFixture, pacs: TestPacs, token_admin: TokenServerAdmin
) -> None:
    token = token_admin.mint_auth_token("zhiva-admin")
    run(
        capsys,
        "servers",
        "link",
        f"{pacs.token_origin}/auth/oauth?token={token}",
        "--ca-file",
        pacs.ca_file,
    )
    token_admin.revoke_refresh_tokens()
    token_admin.expire_access_tokens()
    code, out, _ = run(capsys, "servers", "test", "Zhiva (localhost)")
    assert code == 1
    assert "[fail]" in out and "Sign in again" in out


def test_app_link_argument_without_a_display_uses_nothing_up_and_points_to_servers_link(
    capsys: CaptureFixture,
    pacs: TestPacs,
    token_admin: TokenServerAdmin,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The window sets the server up from a link (tests/gui); without a display the
    # one-off token is left unused for `servers link`.
    monkeypatch.delenv("DISPLAY", raising=False)
    token = token_admin.mint_auth_token("zhiva-admin")
    before = token_admin.stats()
    code, out, err = run(capsys, f"zhiva-viewer://oauth?token={token}")
    assert code == 2
    assert "zhiva-viewer servers link LINK" in err and token not in out + err
    assert token_admin.stats().since(before).exchanges == 0
    assert not (isolated_env / "settings.json").exists()


def test_zhiva_login_in_the_browser_sets_the_server_up_and_sign_out_forgets_it(
    pacs: TestPacs, token_admin: TokenServerAdmin, isolated_env: Path
) -> None:
    import threading

    from tests.support.token_admin import play_browser_login
    from viewer.signin import auth_for, sign_in_with_browser, sign_out

    token_admin.configure(sign_in_state="reference")
    browsers: list[threading.Thread] = []

    def browser(url: str) -> None:
        user = "zhiva-editor"
        args = (url, user, pacs.token_users[user])
        browsers.append(
            threading.Thread(target=play_browser_login, args=args, kwargs={"ca_file": pacs.ca_file})
        )
        browsers[-1].start()

    registry = _registry(isolated_env)
    result = sign_in_with_browser(
        registry, f"{pacs.auth_url}/sign-in", ca_file=pacs.ca_file, open_browser=browser
    )
    browsers[0].join()
    assert result.created and result.claims.username == "zhiva-editor"
    assert registry.selected() is not None and registry.selected().id == result.config.id  # type: ignore[union-attr]
    assert registry.secrets.get(result.config.id, "access_token")
    sign_out(registry, result.config.id)
    assert registry.secrets.get(result.config.id, "access_token") is None
    assert registry.secrets.get(result.config.id, "refresh_token") is None
    with pytest.raises(Exception, match="no sign-in session"):
        auth_for(registry, result.config)


def test_zhiva_login_with_a_password(
    pacs: TestPacs, token_admin: TokenServerAdmin, isolated_env: Path
) -> None:
    from net import AuthError
    from viewer.signin import sign_in_with_password

    registry = _registry(isolated_env)
    with pytest.raises(AuthError, match="Wrong user name or password"):
        sign_in_with_password(registry, pacs.auth_url, "zhiva", "wrong", ca_file=pacs.ca_file)
    result = sign_in_with_password(
        registry, pacs.auth_url, "zhiva", pacs.token_users["zhiva"], ca_file=pacs.ca_file
    )
    assert not result.config.can_store  # "zhiva" may only read: store is hidden


def test_zhiva_login_keeps_a_zhiva_server_zhiva(
    pacs: TestPacs, token_admin: TokenServerAdmin, isolated_env: Path
) -> None:
    from net import ServerConfig
    from viewer.signin import sign_in_with_password

    registry = _registry(isolated_env)
    mine = ServerConfig(
        name="Zhiva",
        url=pacs.token_base_url,
        auth_type="zhiva",
        auth_server_url=f"{pacs.auth_url}/sign-in",
        ca_file=pacs.ca_file,
    )
    registry.add(mine)
    result = sign_in_with_password(
        registry, mine.auth_server_url, "zhiva", pacs.token_users["zhiva"], ca_file=pacs.ca_file
    )
    assert not result.created and result.config.id == mine.id
    assert result.config.auth_type == "zhiva"  # the form still shows "Zhiva login"
