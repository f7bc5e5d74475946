"""The Local Server preset and ``servers test`` against the real test PACS (Orthanc + nginx TLS).

The test PACS has the Zhiva local PACS's layout at another host and port, so the preset
works there with only the host and port of its URL changed (plus the CA file of the test
PKI and Basic credentials, which are deployment details, not the preset's values).
"""

from __future__ import annotations

import io
import sys

import pytest

from tests.support.pacs import TestPacs
from viewer.cli import main
from viewer.settings import load_presets

pytestmark = pytest.mark.integration


def _run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_preset_works_with_only_host_and_port_changed(
    pacs: TestPacs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (preset,) = load_presets()
    url = preset.url.replace("https://localhost", pacs.origin, 1)
    assert url == pacs.base_url
    user, password = pacs.auth("zhiva")
    code, _, err = _run(
        capsys, monkeypatch, "servers", "add", "Test PACS", "--from", "Local Server", "--url", url,
        "--ca-file", pacs.ca_file, "--auth", "basic", "--username", user, "--password-stdin",
        stdin=password + "\n",
    )  # fmt: skip
    assert code == 0, err

    code, out, err = _run(capsys, monkeypatch, "servers", "test", "Test PACS")
    assert code == 0, out + err
    assert "[pass] QIDO search" in out and "[pass] signed in: as zhiva" in out
    assert "[pass] WADO retrieval: frame 1 retrieved" in out
    assert password not in out + err

    # WADO-URI through the preset's root-relative postfix (/zhiva/wado)
    code, _, err = _run(
        capsys, monkeypatch, "servers", "edit", "Test PACS", "--image-rendering", "wado"
    )
    assert code == 0, err
    code, out, _ = _run(capsys, monkeypatch, "servers", "test", "Test PACS")
    assert code == 0, out
    assert "[pass] WADO retrieval: WADO-URI instance retrieved" in out

    # a wrong stored password: the sign-in row fails and the exit code says so
    code, _, _ = _run(
        capsys, monkeypatch, "servers", "edit", "Test PACS", "--password-stdin", stdin="wrong\n"
    )
    assert code == 0
    code, out, _ = _run(capsys, monkeypatch, "servers", "test", "Test PACS")
    assert code == 1
    assert "[fail] signed in" in out
