"""DICOM JSON to typed values: readable names, dates, counts, store results."""

from __future__ import annotations

import datetime as dt

import pytest

import net
from net import dicom_text, format_person_name, sniff_media_type
from net._models import (
    instance_from_json,
    series_from_json,
    store_result_from_json,
    study_from_json,
)


@pytest.mark.parametrize(
    ("pn", "readable"),
    [
        ({"Alphabetic": "Doe^John"}, "Doe, John"),
        ({"Alphabetic": "Doe^John^Q^Dr^Jr"}, "Doe, Dr John Q Jr"),
        ({"Alphabetic": "Phantom"}, "Phantom"),
        ({"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎"}, "Yamada, Tarou (山田, 太郎)"),
        ({"Ideographic": "山田^太郎"}, "山田, 太郎"),
        ("Kowalska^Zażółć", "Kowalska, Zażółć"),
        ({}, ""),
    ],
)
def test_person_names_are_readable(pn: object, readable: str) -> None:
    assert format_person_name(pn) == readable  # type: ignore[arg-type]


def test_study_from_json() -> None:
    attrs = {
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
        "00100020": {"vr": "LO", "Value": ["PID-1"]},
        "00080020": {"vr": "DA", "Value": ["20240131"]},
        "00100030": {"vr": "DA", "Value": ["1970.01.02"]},
        "00080061": {"vr": "CS", "Value": ["CT", "SR"]},
        "00201206": {"vr": "IS", "Value": [3]},
        "00201208": {"vr": "IS", "Value": ["301"]},
        "00081030": {"vr": "LO"},
    }
    study = study_from_json(attrs)
    assert study.study_uid == "1.2.3"
    assert study.patient_name == "Doe, Jane"
    assert study.study_date == dt.date(2024, 1, 31)
    assert study.birth_date == dt.date(1970, 1, 2)
    assert study.modalities == ("CT", "SR")
    assert (study.series_count, study.instance_count) == (3, 301)
    assert study.description == ""


def test_multi_valued_text_is_written_as_dicom_writes_it() -> None:
    attrs = {
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        "00080050": {"vr": "SH", "Value": ["PR", "US"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}, {"Alphabetic": "Roe^Ann"}]},
        "00100020": {"vr": "LO", "Value": ["PID-1", "", "PID-3"]},
        "00081030": {"vr": "LO", "Value": ["CHEST ", None]},
    }
    study = study_from_json(attrs)
    assert study.accession_number == "PR\\US"
    assert study.patient_name == "Doe, Jane\\Roe, Ann"
    assert study.patient_id == "PID-1\\\\PID-3"  # an empty value keeps its place
    assert study.description == "CHEST\\"
    series = series_from_json(
        {"0020000E": {"vr": "UI", "Value": ["2"]}, "0008103E": {"vr": "LO", "Value": ["A", "B"]}}
    )
    assert series.description == "A\\B"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("CT ", "CT"),
        (["PR", "US"], "PR\\US"),
        ((40, 400.5), "40\\400.5"),
        ({"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎"}, "Yamada^Tarou=山田^太郎"),
        ({"Alphabetic": "Doe^John"}, "Doe^John"),
        ("1.2.3\x00", "1.2.3"),
    ],
)
def test_dicom_text(value: object, text: str) -> None:
    assert dicom_text(value) == text


def test_dicom_text_of_pydicom_values() -> None:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.AccessionNumber = ["PR", "US"]
    ds.PatientName = ["Doe^John", "Roe^Ann"]
    ds.WindowCenter = ["40", "400.50"]
    ds.ReferringPhysicianName = "Who^Dr"
    assert dicom_text(ds.AccessionNumber) == "PR\\US"
    assert dicom_text(ds.PatientName) == "Doe^John\\Roe^Ann"
    assert dicom_text(ds.PatientName, person_names=True) == "Doe, John\\Roe, Ann"
    assert dicom_text(ds.WindowCenter) == "40\\400.50"  # DS keeps its written form
    assert dicom_text(ds.ReferringPhysicianName) == "Who^Dr"  # one PersonName, not its letters


def test_bad_values_do_not_raise() -> None:
    study = study_from_json(
        {
            "0020000D": {"vr": "UI", "Value": ["1"]},
            "00080020": {"vr": "DA", "Value": ["2024"]},
            "00201208": {"vr": "IS", "Value": ["many"]},
        }
    )
    assert study.study_date is None and study.instance_count is None


def test_series_and_instance_fill_parent_uids() -> None:
    series = series_from_json(
        {"0020000E": {"vr": "UI", "Value": ["2"]}, "00200011": {"vr": "IS", "Value": [4]}}, "1"
    )
    assert (series.study_uid, series.series_uid, series.series_number) == ("1", "2", 4)
    inst = instance_from_json(
        {"00080018": {"vr": "UI", "Value": ["3"]}, "00280008": {"vr": "IS", "Value": ["30"]}},
        "1",
        "2",
    )
    assert (inst.study_uid, inst.series_uid, inst.sop_instance_uid, inst.number_of_frames) == (
        "1",
        "2",
        "3",
        30,
    )


def test_store_result() -> None:
    attrs = {
        "00081199": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.1"]}}]},
        "00081198": {
            "vr": "SQ",
            "Value": [
                {
                    "00081155": {"vr": "UI", "Value": ["1.2"]},
                    "00081197": {"vr": "US", "Value": [272]},
                }
            ],
        },
    }
    result = store_result_from_json(attrs)
    assert result.stored == ("1.1",)
    assert result.failed[0].sop_instance_uid == "1.2" and result.failed[0].reason == 272
    assert not result.ok


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        (b"\xff\xd8\xff\xe0rest", "image/png", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\nrest", "image/jpeg", "image/png"),
        (b"\x00" * 128 + b"DICMrest", "application/octet-stream", "application/dicom"),
        (b"unknown", "Image/GIF; q=1", "image/gif"),
    ],
)
def test_sniff_media_type(data: bytes, declared: str, expected: str) -> None:
    assert sniff_media_type(data, declared) == expected


def test_public_surface_is_pinned() -> None:
    # Changing the public API of net/ must be a deliberate act: update this list too.
    expected = """
        DEFAULT_CONNECT_TIMEOUT DEFAULT_LOGIN_TIMEOUT DEFAULT_READ_TIMEOUT DEFAULT_RETRY QIDO_RECORD_CEILING SECRET_FIELDS SERVER_FIELDS AnswerTooLarge AuthError AuthType
        DEFAULT_DEADLINES DEFAULT_SIZE_LIMITS Deadlines SizeLimits
        CertificateExpired CheckResult CheckStatus DicomWebClient DicomWebError Discovery Finding Frame
        HostnameMismatch InsecureUrl InstanceSummary LoginCancelled LoopbackLogin NotFound ProtocolError RenderedImage
        RenderingProtocol RetryPolicy SeriesSummary ServerCheck ServerConfig ServerError ServerField
        SignInRequired StoreFailure StoreResult StudyQuery StudySource StudySummary TlsError
        TokenClaims TokenError TokenExpired TokenSet TooManyResults TransportError UntrustedCertificate
        ZhivaTokenAuth auth_base_url check_server configuration_link_origin decode_token dicom_text discover
        exchange_auth_token format_person_name
        join_url new_server_id origin_of parse_configuration_link qido_root
        refresh_access_token server_from_claims sign_user sniff_media_type validate_config validate_url
        wado_rs_root wado_uri_root
    """
    assert sorted(net.__all__) == sorted(expected.split())
    for name in net.__all__:
        assert hasattr(net, name)
