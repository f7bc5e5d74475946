"""HttpSession / DicomWebClient behaviour under injected faults (httpx.MockTransport).

MockTransport is used for fault injection only: what real servers do is tested against
the real Orthanc in test_integration.py.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import httpx
import pytest

from net import (
    AuthError,
    CertificateExpired,
    DicomWebClient,
    HostnameMismatch,
    InsecureUrl,
    NotFound,
    ProtocolError,
    RetryPolicy,
    ServerConfig,
    ServerError,
    StudyQuery,
    TransportError,
    UntrustedCertificate,
)
from net._limits import Deadlines
from net._retry import parse_retry_after
from net._tls import classify_tls_error

Handler = Callable[[httpx.Request], httpx.Response]
CONFIG = ServerConfig(name="Test", url="https://pacs.example.org/dicom-web")


class Recorder:
    """Records the waits; its clock moves only by them (no real time passes)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.now = 1000.0

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def policy(self, **kw: object) -> RetryPolicy:
        return RetryPolicy(
            sleep=self.sleep,
            jitter=lambda lo, hi: hi,
            clock=lambda: self.now,
            **kw,  # type: ignore[arg-type]
        )


def client(
    handler: Handler,
    *,
    config: ServerConfig = CONFIG,
    retry: RetryPolicy | None = None,
    auth: httpx.Auth | None = None,
) -> DicomWebClient:
    return DicomWebClient(
        config,
        auth,
        transport=httpx.MockTransport(handler),
        retry=retry or RetryPolicy(sleep=lambda s: None),
    )


def json_response(body: bytes = b"[]", status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=body, headers={"Content-Type": "application/dicom+json"})


# --- retry policy -----------------------------------------------------------------------


def test_retries_idempotent_requests_on_gateway_errors_with_backoff() -> None:
    rec = Recorder()
    statuses = iter([503, 502, 200])
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return json_response(status=next(statuses))

    with client(handler, retry=rec.policy()) as c:
        assert c.search_studies() == []
    assert len(calls) == 3
    assert rec.sleeps == [0.25, 0.5]  # base * 2**(attempt-1), jitter pinned to its maximum


def test_retry_after_is_honoured() -> None:
    rec = Recorder()
    responses = iter([httpx.Response(429, headers={"Retry-After": "3"}), json_response()])
    with client(lambda r: next(responses), retry=rec.policy()) as c:
        c.search_studies()
    assert rec.sleeps == [3.0]


def test_too_long_retry_after_gives_up_with_the_error() -> None:
    rec = Recorder()
    with (
        client(
            lambda r: httpx.Response(503, headers={"Retry-After": "3600"}), retry=rec.policy()
        ) as c,
        pytest.raises(ServerError) as info,
    ):
        c.search_studies()
    assert rec.sleeps == []
    assert info.value.status_code == 503


def test_retry_after_is_capped() -> None:
    rec = Recorder()
    responses = iter([httpx.Response(503, headers={"Retry-After": "25"}), json_response()])
    with client(lambda r: next(responses), retry=rec.policy()) as c:
        c.search_studies()
    assert rec.sleeps == [10.0]  # not 25: RetryPolicy.retry_after_max


@pytest.mark.parametrize(
    ("retry_after", "budget", "deadline", "sleeps"),
    [
        # Retry-After: 9 three times would be 27 s; the retry budget of 20 s stops it.
        ("9", 20.0, 1000.0, [9.0, 9.0]),
        # A third wait of 4 s would end past the request's 10 s deadline.
        ("4", 1000.0, 10.0, [4.0, 4.0]),
    ],
)
def test_time_spent_retrying_one_request_is_bounded(
    retry_after: str, budget: float, deadline: float, sleeps: list[float]
) -> None:
    rec = Recorder()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, headers={"Retry-After": retry_after})

    c = DicomWebClient(
        CONFIG,
        transport=httpx.MockTransport(handler),
        retry=rec.policy(max_retry_time=budget, max_attempts=10),
        deadlines=Deadlines(request=deadline),
    )
    with c, pytest.raises(ServerError):
        c.search_studies()
    assert rec.sleeps == sleeps and len(calls) == len(sleeps) + 1


def test_gives_up_after_max_attempts() -> None:
    rec = Recorder()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(504)

    with client(handler, retry=rec.policy(max_attempts=3)) as c, pytest.raises(ServerError):
        c.search_studies()
    assert len(calls) == 3 and len(rec.sleeps) == 2


