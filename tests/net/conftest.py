"""Fixtures of the network tests: the suite's hostile HTTPS server (loopback only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.hostile import HostileServer, certificates_in, run_hostile_server
from tests.support.pacs import Certificates


@pytest.fixture(scope="session")
def hostile_certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return certificates_in(tmp_path_factory.mktemp("hostile-tls"))


@pytest.fixture
def hostile(hostile_certificates: Certificates) -> Iterator[HostileServer]:
    """A hostile server for one test: give it routes, point a client at `origin`."""
    with run_hostile_server(hostile_certificates) as server:
        yield server
