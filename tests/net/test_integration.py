"""The DICOMweb client against the real test PACS: Orthanc 1.10 + DICOMweb behind nginx TLS.

Every endpoint of `DicomWebClient` is exercised here against real servers; the
phantom's pixel data must come back byte-identical to what was generated.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from collections import Counter

import httpx
import msgspec
import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, generate_uid

from net import (
    AuthError,
    CertificateExpired,
    DicomWebClient,
    HostnameMismatch,
    NotFound,
    ServerConfig,
    StudyQuery,
    UntrustedCertificate,
    check_server,
)
from tests.support.pacs import TestPacs
from viewer.phantom import phantom_pixels

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(pacs: TestPacs, pacs_server_config: ServerConfig) -> DicomWebClient:
    with DicomWebClient(pacs_server_config, httpx.BasicAuth(*pacs.admin_auth)) as c:
        yield c


def _replace(config: ServerConfig, **changes: object) -> ServerConfig:
    return msgspec.structs.replace(config, **changes)


# --- QIDO-RS ------------------------------------------------------------------------------


def test_search_finds_the_phantom_study(client: DicomWebClient, pacs: TestPacs) -> None:
    phantom = pacs.data.phantom
    studies = client.search_studies(StudyQuery(patient_id=phantom.patient_id))
    assert [s.study_uid for s in studies] == [phantom.study_uid]
    study = studies[0]
    assert (
        study.patient_name
        == pydicom.valuerep.PersonName(phantom.patient_name).family_name
        + ", "
        + pydicom.valuerep.PersonName(phantom.patient_name).given_name
    )
    assert study.study_date is not None
    assert "CT" in study.modalities


def test_search_by_name_fragment_date_and_modality(client: DicomWebClient, pacs: TestPacs) -> None:
    phantom = pacs.data.phantom
    family = pydicom.valuerep.PersonName(phantom.patient_name).family_name
    fragment = family[1:-1]  # found only because the client wraps it as *fragment*
    by_name = {s.study_uid for s in client.search_studies(StudyQuery(patient_name=fragment))}
    assert phantom.study_uid in by_name
    study = client.search_studies(StudyQuery(study_uid=phantom.study_uid))[0]
    assert study.study_date is not None
    day = StudyQuery(
        study_date_from=study.study_date, study_date_to=study.study_date, modality="CT"
    )
    assert phantom.study_uid in {s.study_uid for s in client.search_studies(day)}
    before = StudyQuery(
        study_date_to=study.study_date - dt.timedelta(days=1), patient_id=phantom.patient_id
    )
    assert client.search_studies(before) == []


def test_paging_returns_every_study_once(client: DicomWebClient) -> None:
    everything = {s.study_uid for s in client.search_studies()}
    assert len(everything) > 10  # the phantom plus pydicom's test files
    paged = [s.study_uid for s in client.iter_studies(page_size=7)]
    assert len(paged) == len(set(paged))
    assert set(paged) == everything
    assert len(client.search_studies(limit=3)) == 3


def test_series_and_instances(client: DicomWebClient, pacs: TestPacs) -> None:
    data = pacs.data
    series = {s.series_uid: s for s in client.search_series(data.study_uid)}
    for variant in ("uncompressed", "j2k", "multiframe"):
        expected = data.series(variant)
        assert expected.series_uid in series
        assert series[expected.series_uid].modality
    unc = data.series("uncompressed")
    assert series[unc.series_uid].instance_count == len(unc.sop_uids)
    instances = client.search_instances(data.study_uid, unc.series_uid)
    assert {i.sop_instance_uid for i in instances} == set(unc.sop_uids)
    mf = data.series("multiframe")
    (mf_instance,) = client.search_instances(data.study_uid, mf.series_uid)
    assert mf_instance.sop_instance_uid == mf.sop_uids[0]


def test_unknown_study_is_empty_and_unknown_path_is_not_found(client: DicomWebClient) -> None:
    assert client.search_series("1.2.3.4.5.6.7.8.9") == []
    with pytest.raises(NotFound):
        client.series_metadata("1.2.3.4.5.6.7.8.9", "1.2.3")


# --- WADO-RS ------------------------------------------------------------------------------


def test_series_metadata_has_geometry_and_no_pixels(client: DicomWebClient, pacs: TestPacs) -> None:
    unc = pacs.data.series("uncompressed")
    metadata = client.series_metadata(pacs.data.study_uid, unc.series_uid)
    assert len(metadata) == len(unc.sop_uids)
    by_number = sorted(metadata, key=lambda ds: int(ds.InstanceNumber))
    z = [float(ds.ImagePositionPatient[2]) for ds in by_number]
    assert len(set(np.round(np.diff(z), 4))) == 1  # evenly spaced
    assert all(len(ds.get("PixelData", b"") or b"") == 0 for ds in metadata)


def test_study_metadata_covers_every_series(client: DicomWebClient, pacs: TestPacs) -> None:
    metadata = client.study_metadata(pacs.data.study_uid)
    uids = {str(ds.SeriesInstanceUID) for ds in metadata}
    assert {pacs.data.series(v).series_uid for v in ("uncompressed", "j2k", "multiframe")} <= uids


def test_iter_series_is_byte_identical_to_what_was_generated(
    client: DicomWebClient, pacs: TestPacs
) -> None:
    unc = pacs.data.series("uncompressed")
    n = len(unc.sop_uids)
    seen = set()
    for ds in client.iter_series(pacs.data.study_uid, unc.series_uid):
        i = int(ds.InstanceNumber) - 1
        expected = phantom_pixels(i, n, unc.rows, unc.cols)
        assert ds.PixelData == expected.astype("<i2").tobytes(), f"slice {i}"
        seen.add(str(ds.SOPInstanceUID))
    assert seen == set(unc.sop_uids)


def test_iter_series_through_nginx_default_buffers_gives_exactly_the_files(
    pacs: TestPacs, pacs_server_config: ServerConfig
) -> None:
    # nginx as it ships (4 KiB proxy buffers, proxy_buffering off): the stream comes in
    # 4 KiB TLS records, so part boundaries and headers are split across many reads.
    config = _replace(pacs_server_config, name="Default buffers", url=pacs.default_buffers_base_url)
    unc = pacs.data.series("uncompressed")
    files = dict(zip(unc.sop_uids, unc.paths, strict=True))
    seen: list[str] = []
    with DicomWebClient(config, httpx.BasicAuth(*pacs.admin_auth)) as client:
        for ds in client.iter_series(pacs.data.study_uid, unc.series_uid):
            sop = str(ds.SOPInstanceUID)
            assert sop in files, f"{sop} is not an instance of the series"
            assert ds.PixelData == pydicom.dcmread(files[sop]).PixelData, sop
            seen.append(sop)
    assert sorted(seen) == sorted(unc.sop_uids)  # each instance once, none missing


def test_j2k_series_arrives_as_stored_and_decodes_losslessly(
    client: DicomWebClient, pacs: TestPacs
) -> None:
    j2k = pacs.data.series("j2k")
    n = len(j2k.sop_uids)
    count = 0
    for ds in client.iter_series(pacs.data.study_uid, j2k.series_uid):
        assert ds.file_meta.TransferSyntaxUID == JPEG2000Lossless
        count += 1
        if count % 60 == 1:  # decoding every slice would only slow the suite down
            i = int(ds.InstanceNumber) - 1
            assert np.array_equal(ds.pixel_array, phantom_pixels(i, n, j2k.rows, j2k.cols))
    assert count == n


def test_retrieve_instance_and_frames(client: DicomWebClient, pacs: TestPacs) -> None:
    data = pacs.data
    unc = data.series("uncompressed")
    sop = unc.sop_uids[17]
    ds = client.retrieve_instance(data.study_uid, unc.series_uid, sop)
    assert ds.SOPInstanceUID == sop
    (frame,) = client.retrieve_frames(data.study_uid, unc.series_uid, sop, [1])
    assert frame.data == ds.PixelData

    j2k = data.series("j2k")
    (jframe,) = client.retrieve_frames(data.study_uid, j2k.series_uid, j2k.sop_uids[3], [1])
    # transfer-syntax=* gives the stored JPEG 2000 codestream, not a transcoded one
    assert jframe.data[:4] == b"\xff\x4f\xff\x51" or jframe.media_type == "image/jp2"

    mf = data.series("multiframe")
    original = pydicom.dcmread(mf.paths[0])
    frames = client.retrieve_frames(
        data.study_uid, mf.series_uid, mf.sop_uids[0], [1, 5, mf.frames]
    )
    assert [f.number for f in frames] == [1, 5, mf.frames]
    frame_bytes = original.Rows * original.Columns * original.BitsAllocated // 8
    for f in frames:
        start = (f.number - 1) * frame_bytes
        assert f.data[:frame_bytes] == original.PixelData[start : start + frame_bytes]


def test_every_accepted_pydicom_file_comes_back_intact(
    client: DicomWebClient, pacs: TestPacs
) -> None:
    assert len(pacs.data.pydicom_files) > 100
    counts = Counter(f.sop_uid for f in pacs.data.pydicom_files)
    for stored in pacs.data.pydicom_files:
        if counts[stored.sop_uid] > 1:
            # Orthanc stores them as different patients' instances, but WADO-RS can only
            # name one by its UIDs: the server answers 404 for the ambiguous pair.
            continue
        ds = client.retrieve_instance(stored.study_uid, stored.series_uid, stored.sop_uid)
        assert ds.SOPInstanceUID == stored.sop_uid, stored.name
        original = pydicom.dcmread(stored.path, force=True)
        if "PixelData" in original and "PixelData" in ds:
            assert ds.PixelData == original.PixelData, stored.name


def test_rendered_and_thumbnail_fallback(client: DicomWebClient, pacs: TestPacs) -> None:
    data = pacs.data
    unc = data.series("uncompressed")
    image = client.rendered(
        data.study_uid, unc.series_uid, unc.sop_uids[0], viewport=(64, 64), window=(40, 400)
    )
    assert image.media_type in ("image/jpeg", "image/png")
    thumb = client.thumbnail(data.study_uid, unc.series_uid)
    assert thumb.source == "rendered"  # Orthanc has no /thumbnail
    assert thumb.media_type.startswith("image/") and len(thumb.data) > 100


def test_wado_uri(client: DicomWebClient, pacs: TestPacs) -> None:
    data = pacs.data
    unc = data.series("uncompressed")
    ds = client.wado_uri(data.study_uid, unc.series_uid, unc.sop_uids[2])
    assert isinstance(ds, pydicom.Dataset) and ds.SOPInstanceUID == unc.sop_uids[2]
    jpeg = client.wado_uri(
        data.study_uid, unc.series_uid, unc.sop_uids[2], content_type="image/jpeg"
    )
    assert not isinstance(jpeg, pydicom.Dataset)
    assert jpeg.media_type == "image/jpeg"  # sniffed: Orthanc labels it image/png


def test_store_reports_each_instance(client: DicomWebClient, pacs: TestPacs) -> None:
    ds = pydicom.dcmread(pacs.data.uncompressed_paths[0])
    # A study of its own, so other tests' expectations about the phantom hold.
    ds.PatientName = "Stored^ByTest"
    ds.PatientID = "ZHIVA-STOW-TEST"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    result = client.store([ds])
    assert result.ok and result.stored == (ds.SOPInstanceUID,)
    (found,) = client.search_studies(StudyQuery(study_uid=ds.StudyInstanceUID))
    assert found.study_uid == ds.StudyInstanceUID


# --- authentication and TLS -------------------------------------------------------------


def test_basic_auth_wrong_and_missing(pacs: TestPacs, pacs_server_config: ServerConfig) -> None:
    with DicomWebClient(pacs_server_config, httpx.BasicAuth("zhiva-admin", "wrong")) as c:
        with pytest.raises(AuthError) as info:
            c.search_studies(limit=1)
    assert info.value.status_code == 401 and "wrong" not in str(info.value)
    with DicomWebClient(pacs_server_config) as c, pytest.raises(AuthError):
        c.search_studies(limit=1)
    with DicomWebClient(pacs_server_config, httpx.BasicAuth(*pacs.auth("zhiva"))) as c:
        assert c.search_studies(limit=1)


def test_wrong_ca_fails_with_a_clear_tls_error(
    pacs: TestPacs, pacs_server_config: ServerConfig
) -> None:
    config = _replace(pacs_server_config, ca_file=pacs.wrong_ca_file)
    with DicomWebClient(config, httpx.BasicAuth(*pacs.admin_auth)) as c:
        with pytest.raises(UntrustedCertificate) as info:
            c.search_studies(limit=1)
    assert "not trusted" in str(info.value) and "CA file" in info.value.hint


def test_os_trust_store_alone_does_not_trust_the_test_ca(
    pacs: TestPacs, pacs_server_config: ServerConfig
) -> None:
    with (
        DicomWebClient(
            _replace(pacs_server_config, ca_file=""), httpx.BasicAuth(*pacs.admin_auth)
        ) as c,
        pytest.raises(UntrustedCertificate),
    ):
        c.search_studies(limit=1)


def test_ca_trusted_through_ssl_cert_file_works(
    pacs: TestPacs, pacs_server_config: ServerConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What "trust it system-wide" does for OpenSSL: the OS store now holds the test CA.
    monkeypatch.setenv("SSL_CERT_FILE", pacs.ca_file)
    with DicomWebClient(
        _replace(pacs_server_config, ca_file=""), httpx.BasicAuth(*pacs.admin_auth)
    ) as c:
        assert c.search_studies(limit=1)


def test_reaching_a_localhost_certificate_by_ip_is_a_hostname_mismatch(
    pacs: TestPacs, pacs_server_config: ServerConfig
) -> None:
    config = _replace(pacs_server_config, url=pacs.ip_base_url)
    with (
        DicomWebClient(config, httpx.BasicAuth(*pacs.admin_auth)) as c,
        pytest.raises(HostnameMismatch) as info,
    ):
        c.search_studies(limit=1)
    assert "127.0.0.1" in str(info.value) and "subjectAltName" in info.value.hint


def test_expired_certificate(pacs: TestPacs, pacs_server_config: ServerConfig) -> None:
    config = _replace(pacs_server_config, url=pacs.expired_base_url)
    with (
        DicomWebClient(config, httpx.BasicAuth(*pacs.admin_auth)) as c,
        pytest.raises(CertificateExpired),
    ):
        c.search_studies(limit=1)


# --- check_server -----------------------------------------------------------------------


def _by_name(check: object) -> dict[str, object]:
    return {r.name: r for r in check.results}  # type: ignore[attr-defined]


def test_check_server_passes_on_the_test_pacs(
    pacs: TestPacs, pacs_server_config: ServerConfig
) -> None:
    config = _replace(pacs_server_config, thumbnail_rendering="https")
    check = check_server(config, httpx.BasicAuth(*pacs.admin_auth))
    results = _by_name(check)
    assert check.ok, [r.line() for r in check.results]
    for name in ("reachable", "TLS", "signed in", "QIDO search", "thumbnails", "WADO retrieval"):
        assert results[name].status == "pass", results[name]
    assert "/rendered" in results["thumbnails"].fallback
    assert results["include-field"].status == "n/a"


@pytest.mark.parametrize("rendering", ["wado", "https"])
def test_check_server_per_image_rendering(
    pacs: TestPacs, pacs_server_config: ServerConfig, rendering: str
) -> None:
    check = check_server(
        _replace(pacs_server_config, image_rendering=rendering), httpx.BasicAuth(*pacs.admin_auth)
    )
    assert _by_name(check)["WADO retrieval"].status == "pass"


def test_check_server_reports_what_failed(pacs: TestPacs, pacs_server_config: ServerConfig) -> None:
    bad_password = check_server(pacs_server_config, httpx.BasicAuth("zhiva-admin", "nope"))
    assert not bad_password.ok
    assert _by_name(bad_password)["signed in"].status == "fail"
    assert _by_name(bad_password)["TLS"].status == "pass"

    wrong_ca = check_server(
        _replace(pacs_server_config, ca_file=pacs.wrong_ca_file), httpx.BasicAuth(*pacs.admin_auth)
    )
    assert _by_name(wrong_ca)["TLS"].status == "fail" and _by_name(wrong_ca)["TLS"].fix

    bad_wado_uri = check_server(
        _replace(pacs_server_config, image_rendering="wado", wado_uri_postfix="/nope"),
        httpx.BasicAuth(*pacs.admin_auth),
    )
    assert _by_name(bad_wado_uri)["WADO retrieval"].status == "fail"
    assert "WADO URI Postfix" in _by_name(bad_wado_uri)["WADO retrieval"].fix

    nothing_there = ServerConfig(name="closed", url=f"https://localhost:{_closed_port()}/x")
    refused = check_server(nothing_there)
    assert _by_name(refused)["reachable"].status == "fail"


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_proxy_environment_is_honoured(
    pacs: TestPacs, pacs_server_config: ServerConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that does not exist: requests only work because NO_PROXY exempts localhost.
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("NO_PROXY", "localhost")
    with DicomWebClient(pacs_server_config, httpx.BasicAuth(*pacs.admin_auth)) as c:
        assert c.search_studies(limit=1)
    monkeypatch.setenv("NO_PROXY", "")
    with DicomWebClient(pacs_server_config, httpx.BasicAuth(*pacs.admin_auth)) as c:
        with pytest.raises(Exception) as info:
            c.search_studies(limit=1)
    assert "proxy" in str(info.value).lower() or "connect" in str(info.value).lower()


_ = (io, os)
