"""ServerConfig: URL roots for real server layouts, and live validation messages."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from net import (
    ServerConfig,
    join_url,
    origin_of,
    qido_root,
    validate_config,
    wado_rs_root,
    wado_uri_root,
)

ROOTS = [
    pytest.param(
        ServerConfig(
            name="Orthanc", url="https://pacs.example.org/dicom-web", wado_uri_postfix="/wado"
        ),
        "https://pacs.example.org/dicom-web",
        "https://pacs.example.org/dicom-web",
        "https://pacs.example.org/wado",
        id="orthanc",
    ),
    pytest.param(
        ServerConfig(
            name="dcm4chee",
            url="https://dcm4chee.example.org:8443/dcm4chee-arc",
            postfix="aets/DCM4CHEE",
            qido_postfix="rs",
            wado_postfix="rs",
            wado_uri_postfix="wado",
        ),
        "https://dcm4chee.example.org:8443/dcm4chee-arc/aets/DCM4CHEE/rs",
        "https://dcm4chee.example.org:8443/dcm4chee-arc/aets/DCM4CHEE/rs",
        "https://dcm4chee.example.org:8443/dcm4chee-arc/aets/DCM4CHEE/wado",
        id="dcm4chee",
    ),
    pytest.param(
        ServerConfig(
            name="Local Server", url="https://localhost/zhiva/pacs", wado_uri_postfix="/zhiva/wado"
        ),
        "https://localhost/zhiva/pacs",
        "https://localhost/zhiva/pacs",
        "https://localhost/zhiva/wado",
        id="zhiva-local",
    ),
    pytest.param(
        ServerConfig(
            name="Local Server",
            url="https://192.168.1.20:8443/zhiva/pacs/",
            wado_uri_postfix="/zhiva/wado/",
        ),
        "https://192.168.1.20:8443/zhiva/pacs",
        "https://192.168.1.20:8443/zhiva/pacs",
        "https://192.168.1.20:8443/zhiva/wado",
        id="zhiva-local-by-ip",
    ),
    pytest.param(
        ServerConfig(
            name="Cloud",
            url="https://healthcare.example.com/v1",
            postfix="projects/p/locations/eu/datasets/d/dicomStores/s/dicomWeb",
            wado_uri_postfix="",
        ),
        "https://healthcare.example.com/v1/projects/p/locations/eu/datasets/d/dicomStores/s/dicomWeb",
        "https://healthcare.example.com/v1/projects/p/locations/eu/datasets/d/dicomStores/s/dicomWeb",
        "https://healthcare.example.com/v1/projects/p/locations/eu/datasets/d/dicomStores/s/dicomWeb",
        id="cloud-healthcare",
    ),
]


@pytest.mark.parametrize(("config", "qido", "wado", "wado_uri"), ROOTS)
def test_url_roots(config: ServerConfig, qido: str, wado: str, wado_uri: str) -> None:
    assert validate_config(config) == {}
    assert qido_root(config) == qido
    assert wado_rs_root(config) == wado
    assert wado_uri_root(config) == wado_uri


@pytest.mark.parametrize(
    ("base", "postfix", "expected"),
    [
        ("https://h/a/", "", "https://h/a"),
        ("https://h/a", "b/", "https://h/a/b"),
        ("https://h/a", "/b", "https://h/b"),
        ("https://h:8443/a", "//b//", "https://h:8443/b"),
        ("https://H:443/a", "/b", "https://h/b"),
        ("https://[::1]:8443/a", "/wado", "https://[::1]:8443/wado"),
    ],
)
def test_join_url(base: str, postfix: str, expected: str) -> None:
    assert join_url(base, postfix) == expected


def test_origin_of_normalises_case_and_default_port() -> None:
    assert origin_of("HTTPS://Example.ORG:443/x") == "https://example.org"
    assert origin_of("https://example.org:8443/x") == "https://example.org:8443"


def _valid(**changes: object) -> ServerConfig:
    return msgspec.structs.replace(
        ServerConfig(name="PACS", url="https://pacs.example.org/dicom-web"), **changes
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost/zhiva/pacs",
        "https://192.168.10.20/zhiva/pacs",
        "https://[fe80::1]:8443/dicom-web",
        "https://pacs-01.hospital.example/dicom-web",
        "https://10.0.0.5:8042",
    ],
)
def test_accepts_names_and_ip_literals(url: str) -> None:
    assert validate_config(_valid(url=url)) == {}


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("", "required"),
        ("http://pacs.example.org", "https"),
        ("ftp://pacs.example.org", "https"),
        ("pacs.example.org/dicom-web", "https"),
        ("https://", "no host"),
        ("https://bad_host!/x", "not a valid host"),
        ("https://-bad.example.org", "not a valid host"),
        ("https://300.1.1.1/x", "not a valid host"),
        ("https://user:pw@pacs.example.org", "user name or password"),
        ("https://pacs.example.org:99999", "port"),
        ("https://pacs.example.org/x?a=b", "'?'"),
        ("https://pacs example.org", "spaces"),
    ],
)
def test_rejects_bad_urls_with_a_message(url: str, fragment: str) -> None:
    errors = validate_config(_valid(url=url))
    assert set(errors) == {"url"}
    assert fragment in errors["url"]


def test_uuid_must_be_version_4() -> None:
    assert validate_config(_valid(uuid=str(uuid.uuid4()))) == {}
    assert "version 4" in validate_config(_valid(uuid=str(uuid.uuid1())))["uuid"]
    assert "not a UUID" in validate_config(_valid(uuid="1234"))["uuid"]


@pytest.mark.parametrize("field", ["postfix", "qido_postfix", "wado_postfix", "wado_uri_postfix"])
@pytest.mark.parametrize("value", ["a b", "rs?x=1", "rs#f", "../etc"])
def test_postfix_characters(field: str, value: str) -> None:
    assert field in validate_config(_valid(**{field: value}))


def test_required_fields_and_auth_dependent_fields() -> None:
    empty = validate_config(ServerConfig())
    assert {"name", "url"} <= set(empty)
    assert "username" in validate_config(_valid(auth_type="basic"))
    assert validate_config(_valid(auth_type="basic", username="zhiva")) == {}
    assert "auth_server_url" in validate_config(_valid(auth_type="zhiva"))
    assert "auth_server_url" in validate_config(
        _valid(auth_type="zhiva", auth_server_url="http://x/auth")
    )
    assert (
        validate_config(_valid(auth_type="zhiva", auth_server_url="https://localhost/auth/sign-in"))
        == {}
    )


def test_ca_file_must_exist(tmp_path: object) -> None:
    assert "ca_file" in validate_config(_valid(ca_file="/nonexistent/ca.pem"))


def test_timeouts_bounded() -> None:
    assert "read_timeout" in validate_config(_valid(read_timeout=0))
    assert "connect_timeout" in validate_config(_valid(connect_timeout=-1))


def test_json_round_trip_and_unknown_values_rejected() -> None:
    config = _valid(auth_type="token", can_store=True)
    assert msgspec.json.decode(msgspec.json.encode(config), type=ServerConfig) == config
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(
            b'{"name":"x","url":"https://x","auth_type":"kerberos"}', type=ServerConfig
        )


def test_ids_are_unique_and_stable() -> None:
    a, b = ServerConfig(), ServerConfig()
    assert a.id != b.id
    assert msgspec.structs.replace(a, name="renamed").id == a.id
