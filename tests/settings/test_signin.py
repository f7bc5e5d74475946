"""Sign-in glue (viewer.signin) over a real registry and secrets file, no network.

The flows against the real token server are in test_signin_cli.py.
"""

from __future__ import annotations

from pathlib import Path

from net import ServerConfig, TokenSet
from viewer.settings import ServerRegistry, resolve_paths
from viewer.signin import store_session


def _registry(config_dir: Path) -> ServerRegistry:
    return ServerRegistry.open(resolve_paths(str(config_dir)), fetch_organisation=False)


def test_a_session_without_a_refresh_token_drops_the_stored_one(isolated_env: Path) -> None:
    registry = _registry(isolated_env)
    server = registry.add(ServerConfig(name="Gate", url="https://gate.example.org/zhiva/pacs"))
    first = TokenSet(
        access_token="access-one",
        refresh_token="refresh-one",
        refresh_server="https://gate.example.org/auth/refresh-token",
        issuer="https://gate.example.org",
    )
    store_session(registry, server.id, first)
    assert registry.secrets.get(server.id, "refresh_token") == "refresh-one"
    assert registry.secrets.get(server.id, "refresh_origin") == "https://gate.example.org"
    # A later exchange (another token server, perhaps) that issued no refresh token: the
    # old one must not be kept and sent along with the new session.
    store_session(registry, server.id, TokenSet(access_token="access-two"))
    assert registry.secrets.get(server.id, "access_token") == "access-two"
    assert registry.secrets.get(server.id, "refresh_token") is None
    assert registry.secrets.get(server.id, "refresh_origin") is None


def test_the_revision_changes_with_credentials_and_config_but_not_with_a_refresh(
    isolated_env: Path,
) -> None:
    # The app reconnects when a server's revision changes: an edit, a new password, a
    # sign-in or sign-out; a token the connection refreshed itself is no reason.
    from viewer.signin import sign_out

    registry = _registry(isolated_env)
    server = registry.add(ServerConfig(name="Gate", url="https://gate.example.org/zhiva/pacs"))
    seen = [registry.revision(server.id)]
    store_session(registry, server.id, TokenSet(access_token="a1", refresh_token="r1"))
    seen.append(registry.revision(server.id))
    store_session(
        registry, server.id, TokenSet(access_token="a2", refresh_token="r1"), renewal=True
    )
    assert registry.revision(server.id) == seen[-1]
    assert registry.secrets.get(server.id, "access_token") == "a2"  # stored all the same
    sign_out(registry, server.id)
    seen.append(registry.revision(server.id))
    registry.edit(server.id, {"url": "https://gate.example.org:8443/zhiva/pacs"})
    seen.append(registry.revision(server.id))
    assert len(set(seen)) == len(seen)