def test_dropped_connection_is_retried_for_get() -> None:
    rec = Recorder()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return json_response()

    with client(handler, retry=rec.policy()) as c:
        assert c.search_studies() == []
    assert len(calls) == 2


def test_post_is_never_retried() -> None:
    rec = Recorder()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(503)

    with client(handler, retry=rec.policy()) as c, pytest.raises(ServerError):
        c.store([b"\x00" * 10])
    assert calls == ["POST"] and rec.sleeps == []


def test_parse_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(
        10.0
    )
    assert parse_retry_after("soon") is None


# --- error mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [(401, AuthError), (403, AuthError), (404, NotFound), (400, ServerError), (500, ServerError)],
)
def test_statuses_map_to_our_errors(status: int, exc_type: type[Exception]) -> None:
    body = b'{"HttpError":"x","Message":"Bad things happened"}'
    with (
        client(lambda r: httpx.Response(status, content=body)) as c,
        pytest.raises(exc_type) as info,
    ):
        c.search_studies()
    text = str(info.value)
    assert text.startswith("Test: ")
    assert "Bad things happened" in text
    assert str(status) in text


def test_html_error_pages_are_not_shown_to_the_user() -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1>" + b"x" * 500 + b"</body></html>"
    with (
        client(lambda r: httpx.Response(400, content=page)) as c,
        pytest.raises(ServerError) as info,
    ):
        c.search_studies()
    assert "<html" not in str(info.value)


def test_connect_failure_is_a_transport_error_with_a_fix() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with client(handler) as c, pytest.raises(TransportError) as info:
        c.search_studies()
    assert "pacs.example.org" in str(info.value) and "Check the Server URL" in info.value.hint


def test_not_json_is_a_protocol_error() -> None:
    with client(lambda r: httpx.Response(200, content=b"<html>login</html>")) as c:
        with pytest.raises(ProtocolError):
            c.search_studies()


def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    err = ssl.SSLCertVerificationError(
        1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}"
    )
    err.verify_code = code
    err.verify_message = message
    return err


@pytest.mark.parametrize(
    ("code", "message", "exc_type"),
    [
        (18, "self-signed certificate", UntrustedCertificate),
        (20, "unable to get local issuer certificate", UntrustedCertificate),
        (62, "Hostname mismatch, certificate is not valid for '192.168.1.5'.", HostnameMismatch),
        (64, "IP address mismatch, certificate is not valid for '192.168.1.5'.", HostnameMismatch),
        (10, "certificate has expired", CertificateExpired),
    ],
)
def test_tls_errors_are_classified(code: int, message: str, exc_type: type[Exception]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        try:
            raise _verify_error(code, message)
        except ssl.SSLError as low:
            raise httpx.ConnectError(str(low), request=request) from low

    calls = []

    def counting(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return handler(request)

    with client(counting) as c, pytest.raises(exc_type) as info:
        c.search_studies()
    assert info.value.hint
    assert len(calls) == 1  # a TLS failure is not retried: it will not go away


def test_classify_ignores_non_tls_errors() -> None:
    assert classify_tls_error(OSError("Connection refused"), "https://x", server="s") is None


# --- security -----------------------------------------------------------------------------


def test_plain_http_server_is_refused() -> None:
    with pytest.raises(InsecureUrl):
        DicomWebClient(ServerConfig(name="x", url="http://pacs.example.org"))


def test_redirect_to_http_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            302, headers={"Location": "http://pacs.example.org/dicom-web/studies"}
        )

    with client(handler) as c, pytest.raises(InsecureUrl):
        c.search_studies()


def test_credentials_are_not_sent_to_another_origin_after_redirect() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "pacs.example.org":
            return httpx.Response(
                302, headers={"Location": "https://elsewhere.example.com/studies"}
            )
        return json_response()

    auth = httpx.BasicAuth("zhiva", "s3cret")
    with client(handler, auth=auth) as c:
        c.search_studies()
    assert [r.url.host for r in seen] == ["pacs.example.org", "elsewhere.example.com"]
    assert "authorization" in seen[0].headers
    assert "authorization" not in seen[1].headers
    assert "authentication" not in seen[1].headers


def test_credentials_follow_a_same_origin_redirect() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/dicom-web/studies"):
            return httpx.Response(301, headers={"Location": "/dicom-web/v2/studies"})
        return json_response()

    with client(handler, auth=httpx.BasicAuth("zhiva", "s3cret")) as c:
        c.search_studies()
    assert len(seen) == 2 and "authorization" in seen[1].headers


def test_redirect_to_an_impossible_port_is_a_protocol_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://pacs.example.org:99999/x"})

    with client(handler) as c, pytest.raises(ProtocolError) as info:
        c.search_studies()
    assert "redirected to an invalid address" in info.value.message


@pytest.mark.parametrize(
    "location", ["https://[::1/x", "https://pacs.example.org:abc/", "https://pacs.example.org:0/x"]
)
def test_redirect_to_an_unreadable_address_is_a_protocol_error(location: str) -> None:
    with client(lambda r: httpx.Response(302, headers={"Location": location})) as c:
        with pytest.raises(ProtocolError, match="redirected to an invalid address"):
            c.search_studies()


def test_redirect_carrying_credentials_in_its_address_is_refused() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "https://user:pass@evil.example.com/x"})

    with client(handler) as c, pytest.raises(InsecureUrl) as info:
        c.search_studies()
    assert "user name or password" in info.value.message and len(seen) == 1


