"""The redaction filter: unit cases, then a whole logging session grepped for secrets."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import textwrap
from pathlib import Path

import pytest
from pydicom.valuerep import PersonName

from net import ServerConfig
from tests.support.pacs import TestPacs
from viewer.settings import (
    REDACTED,
    forget_secrets,
    hide_patient_details,
    redact,
    register_secret,
    setup_logging,
    shutdown_logging,
)

from .conftest import PYTHON, child_env


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict[str, object]) -> str:
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    return f"{header}.{payload}.{_b64url(b'signature-bytes-' * 8)}"


JWT = make_jwt({"username": "zhiva", "pacs": "https://localhost/zhiva/pacs", "exp": 2000000000})
BASIC = base64.b64encode(b"zhiva-admin:s3cret-Pass").decode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Basic {BASIC}", "Authorization: Basic [REDACTED]"),
        (f"authorization: bearer {JWT}", "authorization: bearer [REDACTED]"),
        (f"Authentication: Bearer {JWT}", "Authentication: Bearer [REDACTED]"),
        (f"Proxy-Authorization: Basic {BASIC}", "Proxy-Authorization: Basic [REDACTED]"),
        (
            f"{{'authorization': 'Bearer {JWT}', 'accept': 'application/dicom+json'}}",
            "{'authorization': 'Bearer [REDACTED]', 'accept': 'application/dicom+json'}",
        ),
        (f'{{"Authorization": "Basic {BASIC}"}}', '{"Authorization": "Basic [REDACTED]"}'),
        (f"sent Basic {BASIC} to pacs", "sent Basic [REDACTED] to pacs"),
        (f"sent Bearer {'x' * 40} to pacs", "sent Bearer [REDACTED] to pacs"),
        (f"claims of {JWT} are", "claims of [REDACTED] are"),
        (
            "a " + ".".join(["QWxhZGRpbjpvcGVuIHNlc2FtZQ"] * 3) + " b",
            "a [REDACTED] b",
        ),
        (
            f"GET https://h/auth/oauth?token={JWT}&state=1",
            "GET https://h/auth/oauth?token=[REDACTED]&state=1",
        ),
        (
            "https://h/x?access_token=abc123&refresh_token=def",
            "https://h/x?access_token=[REDACTED]&refresh_token=[REDACTED]",
        ),
        ("password=hunter22 user=bob", "password=[REDACTED] user=bob"),
        ('{"password": "hunter22", "user": "bob"}', '{"password": "[REDACTED]", "user": "bob"}'),
        ("refreshToken: abcdef", "refreshToken: [REDACTED]"),
        ("X-Auth-Token: abc123", "X-Auth-Token: [REDACTED]"),
        ("https://bob:hunter22@pacs.example.org/x", "https://bob:[REDACTED]@pacs.example.org/x"),
        # what must survive: ordinary text, hosts, versions, field names
        ("Basic authentication requires a user name", "Basic authentication requires a user name"),
        ("Bearer tokens expire after 24 h", "Bearer tokens expire after 24 h"),
        (
            "token_server=https://localhost/auth/generate-access-token",
            "token_server=https://localhost/auth/generate-access-token",
        ),
        (
            "auth_type=token on pacs.example.org (Orthanc 1.10.1)",
            "auth_type=token on pacs.example.org (Orthanc 1.10.1)",
        ),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected  # idempotent: a second filter changes nothing


def test_registered_secrets_are_redacted_in_any_context() -> None:
    register_secret("Tr0ub4dor&3")
    try:
        assert redact("typed Tr0ub4dor&3 then Tr0ub4dor%263") == f"typed {REDACTED} then {REDACTED}"
        register_secret("abc")  # too short to replace verbatim: would shred the log
        assert redact("abc def") == "abc def"
    finally:
        forget_secrets()


SESSION = textwrap.dedent(
    """
    import logging, sys
    import httpx
    from pathlib import Path
    from viewer.settings import FileSecretStore, setup_logging

    log_dir, secrets_file, jwt, basic, opaque, password = sys.argv[1:7]
    log_file = setup_logging(Path(log_dir), level=logging.DEBUG)
    # the secret store registers what it hands out
    FileSecretStore(Path(secrets_file)).set("srv", "password", password)
    log = logging.getLogger("viewer.session")
    log.info("request headers: %s", {"Authorization": "Basic " + basic, "Accept": "*/*"})
    log.info("exchange answered Authentication: Bearer %s", jwt)
    log.info("opening configuration link https://pacs.example.org/auth/oauth?token=%s", jwt)
    log.info("refresh with access_token=%s&state=2", opaque)
    log.debug("form password=%s user=zhiva", password)
    log.debug('posted {"username": "zhiva", "password": "%s"}', password)
    log.info("decoded claims from %s", jwt)
    log.warning("user typed %s into the URL field", password)
    log.info("proxy https://zhiva:%s@proxy.example.org:3128", password)
    logging.getLogger("some.library").warning("%r", {"authorization": "Bearer " + opaque})
    try:
        raise RuntimeError(f"token server said no to {jwt}")
    except RuntimeError:
        log.exception("exchange failed for password %s", password)
    # httpx logs each request URL at INFO, query string included (held at WARNING now)
    def handler(request):
        return httpx.Response(200, json={})
    with httpx.Client(transport=httpx.MockTransport(handler), auth=httpx.BasicAuth("zhiva", password)) as c:
        c.get("https://pacs.example.org/studies?access_token=" + opaque)
    log.info("session done on pacs.example.org")
    print(log_file)
    """
)


def test_a_session_with_secrets_in_play_leaves_none_in_the_log(tmp_path: Path) -> None:
    password = "Tr0ub4dor&3-horse"
    opaque = "opaque-9f8e7d6c5b4a39281706"
    run = subprocess.run(
        [PYTHON, "-c", SESSION, str(tmp_path / "logs"), str(tmp_path / "secrets.json"),
         JWT, BASIC, opaque, password],
        capture_output=True, text=True, env=child_env(), check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    log_text = Path(run.stdout.strip()).read_text()
    leaks = [JWT, JWT.split(".")[2], BASIC, opaque, password, password.replace("&", "%26")]
    for secret in leaks:
        assert secret not in log_text, f"{secret!r} leaked into the log:\n{log_text}"
    # the lines are still there and still useful
    assert log_text.count(REDACTED) >= 11
    assert f"{REDACTED}]" not in log_text  # no mangled leftovers of two patterns
    assert "Authorization': 'Basic [REDACTED]'" in log_text
    assert "https://pacs.example.org/auth/oauth?[query]" in log_text
    assert (
        "Traceback" in log_text and "RuntimeError: token server said no to [REDACTED]" in log_text
    )
    assert "HTTP Request" not in log_text
    assert "session done on pacs.example.org" in log_text
    assert run.stderr == ""  # no console handler unless asked


def test_the_cli_session_keeps_the_password_out_of_its_log(tmp_path: Path) -> None:
    password = "cli-Pa55word-xyz"
    config_dir = tmp_path / "cli"
    run = subprocess.run(
        [PYTHON, "-m", "viewer", "--config-dir", str(config_dir), "servers", "add", "PACS",
         "--url", "https://pacs.example.org/dicom-web", "--auth", "basic", "--username", "zhiva",
         "--password-stdin"],
        input=password + "\n", capture_output=True, text=True, env=child_env(), check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    log_text = (config_dir / "logs" / "zhiva-viewer.log").read_text()
    assert "servers add" in log_text
    assert password not in log_text
    settings_text = (config_dir / "settings.json").read_text()
    assert password not in settings_text and '"username": "zhiva"' in settings_text


def test_log_rotates_and_is_bounded(tmp_path: Path) -> None:
    log_file = setup_logging(tmp_path / "logs", max_bytes=2000, backup_count=2)
    try:
        log = logging.getLogger("viewer.rotation")
        for i in range(300):
            log.info("line %03d with some padding to fill the file", i)
    finally:
        shutdown_logging()
    names = sorted(p.name for p in log_file.parent.iterdir())
    assert names == ["zhiva-viewer.log", "zhiva-viewer.log.1", "zhiva-viewer.log.2"]
    assert all(p.stat().st_size <= 2100 for p in log_file.parent.iterdir())
    assert "line 299" in log_file.read_text()
    assert (log_file.stat().st_mode & 0o077) == 0


def test_setup_twice_does_not_duplicate_lines(tmp_path: Path) -> None:
    setup_logging(tmp_path / "one")
    log_file = setup_logging(tmp_path / "two")
    try:
        logging.getLogger("viewer.dup").warning("once")
    finally:
        shutdown_logging()
    assert log_file.read_text().count("once") == 1
    assert "once" not in (tmp_path / "one" / "zhiva-viewer.log").read_text()


# --- patient details (issue 13, item 2) --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'HTTP Request: GET https://h/rs/studies?PatientName=%2ADoe%2A&PatientID=PID-7 "200"',
            'HTTP Request: GET https://h/rs/studies?[query] "200"',
        ),
        (
            "GET https://h/rs/studies/1.2.826.0.1.3680043.8.498.1/series -> 200",
            "GET https://h/rs/studies/[UID]/series -> 200",
        ),
        (
            "disk cache incomplete for 2.25.1234567890123: gone",
            "disk cache incomplete for [UID]: gone",
        ),
        (
            "query {'PatientName': 'Doe^John', 'limit': 25}",
            "query {'PatientName': '[PATIENT]', 'limit': 25}",
        ),
        ("PatientID=PID-7 AccessionNumber: ACC9", "PatientID=[PATIENT] AccessionNumber: [PATIENT]"),
        # Standard UIDs (transfer syntaxes, SOP classes) name no patient and help support.
        (
            "Cannot decode JPEG-LS (1.2.840.10008.1.2.4.80)",
            "Cannot decode JPEG-LS (1.2.840.10008.1.2.4.80)",
        ),
        ("server 192.168.1.20 version 1.10.1", "server 192.168.1.20 version 1.10.1"),
    ],
)
def test_hide_patient_details(text: str, expected: str) -> None:
    assert hide_patient_details(text) == expected


@pytest.mark.integration
@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_a_real_search_by_patient_name_and_id_leaves_no_patient_details_in_the_log(
    tmp_path: Path, level: int, pacs: TestPacs, pacs_server_config: ServerConfig
) -> None:
    import httpx

    from net import DicomWebClient, StudyQuery

    phantom = pacs.data.phantom
    family = PersonName(phantom.patient_name).family_name
    log_file = setup_logging(tmp_path / "logs", level=level)
    try:
        with DicomWebClient(pacs_server_config, httpx.BasicAuth(*pacs.admin_auth)) as client:
            query = StudyQuery(patient_name=family, patient_id=phantom.patient_id)
            found = client.search_studies(query, limit=25)
            assert [s.study_uid for s in found] == [phantom.study_uid]
            assert client.search_series(phantom.study_uid)
        # A failure logged with its traceback, as the app logs a failed background task.
        try:
            raise RuntimeError(
                f"search failed: {client.config.url}/studies?PatientID={phantom.patient_id}"
            )
        except RuntimeError:
            logging.getLogger("viewer.app.tasks").exception("background task search failed")
    finally:
        shutdown_logging()
    text = log_file.read_text(encoding="utf-8")
    assert "background task search failed" in text
    if level == logging.DEBUG:  # the requests are logged, without what identifies anyone
        assert "/studies -> 200" in text and "/studies/[UID]/series -> 200" in text
    for detail in (family, phantom.patient_id, phantom.study_uid, "PatientName", "PatientID="):
        assert detail not in text, f"{detail!r} reached the log"
