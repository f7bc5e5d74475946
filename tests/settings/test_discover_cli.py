"""`zhiva-viewer servers discover`: the proposed server, added, passes `servers test`."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.capture import CaptureFixture

from tests.settings.test_cli import run
from tests.support.pacs import DCM4CHEE_AET, TestPacs
from viewer.settings import ServerRegistry, resolve_paths


@pytest.mark.integration
def test_servers_discover_add_then_servers_test(
    capsys: CaptureFixture, pacs: TestPacs, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(
        capsys,
        "servers", "discover", pacs.dcm4chee_url, "--username", "zhiva-admin",
        "--password-stdin", "--ca-file", pacs.ca_file, "--add", "Archive",
        stdin=pacs.users["zhiva-admin"] + "\n",
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0, err
    assert "[found] DICOMweb at" in out and " * postfix: aets/" in out and "Added 'Archive'" in out
    assert pacs.users["zhiva-admin"] not in out + err
    code, out, err = run(capsys, "servers", "test", "Archive")
    assert code == 0, out + err
    registry = ServerRegistry.open(resolve_paths(str(isolated_env)), fetch_organisation=False)
    assert registry.find("Archive").config.postfix == f"aets/{DCM4CHEE_AET}"


def test_discover_refuses_plain_http(capsys: CaptureFixture, isolated_env: Path) -> None:
    code, _, err = run(capsys, "servers", "discover", "http://pacs.example.org")
    assert code == 1 and "https" in err and "Traceback" not in err
