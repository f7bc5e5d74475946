"""Suite-wide fixtures: the test PACS, the hostile server, and the switch that skips
integration tests.

Integration tests (``@pytest.mark.integration``) run against a real Orthanc behind
nginx TLS that the `pacs` fixture starts once per session (tests/support/pacs.py).
Set ``ZHIVA_SKIP_INTEGRATION=1`` to skip them, e.g. on a machine without the Debian
packages; CI never sets it, and without it a missing package fails the suite.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from net._config import ServerConfig
from net._quirks import forget_servers
from tests.support.hostile import HostileServer, certificates_in, run_hostile_server
from tests.support.pacs import Certificates, TestPacs, run_test_pacs
from tests.support.quirks import QuirksFront, run_quirks_front
from tests.support.testdata import ensure_phantom, upload_testdata
from tests.support.token_admin import TokenServerAdmin


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ZHIVA_SKIP_INTEGRATION") != "1":
        return
    skip = pytest.mark.skip(reason="ZHIVA_SKIP_INTEGRATION=1 skips the integration tests")
    for item in items:
        if item.get_closest_marker("integration") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _forget_what_servers_did() -> None:
    """Each test starts with a client that has learned nothing about any server
    (`net._quirks.ServerMemory` lives as long as the process)."""
    forget_servers()


@pytest.fixture(scope="session")
def hostile_certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return certificates_in(tmp_path_factory.mktemp("hostile-tls"))


@pytest.fixture
def hostile(hostile_certificates: Certificates) -> Iterator[HostileServer]:
    """The suite's hostile HTTPS server (loopback only) for one test: give it routes,
    point a client at `origin` (tests/support/hostile.py)."""
    with run_hostile_server(hostile_certificates) as server:
        yield server


@pytest.fixture(scope="session")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestPacs]:
    """The session's test PACS, holding the phantom study and pydicom's test files."""
    phantom = ensure_phantom()  # cached in .cache/testdata/ after the first run
    with run_test_pacs(tmp_path_factory.mktemp("pacs")) as running:
        data = upload_testdata(running.orthanc_url, running.admin_auth, phantom)
        yield TestPacs.from_running(running, data)


@pytest.fixture(scope="session")
def pacs_server_config(pacs: TestPacs) -> ServerConfig:
    """The test PACS as a user would configure it: Basic auth as ``zhiva-admin``.

    The password is not part of a config (it lives in the secret store): use
    ``pacs.users["zhiva-admin"]``.
    """
    return ServerConfig(
        name="Test PACS",
        url=pacs.base_url,
        auth_type="basic",
        username="zhiva-admin",
        wado_uri_postfix="/zhiva/wado",
        ca_file=pacs.ca_file,
    )


@pytest.fixture(scope="session")
def token_admin(pacs: TestPacs) -> Iterator[TokenServerAdmin]:
    """Test control of the session's token server (mint, clock, expire, revoke, stats).

    Shared by the session: put back what you change (`clock_offset` and `settings` are
    context managers) or call `reset`.
    """
    with TokenServerAdmin(pacs.token_server_admin_url) as admin:
        yield admin


@pytest.fixture
def fresh_token_server(token_admin: TokenServerAdmin) -> Iterator[None]:
    """The shared token server at its defaults before and after the test."""
    token_admin.reset()
    yield
    token_admin.reset()


@pytest.fixture(scope="session")
def quirks(pacs: TestPacs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuirksFront]:
    """The quirks front (tests/support/quirks.py) before the session's Orthanc.

    ``https://localhost:<port>/zhiva/pacs`` as the test PACS serves it, bent by switches:
    ``with quirks.switched(series_retrieve=404): ...``. Shared by the session.
    """
    tls = Path(pacs.workdir) / "tls"
    with run_quirks_front(
        workdir=tmp_path_factory.mktemp("quirks"),
        orthanc_url=pacs.orthanc_url,
        leaf_cert=str(tls / "localhost.pem"),
        leaf_key=str(tls / "localhost.key"),
        ca_file=pacs.ca_file,
    ) as front:
        yield front
