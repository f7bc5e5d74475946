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