NESTED = b"[" * 100_000 + b"]" * 100_000


def test_deeply_nested_json_is_a_protocol_error_everywhere() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "nested-error" in request.url.path:
            return httpx.Response(400, content=NESTED)
        return json_response(NESTED)

    with client(handler) as c:
        with pytest.raises(ProtocolError, match="nested too deeply"):
            c.search_studies()
        with pytest.raises(ProtocolError, match="nested too deeply"):
            c.series_metadata("1", "2")
    error_config = ServerConfig(name="Test", url="https://pacs.example.org/nested-error")
    with client(handler, config=error_config) as c, pytest.raises(ServerError) as info:
        c.search_studies()
    assert "HTTP 400" in info.value.message


def test_memory_error_while_decoding_is_a_protocol_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def exhausted(*args: object, **kwargs: object) -> object:
        raise MemoryError

    monkeypatch.setattr("net._client.msgspec.json.decode", exhausted)
    with client(lambda r: json_response(b"[{}]")) as c:
        with pytest.raises(ProtocolError, match="too large for memory"):
            c.search_studies()


def test_values_no_dicom_json_holds_are_a_protocol_error() -> None:
    digits = b"9" * 5000  # str() of an int this long raises ValueError
    body = b'[{"0020000D": {"vr": "UI", "Value": [' + digits + b"]}}]"
    with client(lambda r: json_response(body)) as c, pytest.raises(ProtocolError):
        c.search_studies()


def test_secrets_do_not_appear_in_error_text() -> None:
    with client(lambda r: httpx.Response(401), auth=httpx.BasicAuth("zhiva", "s3cret")) as c:
        with pytest.raises(AuthError) as info:
            c.search_studies()
    assert "s3cret" not in str(info.value) and "Basic " not in str(info.value)


# --- QIDO parameters and paging ----------------------------------------------------------


def test_text_terms_get_wildcards_without_fuzzy_matching() -> None:
    seen: list[httpx.Request] = []
    with client(lambda r: seen.append(r) or json_response()) as c:
        c.search_studies(StudyQuery(patient_name="Doe", patient_id="12*", modality="ct"), limit=10)
    params = seen[0].url.params
    assert params["PatientName"] == "*Doe*"
    assert params["PatientID"] == "12*"  # the user's own wildcard is kept
    assert params["ModalitiesInStudy"] == "CT"
    assert params["limit"] == "10"
    assert "fuzzymatching" not in params and "includefield" not in params


def test_fuzzy_matching_and_include_field_when_supported() -> None:
    import datetime as dt

    config = ServerConfig(
        name="F",
        url="https://f.example.org/rs",
        fuzzy_matching=True,
        qido_supports_include_field=True,
    )
    seen: list[httpx.Request] = []
    with client(lambda r: seen.append(r) or json_response(), config=config) as c:
        c.search_studies(
            StudyQuery(
                patient_name="Doe",
                study_date_from=dt.date(2024, 1, 1),
                study_date_to=dt.date(2024, 1, 31),
            )
        )
    params = seen[0].url.params
    assert params["PatientName"] == "Doe"
    assert params["fuzzymatching"] == "true"
    assert params["StudyDate"] == "20240101-20240131"
    assert "00081030" in params["includefield"]


