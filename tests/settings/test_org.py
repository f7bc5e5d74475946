"""Organisation lists: sources, precedence, the https URL with its offline copy."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.pacs import Certificates, make_certificates
from viewer.settings import (
    AppPaths,
    ServerListError,
    encode_server_list,
    fetch_server_list,
    load_organisation_servers,
)
from viewer.settings._schema import derive_server_id

from .conftest import server


def _write(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document) if not isinstance(document, bytes) else document.decode())
    return path


def _ids(result: object) -> dict[str, str]:
    return {m.config.name: m.source for m in result.servers}  # type: ignore[attr-defined]


def test_nothing_configured_means_no_managed_servers(paths: AppPaths, tmp_path: Path) -> None:
    result = load_organisation_servers(paths, env={}, system_dirs=[tmp_path / "none"])
    assert result.servers == () and result.notices == ()


def test_system_files_follow_the_xdg_order(paths: AppPaths, tmp_path: Path) -> None:
    first, second = tmp_path / "xdg1" / "zhiva-viewer", tmp_path / "xdg2" / "zhiva-viewer"
    same = server("Shared", id="shared-id")
    _write(
        first / "servers.json",
        {"servers": [{"id": "shared-id", "name": "Shared", "url": "https://first.org"}]},
    )
    _write(second / "servers.json", json.loads(encode_server_list([same, server("Only second")])))
    result = load_organisation_servers(paths, env={}, system_dirs=[first, second])
    by_name = {m.config.name: m for m in result.servers}
    assert by_name["Shared"].config.url == "https://first.org"  # the preferred dir wins
    assert by_name["Shared"].source == str(first / "servers.json")
    assert by_name["Only second"].source == str(second / "servers.json")


def test_the_default_system_dirs_come_from_xdg_config_dirs(
    paths: AppPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = tmp_path / "etc-xdg"
    _write(
        xdg / "zhiva-viewer" / "servers.json",
        {"servers": [{"name": "Hospital", "url": "https://h.org"}]},
    )
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"{tmp_path / 'empty'}:{xdg}")
    result = load_organisation_servers(paths)
    assert _ids(result) == {"Hospital": str(xdg / "zhiva-viewer" / "servers.json")}


def test_env_file_beats_system_files(paths: AppPaths, tmp_path: Path) -> None:
    system = tmp_path / "sys"
    _write(
        system / "servers.json",
        {"servers": [{"id": "x", "name": "From system", "url": "https://s.org"}]},
    )
    env_file = _write(
        tmp_path / "mine.json",
        {"servers": [{"id": "x", "name": "From env", "url": "https://e.org"}]},
    )
    result = load_organisation_servers(
        paths, env={"ZHIVA_SERVERS_FILE": str(env_file)}, system_dirs=[system]
    )
    assert _ids(result) == {"From env": str(env_file)}


def test_ids_missing_in_org_files_are_stable_and_shared(paths: AppPaths, tmp_path: Path) -> None:
    system = tmp_path / "sys"
    entry = {"name": "Hospital", "url": "https://h.org"}
    _write(system / "servers.json", {"servers": [entry]})
    env_file = _write(tmp_path / "env.json", [entry])
    result = load_organisation_servers(
        paths, env={"ZHIVA_SERVERS_FILE": str(env_file)}, system_dirs=[system]
    )
    (only,) = result.servers  # listed twice, counted once
    assert only.config.id == derive_server_id("organisation", "Hospital")


def test_a_broken_source_is_skipped_with_a_notice(paths: AppPaths, tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    _write(good / "servers.json", {"servers": [{"name": "Good", "url": "https://g.org"}]})
    _write(bad / "servers.json", b'{"servers": [{"name": 1}]}')
    result = load_organisation_servers(
        paths, env={"ZHIVA_SERVERS_FILE": str(tmp_path / "missing.json")}, system_dirs=[bad, good]
    )
    assert _ids(result) == {"Good": str(good / "servers.json")}
    assert any("missing.json" in n and "does not exist" in n for n in result.notices)
    assert any(str(bad / "servers.json") in n and "skipped" in n for n in result.notices)


def test_a_foreign_json_file_is_refused_clearly(paths: AppPaths, tmp_path: Path) -> None:
    env_file = _write(tmp_path / "other.json", {"format": "ohif-config", "servers": []})
    result = load_organisation_servers(
        paths, env={"ZHIVA_SERVERS_FILE": str(env_file)}, system_dirs=[]
    )
    assert result.servers == ()
    assert any("not a Zhiva Viewer server list" in n for n in result.notices)


# --- the https URL -----------------------------------------------------------------------


@dataclass
class ListServer:
    url: str
    certs: Certificates
    body: bytes = b""
    status: int = 200
    requests: int = 0
    #: When set, the answer waits for it: a list server that is slow to answer.
    hold: threading.Event | None = None
    #: Answer with a body that never ends (no Content-Length), counting what was sent.
    endless: bool = False
    sent: int = 0
    #: Content-Length to announce instead of the body's real length.
    announce: int | None = None


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def list_server(certificates: Certificates) -> Iterator[ListServer]:
    """A tiny https server (a test-CA certificate for localhost) serving one list."""
    state = ListServer(url="", certs=certificates)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests += 1
            if state.hold is not None:
                state.hold.wait()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            if state.endless:
                self.end_headers()
                chunk = b" " * 65536
                try:
                    while True:  # until the client hangs up
                        self.wfile.write(chunk)
                        state.sent += len(chunk)
                except OSError:
                    return
            length = len(state.body) if state.announce is None else state.announce
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.leaf_cert, certificates.leaf_key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    # A short poll interval: shutdown() waits for the current poll to end.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"https://localhost:{httpd.server_address[1]}/org/servers.json"
    try:
        yield state
    finally:
        if state.hold is not None:
            state.hold.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _url_env(state: ListServer) -> dict[str, str]:
    return {"ZHIVA_SERVERS_URL": state.url, "ZHIVA_SERVERS_CA_FILE": str(state.certs.ca_file)}


def test_the_url_list_is_fetched_over_verified_tls_and_cached(
    paths: AppPaths, list_server: ListServer
) -> None:
    list_server.body = encode_server_list([server("Cloud PACS", id="cloud")])
    result = load_organisation_servers(paths, env=_url_env(list_server), system_dirs=[])
    assert _ids(result) == {"Cloud PACS": list_server.url}
    assert result.notices == ()
    cached = json.loads(paths.organisation_cache.read_bytes())
    assert cached["url"] == list_server.url and "Cloud PACS" in cached["body"]


def test_offline_start_uses_the_last_good_copy(paths: AppPaths, list_server: ListServer) -> None:
    list_server.body = encode_server_list([server("Cloud PACS", id="cloud")])
    load_organisation_servers(paths, env=_url_env(list_server), system_dirs=[])
    list_server.status, list_server.body = 500, b"down"
    result = load_organisation_servers(paths, env=_url_env(list_server), system_dirs=[])
    (entry,) = result.servers
    assert entry.config.id == "cloud" and "(copy from " in entry.source
    assert any("could not be refreshed" in n and "using the copy from" in n for n in result.notices)
    # a bad answer never replaces the good copy
    assert "Cloud PACS" in json.loads(paths.organisation_cache.read_bytes())["body"]


def test_fetch_false_reads_the_copy_without_the_network(
    paths: AppPaths, list_server: ListServer
) -> None:
    list_server.body = encode_server_list([server("Cloud PACS")])
    load_organisation_servers(paths, env=_url_env(list_server), system_dirs=[])
    before = list_server.requests
    result = load_organisation_servers(
        paths, env=_url_env(list_server), system_dirs=[], fetch=False
    )
    assert list_server.requests == before
    assert [m.config.name for m in result.servers] == ["Cloud PACS"] and result.notices == ()


def test_an_invalid_list_at_the_url_keeps_the_copy(
    paths: AppPaths, list_server: ListServer
) -> None:
    list_server.body = encode_server_list([server("Cloud PACS")])
    load_organisation_servers(paths, env=_url_env(list_server), system_dirs=[])
    list_server.body = b"<html>login page</html>"
    result = load_organisation_servers(paths, env=_url_env(list_server), system_dirs=[])
    assert [m.config.name for m in result.servers] == ["Cloud PACS"]
    assert any("not valid JSON" in n for n in result.notices)


def test_an_untrusted_certificate_is_refused(paths: AppPaths, list_server: ListServer) -> None:
    list_server.body = encode_server_list([server("Cloud PACS")])
    env = {
        "ZHIVA_SERVERS_URL": list_server.url,
        "ZHIVA_SERVERS_CA_FILE": str(list_server.certs.wrong_ca_file),
    }
    result = load_organisation_servers(paths, env=env, system_dirs=[])
    assert result.servers == ()
    assert any("certificate" in n.lower() for n in result.notices), result.notices
    with pytest.raises(ServerListError):
        fetch_server_list(list_server.url)  # the OS store does not know the test CA


def test_a_changed_url_does_not_reuse_the_old_copy(
    paths: AppPaths, list_server: ListServer
) -> None:
    list_server.body = encode_server_list([server("Cloud PACS")])
    load_organisation_servers(paths, env=_url_env(list_server), system_dirs=[])
    env = {
        "ZHIVA_SERVERS_URL": "https://localhost:1/other.json",
        "ZHIVA_SERVERS_CA_FILE": str(list_server.certs.ca_file),
    }
    result = load_organisation_servers(paths, env=env, system_dirs=[])
    assert result.servers == ()
    assert any("could not be loaded" in n for n in result.notices)


def test_the_url_can_come_from_the_system_file(
    paths: AppPaths, list_server: ListServer, tmp_path: Path
) -> None:
    list_server.body = encode_server_list([server("From URL", id="u")])
    system = tmp_path / "sys"
    _write(
        system / "servers.json",
        {
            "servers_url": list_server.url,
            "servers_ca_file": str(list_server.certs.ca_file),
            "servers": [{"id": "u", "name": "From file", "url": "https://f.org"}],
        },
    )
    result = load_organisation_servers(paths, env={}, system_dirs=[system])
    assert _ids(result) == {"From URL": list_server.url}  # the URL outranks system files


def test_plain_http_urls_are_refused() -> None:
    with pytest.raises(ServerListError, match="https"):
        fetch_server_list("http://example.org/servers.json")


#: A liveness bound for calls that must return promptly: far above the named waits
#: involved, so a pass says "it returned", never "it was fast".
HUNG = 30.0


def _in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    thread.start()
    return thread, outcome


def test_an_endless_list_is_cut_off_at_the_cap_while_reading(list_server: ListServer) -> None:
    # The 4 MiB cap was checked after reading everything: an endless answer never ended.
    list_server.endless = True

    def fetch_error() -> ServerListError:
        with pytest.raises(ServerListError) as caught:
            fetch_server_list(list_server.url, ca_file=str(list_server.certs.ca_file))
        return caught.value

    fetch, outcome = _in_thread(fetch_error)
    fetch.join(HUNG)
    assert not fetch.is_alive(), "the fetch kept reading an endless answer"
    assert "4 MiB" in str(outcome[0])
    assert list_server.sent < 16 * 1024 * 1024  # stopped near the cap, not at the end


def test_an_announced_length_over_the_cap_is_refused_before_reading(
    list_server: ListServer,
) -> None:
    list_server.body, list_server.announce = b"[]", 64 * 1024 * 1024
    with pytest.raises(ServerListError, match="4 MiB"):
        fetch_server_list(list_server.url, ca_file=str(list_server.certs.ca_file))


def test_a_slow_list_url_never_holds_up_loading_the_settings(
    paths: AppPaths, list_server: ListServer
) -> None:
    list_server.body = encode_server_list([server("Cloud PACS", id="cloud")])
    load_organisation_servers(paths, env=_url_env(list_server), system_dirs=[])
    # The URL stops answering (a proxy that accepts and waits, a server under load).
    list_server.hold = threading.Event()
    list_server.body = encode_server_list([server("Cloud PACS 2", id="cloud2")])
    loading, outcome = _in_thread(
        lambda: load_organisation_servers(
            paths, env=_url_env(list_server), system_dirs=[], url_wait=0.2
        )
    )
    loading.join(HUNG)
    assert not loading.is_alive(), "loading the settings waited for the slow URL"
    result = outcome[0]
    assert [m.config.name for m in result.servers] == ["Cloud PACS"]  # type: ignore[attr-defined]
    assert any("slow to answer" in n for n in result.notices)  # type: ignore[attr-defined]
    # The fetch goes on in the background and keeps the new list for the next start.
    list_server.hold.set()
    assert result.refreshed is not None and result.refreshed.wait(HUNG)  # type: ignore[attr-defined]
    later = load_organisation_servers(paths, env=_url_env(list_server), system_dirs=[], fetch=False)
    assert [m.config.name for m in later.servers] == ["Cloud PACS 2"]
