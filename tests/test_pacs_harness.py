"""The test PACS itself: TLS, auth, the Zhiva URL layout, the data, and a clean stop.

These tests talk HTTP with plain httpx on purpose: they check the harness that the
product client's tests rely on, not the client.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest

from net._config import ServerConfig, wado_uri_root
from tests.support import pacs as pacs_module
from tests.support.pacs import PacsSetupError, TestPacs, run_test_pacs
from tests.support.testdata import pydicom_test_files
from viewer import phantom

STUDY_INSTANCE_UID = "0020000D"
NUMBER_OF_STUDY_RELATED_SERIES = "00201206"
NUMBER_OF_STUDY_RELATED_INSTANCES = "00201208"


@pytest.fixture(scope="module")
def https(pacs: TestPacs) -> Iterator[httpx.Client]:
    """A client that trusts the test CA only."""
    context = ssl.create_default_context(cafile=pacs.ca_file)
    with httpx.Client(verify=context, timeout=30.0) as client:
        yield client


@pytest.mark.integration
def test_qido_finds_the_phantom_study(pacs: TestPacs, https: httpx.Client) -> None:
    response = https.get(f"{pacs.base_url}/studies", auth=pacs.admin_auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/dicom+json")
    studies = {s[STUDY_INSTANCE_UID]["Value"][0]: s for s in response.json()}
    study = studies[pacs.data.study_uid]
    assert study[NUMBER_OF_STUDY_RELATED_SERIES]["Value"] == [3]
    assert study[NUMBER_OF_STUDY_RELATED_INSTANCES]["Value"] == [300 + 300 + 1]


@pytest.mark.integration
def test_qido_matches_names_case_insensitively(pacs: TestPacs, https: httpx.Client) -> None:
    # The query is written out, not passed as params=: Orthanc 1.10.1 does not
    # percent-decode query values, and httpx would send "*" as "%2A" and "^" as "%5E".
    response = https.get(f"{pacs.base_url}/studies?PatientName=phantom*", auth=pacs.admin_auth)
    assert response.status_code == 200
    uids = [s[STUDY_INSTANCE_UID]["Value"][0] for s in response.json()]
    assert uids == [pacs.data.study_uid]


@pytest.mark.integration
def test_orthanc_does_not_percent_decode_query_values(pacs: TestPacs, https: httpx.Client) -> None:
    # Pinned so that a fixed Orthanc is noticed: the client must send "*", "^", "/" and
    # "," unescaped (and cannot match a value containing a space except with "*").
    escaped = https.get(
        f"{pacs.base_url}/studies", params={"PatientName": "Phantom*"}, auth=pacs.admin_auth
    )
    assert "%2A" in str(escaped.request.url)
    assert escaped.status_code == 200
    assert escaped.json() == []


@pytest.mark.integration
@pytest.mark.parametrize("user", ["zhiva-admin", "zhiva-editor", "zhiva"])
def test_every_user_may_read(pacs: TestPacs, https: httpx.Client, user: str) -> None:
    response = https.get(f"{pacs.base_url}/studies?limit=1", auth=pacs.auth(user))
    assert response.status_code == 200


@pytest.mark.integration
@pytest.mark.parametrize(
    "auth", [None, ("zhiva-admin", "wrong password"), ("nobody", "x")], ids=str
)
def test_wrong_or_missing_credentials_get_401(
    pacs: TestPacs, https: httpx.Client, auth: tuple[str, str] | None
) -> None:
    response = https.get(f"{pacs.base_url}/studies", auth=auth)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.integration
def test_read_only_user_cannot_store(pacs: TestPacs, https: httpx.Client) -> None:
    # Refused by nginx before Orthanc sees the body, as in the Zhiva Basic-auth setup.
    response = https.post(
        f"{pacs.base_url}/studies",
        auth=pacs.auth("zhiva"),
        content=b"",
        headers={"content-type": 'multipart/related; type="application/dicom"; boundary=x'},
    )
    assert response.status_code == 403


@pytest.mark.integration
def test_wado_uri_returns_the_generated_instance(pacs: TestPacs, https: httpx.Client) -> None:
    series = pacs.data.series("uncompressed")
    k = 41
    # Written out: Orthanc rejects contentType=application%2Fdicom (it does not decode).
    query = (
        f"requestType=WADO&studyUID={pacs.data.study_uid}&seriesUID={series.series_uid}"
        f"&objectUID={series.sop_uids[k]}&contentType=application/dicom"
    )
    response = https.get(f"{pacs.wado_uri_url}?{query}", auth=pacs.admin_auth)
    assert response.status_code == 200
    assert response.content == series.paths[k].read_bytes()
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(response.content))
    expected = phantom.phantom_pixels(k, series.frames, series.rows, series.cols)
    assert np.array_equal(ds.pixel_array, expected)


@pytest.mark.integration
def test_bulkdata_uris_name_orthancs_own_root(pacs: TestPacs, https: httpx.Client) -> None:
    # Pinned fact for the client: the DICOMweb plugin builds BulkDataURI from the
    # Forwarded header's host and proto but its own root (/dicom-web/), which this proxy
    # (like the Zhiva one) does not serve: build URLs from the configured roots instead.
    series = pacs.data.series("uncompressed")
    response = https.get(
        f"{pacs.base_url}/studies/{pacs.data.study_uid}/series/{series.series_uid}/metadata",
        auth=pacs.admin_auth,
    )
    assert response.status_code == 200
    bulk = response.json()[0]["7FE00010"]["BulkDataURI"]
    assert bulk.startswith(f"{pacs.origin}/dicom-web/studies/{pacs.data.study_uid}/")


@pytest.mark.integration
def test_unknown_paths_are_not_proxied(pacs: TestPacs, https: httpx.Client) -> None:
    # Only the Zhiva layout is served: Orthanc's own REST API stays behind nginx.
    response = https.get(f"{pacs.origin}/system", auth=pacs.admin_auth)
    assert response.status_code == 404


@pytest.mark.integration
def test_orthanc_accepted_the_pydicom_files(pacs: TestPacs) -> None:
    stored, refused = pacs.data.pydicom_files, pacs.data.pydicom_refused
    assert len(stored) + len(refused) == len(pydicom_test_files())
    assert len(stored) > 100  # 145 of 176 with pydicom 3.0.2 and Orthanc 1.10.1
    names = {f.name for f in stored}
    assert "CT_small.dcm" in names
    for stored_file in stored[:20]:
        ds = pydicom.dcmread(stored_file.path, stop_before_pixels=True, force=True)
        assert stored_file.sop_uid == ds.SOPInstanceUID
        assert stored_file.series_uid == ds.SeriesInstanceUID
        assert stored_file.study_uid == ds.StudyInstanceUID
    assert {r.name for r in refused} >= {"dicomdirtests/DICOMDIR"}
    assert any(r.reason == "AlreadyStored" for r in refused)


@pytest.mark.integration
def test_pacs_server_config_points_at_the_test_pacs(
    pacs: TestPacs, pacs_server_config: ServerConfig
) -> None:
    assert pacs_server_config.url == pacs.base_url
    assert pacs_server_config.ca_file == pacs.ca_file
    assert wado_uri_root(pacs_server_config) == pacs.wado_uri_url


@pytest.mark.integration
def test_expired_certificate_fails_tls(pacs: TestPacs, https: httpx.Client) -> None:
    with pytest.raises(httpx.ConnectError, match="expired"):
        https.get(f"{pacs.expired_base_url}/studies", auth=pacs.admin_auth)


@pytest.mark.integration
def test_certificate_is_for_localhost_only(pacs: TestPacs, https: httpx.Client) -> None:
    with pytest.raises(httpx.ConnectError, match="mismatch"):
        https.get(f"{pacs.ip_base_url}/studies", auth=pacs.admin_auth)


@pytest.mark.integration
def test_wrong_ca_does_not_verify(pacs: TestPacs) -> None:
    context = ssl.create_default_context(cafile=pacs.wrong_ca_file)
    with (
        httpx.Client(verify=context) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(f"{pacs.base_url}/studies")


@pytest.mark.integration
def test_certificates_are_what_the_client_tests_need(pacs: TestPacs) -> None:
    def text(*args: str) -> str:
        return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout

    ca = text("x509", "-in", pacs.ca_file, "-noout", "-ext", "basicConstraints")
    assert "CA:TRUE" in ca
    leaf = Path(pacs.workdir) / "tls" / "localhost.pem"
    san = text("x509", "-in", str(leaf), "-noout", "-ext", "subjectAltName")
    assert "DNS:localhost" in san and "IP Address" not in san


@pytest.mark.integration
def test_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    # A second, separate instance: the session's PACS keeps serving the other tests.
    with run_test_pacs(tmp_path) as second:
        pids = second.pids()
        ports = [second.port, second.expired_port, second.orthanc_port]
        assert len(pids) >= 2  # Orthanc and nginx
        for port in ports:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert second.pids() == []
    for pid in pids:
        assert not _alive(pid), f"process {pid} outlived the test PACS"
    # (Not asserting the ports are closed: parallel sessions may have taken them since.)
    # Logs stay for post-mortems; Orthanc's storage does not.
    assert (tmp_path / "orthanc" / "orthanc.log").is_file()
    assert not (tmp_path / "orthanc" / "storage").exists()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_missing_packages_fail_with_their_debian_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pacs_module, "_SYSTEM_PATH", str(tmp_path))
    monkeypatch.setattr(pacs_module, "ORTHANC_DICOMWEB_PLUGIN", tmp_path / "missing.so")
    with pytest.raises(PacsSetupError) as info:
        pacs_module.find_system_tools()
    message = str(info.value)
    for package in ("`orthanc`", "`orthanc-dicomweb`", "`nginx-light`", "`openssl`"):
        assert package in message


def test_a_server_that_dies_at_startup_fails_with_its_log(tmp_path: Path) -> None:
    process = pacs_module._spawn(
        "fake server",
        ["sh", "-c", "echo 'cannot open the index'; exit 3"],
        tmp_path / "log",
        tmp_path,
    )
    with pytest.raises(PacsSetupError, match="cannot open the index") as info:
        pacs_module._wait_until(lambda: False, process, "answering", timeout=30)
    assert "exited with code 3" in str(info.value)
    assert info.value.process is process