def _study(uid: str) -> dict[str, object]:
    # With the attributes every server computes, or the client would ask for them.
    return {
        "0020000D": {"vr": "UI", "Value": [uid]},
        "00080061": {"vr": "CS", "Value": ["CT"]},
        "00201206": {"vr": "IS", "Value": [1]},
        "00201208": {"vr": "IS", "Value": [1]},
    }


def test_paging_stops_when_server_ignores_offset() -> None:
    import json

    page = json.dumps([_study(f"1.2.{i}") for i in range(3)]).encode()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params.get("offset"))
        return json_response(page)

    with client(handler) as c:
        studies = list(c.iter_studies(page_size=3))
    assert [s.study_uid for s in studies] == ["1.2.0", "1.2.1", "1.2.2"]
    assert len(calls) == 2  # the repeated page is detected, not looped on


def test_paging_stops_when_server_ignores_limit() -> None:
    import json

    everything = json.dumps([_study(f"1.2.{i}") for i in range(7)]).encode()
    with client(lambda r: json_response(everything)) as c:
        assert len(list(c.iter_studies(page_size=3))) == 7


def test_paging_walks_pages() -> None:
    import json

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", "0"))
        limit = int(request.url.params["limit"])
        items = [_study(f"1.2.{i}") for i in range(offset, min(offset + limit, 8))]
        return json_response(json.dumps(items).encode())

    with client(handler) as c:
        assert [s.study_uid for s in c.iter_studies(page_size=3)] == [f"1.2.{i}" for i in range(8)]
        assert len(list(c.iter_studies(page_size=3, max_results=5))) == 5


def test_no_content_is_an_empty_result() -> None:
    with client(lambda r: httpx.Response(204)) as c:
        assert c.search_studies() == []


# --- thumbnails ----------------------------------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 20


def test_thumbnail_falls_back_to_rendered_and_remembers() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path.rsplit("/", 1)[-1])
        if request.url.path.endswith("/thumbnail"):
            return httpx.Response(404)
        return httpx.Response(200, content=JPEG, headers={"Content-Type": "image/png"})

    with client(handler) as c:
        first = c.thumbnail("1", "2")
        c.thumbnail("1", "3")
    assert first.source == "rendered" and first.media_type == "image/jpeg"  # sniffed, not the label
    assert paths == ["thumbnail", "rendered", "rendered"]


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("Doe", "*Doe*"),
        ("doe john", "*doe*john*"),
        ("Doe, John", "*Doe*John*"),
        ("Doe^J*", "Doe*J*"),
        ("a?c", "a?c"),
    ],
)
def test_wildcards_are_sent_literally(typed: str, sent: str) -> None:
    # Orthanc does not percent-decode QIDO values: %2A would match nothing.
    seen: list[httpx.Request] = []
    with client(lambda r: seen.append(r) or json_response()) as c:
        c.search_studies(StudyQuery(patient_name=typed))
    assert seen[0].url.raw_path.decode().endswith(f"PatientName={sent}")


def test_includefield_list_keeps_its_commas() -> None:
    config = ServerConfig(
        name="F", url="https://f.example.org/rs", qido_supports_include_field=True
    )
    seen: list[httpx.Request] = []
    with client(lambda r: seen.append(r) or json_response(), config=config) as c:
        c.search_studies()
    assert b"includefield=00081030,00080061" in seen[0].url.raw_path


def test_without_any_system_store_the_bundled_cas_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl as ssl_module

    import certifi

    from net import _tls

    empty = ssl_module.DefaultVerifyPaths(None, None, "", "", "", "")  # type: ignore[arg-type]
    monkeypatch.setattr(_tls.ssl, "get_default_verify_paths", lambda: empty)
    monkeypatch.setattr(_tls, "_CA_FILE_CANDIDATES", ("/nonexistent/ca.pem",))
    loaded: list[str] = []
    original = ssl_module.SSLContext.load_verify_locations

    def spy(
        self: ssl_module.SSLContext, cafile: str | None = None, *a: object, **k: object
    ) -> None:
        loaded.append(str(cafile))
        original(self, cafile, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl_module.SSLContext, "load_verify_locations", spy)
    ctx = _tls.make_ssl_context()
    assert loaded == [certifi.where()]
    assert ctx.cert_store_stats()["x509_ca"] > 50
