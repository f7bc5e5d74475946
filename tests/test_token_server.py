"""The test token server and the token-gated PACS (DESIGN.md §4), with plain httpx.

These check the harness the client's sign-in tests rely on: the protocol as the
reference zhiva-ai/pacs-token-server answers it, the nginx gate in front of Orthanc, and
the admin controls (clock, expiry, revocation, counters). The unit tests at the end
drive `TokenService` in-process, without HTTP.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support import pacs as pacs_module
from tests.support.pacs import Certificates, PacsSetupError, RunningPacs, TestPacs
from tests.support.token_admin import (
    TokenServerAdmin,
    TokenServerStats,
    login_form,
    play_browser_login,
)
from tests.support.token_server import (
    ACCESS_LIFETIME,
    AUTH_LIFETIME,
    REFRESH_LIFETIME,
    Reply,
    Request,
    TokenService,
    UserRecord,
    bearer_token,
    generate_keys,
    redirect_location,
    reference_state,
)

STUDY_INSTANCE_UID = "0020000D"
DAY = 24 * 3600
LOOPBACK_CALLBACK = "http://127.0.0.1:53682/callback"


# --- integration: fixtures and helpers -------------------------------------------------


@pytest.fixture(scope="module")
def https(pacs: TestPacs) -> Iterator[httpx.Client]:
    """A client that trusts the test CA only, follows no redirects, sends no Origin."""
    context = ssl.create_default_context(cafile=pacs.ca_file)
    with httpx.Client(verify=context, timeout=30.0, trust_env=False) as client:
        yield client


@pytest.fixture
def admin(token_admin: TokenServerAdmin) -> Iterator[TokenServerAdmin]:
    """The session's token server with clock, settings and counters fresh, and put back."""
    token_admin.reset()
    yield token_admin
    token_admin.reset()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(pacs: TestPacs, token: str) -> dict[str, Any]:
    """Verified with the server's public key; times are checked by the tests."""
    claims: dict[str, Any] = jwt.decode(
        token,
        Path(pacs.token_public_key).read_text(),
        algorithms=["RS256"],
        issuer="zhiva.ai",
        options={"verify_exp": False, "verify_iat": False, "verify_aud": False},
    )
    return claims


def exchange(
    https: httpx.Client, pacs: TestPacs, auth_token: str, origin: str | None = None
) -> httpx.Response:
    headers = bearer(auth_token)
    if origin is not None:
        headers["Origin"] = origin
    return https.post(pacs.token_server_url, headers=headers)


def sign_in(
    https: httpx.Client,
    pacs: TestPacs,
    admin: TokenServerAdmin,
    user: str,
    *,
    origin: str | None = None,
    aud: str | None = None,
) -> tuple[str, str]:
    """Mint and exchange: (access token, refresh token)."""
    response = exchange(https, pacs, admin.mint_auth_token(user, aud=aud), origin)
    assert response.status_code == 200, response.text
    access = response.headers["authorization"]
    assert access.startswith("Bearer ")
    return access.removeprefix("Bearer "), response.text


def refresh(
    https: httpx.Client, pacs: TestPacs, refresh_token: str, origin: str | None = None
) -> httpx.Response:
    headers = bearer(refresh_token)
    if origin is not None:
        headers["Origin"] = origin
    return https.post(pacs.refresh_server_url, headers=headers)


def qido(
    https: httpx.Client,
    pacs: TestPacs,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    return https.get(f"{pacs.token_base_url}/studies?limit=1", headers=headers)


def stow(https: httpx.Client, pacs: TestPacs, access_token: str) -> httpx.Response:
    """STOW an instance the PACS already holds (Orthanc keeps the stored one)."""
    boundary = "zhiva-token-test"
    dicom = pacs.data.series("uncompressed").paths[0].read_bytes()
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + dicom
        + f"\r\n--{boundary}--\r\n".encode()
    )
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return https.post(
        f"{pacs.token_base_url}/studies",
        content=body,
        headers={**bearer(access_token), "Content-Type": content_type},
    )


def foreign_token(claims: Mapping[str, Any]) -> str:
    """Signed with a key the token server does not know."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(dict(claims), key, algorithm="RS256")


# --- integration: the auth token and the exchange ---------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("user", ["zhiva-admin", "zhiva-editor", "zhiva"])
def test_auth_tokens_name_the_gated_layout(
    pacs: TestPacs, admin: TokenServerAdmin, user: str
) -> None:
    claims = claims_of(pacs, admin.mint_auth_token(user))
    assert claims["iss"] == "zhiva.ai"
    assert claims["username"] == user
    assert claims["name"]
    assert claims["canEditResource"] is pacs.token_can_edit(user)
    assert claims["canEditResource"] is (user != "zhiva")
    assert claims["pacs"] == pacs.token_base_url
    assert (
        claims["tokenServer"] == f"https://localhost:{pacs.gated_port}/auth/generate-access-token"
    )
    assert claims["refreshServer"] == f"https://localhost:{pacs.gated_port}/auth/refresh-token"
    assert claims["exp"] - claims["iat"] == AUTH_LIFETIME == DAY
    assert "aud" not in claims


@pytest.mark.integration
def test_exchange_gives_tokens_that_read_through_the_gate(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    response = exchange(https, pacs, admin.mint_auth_token("zhiva"))
    assert response.status_code == 200
    # Only Authorization, as the reference sends it (not "Authentication").
    assert "authentication" not in response.headers
    access = response.headers["authorization"].removeprefix("Bearer ")
    refresh_token = response.text  # the raw body, as Express sends a string
    assert response.headers["content-type"].startswith("text/html")
    access_claims, refresh_claims = claims_of(pacs, access), claims_of(pacs, refresh_token)
    for claims in (access_claims, refresh_claims):
        assert claims["username"] == "zhiva"
        assert claims["canEditResource"] is False
        assert "aud" not in claims  # no Origin sent: no audience
        assert "pacs" not in claims and "tokenServer" not in claims
    assert access_claims["exp"] - access_claims["iat"] == ACCESS_LIFETIME == DAY
    assert refresh_claims["exp"] - refresh_claims["iat"] == REFRESH_LIFETIME == 30 * DAY

    found = qido(https, pacs, bearer(access))
    assert found.status_code == 200
    assert found.headers["content-type"].startswith("application/dicom+json")
    everything = https.get(f"{pacs.token_base_url}/studies", headers=bearer(access))
    uids = [s[STUDY_INSTANCE_UID]["Value"][0] for s in everything.json()]
    assert pacs.data.study_uid in uids

    series = pacs.data.series("uncompressed")
    query = (
        f"requestType=WADO&studyUID={pacs.data.study_uid}&seriesUID={series.series_uid}"
        f"&objectUID={series.sop_uids[7]}&contentType=application/dicom"
    )
    wado = https.get(f"{pacs.token_wado_uri_url}?{query}", headers=bearer(access))
    assert wado.status_code == 200
    assert wado.content == series.paths[7].read_bytes()


@pytest.mark.integration
def test_exchange_is_one_time(pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin) -> None:
    auth_token = admin.mint_auth_token("zhiva-editor")
    assert exchange(https, pacs, auth_token).status_code == 200
    again = exchange(https, pacs, auth_token)
    assert again.status_code == 403
    assert again.json() == {"message": "Invalid Token"}
    assert "authorization" not in again.headers


@pytest.mark.integration
def test_concurrent_exchanges_of_one_token_give_one_session(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    auth_token = admin.mint_auth_token("zhiva")
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def attempt() -> None:
        barrier.wait()
        statuses.append(exchange(https, pacs, auth_token).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 403, 403, 403, 403, 403]
    assert admin.stats().exchanges == 1


@pytest.mark.integration
def test_expired_auth_token_gets_500_like_the_reference(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    expired = admin.mint_auth_token("zhiva", lifetime=-1)
    response = exchange(https, pacs, expired)
    assert response.status_code == 500
    assert response.json() == {"message": "Unexpected error"}
    # ... and so does one that expires on the server's clock.
    valid_now = admin.mint_auth_token("zhiva")
    with admin.clock_offset(AUTH_LIFETIME + 1):
        assert exchange(https, pacs, valid_now).status_code == 500
    assert exchange(https, pacs, valid_now).status_code == 200


@pytest.mark.integration
@pytest.mark.parametrize(
    ("token", "status"),
    [
        ("", 401),  # no header at all
        ("garbage", 500),  # the reference's JWT library throws: 500
        ("forged", 500),  # a signature from another key
        ("unissued", 403),  # signed with the right key but never issued
    ],
)
def test_exchange_refuses_what_it_did_not_issue(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin, token: str, status: int
) -> None:
    claims = claims_of(pacs, admin.mint_auth_token("zhiva-admin"))
    claims["jti"] = "not-issued"
    private_key = Path(pacs.token_private_key).read_text()
    values = {
        "garbage": "not.a.jwt",
        "forged": foreign_token(claims),
        "unissued": jwt.encode(claims, private_key, algorithm="RS256"),
    }
    headers = bearer(values[token]) if token else {}
    response = https.post(pacs.token_server_url, headers=headers)
    assert response.status_code == status
    expected = {401: "Missing Token", 403: "Invalid Token", 500: "Unexpected error"}[status]
    assert response.json() == {"message": expected}


@pytest.mark.integration
def test_audience_requires_the_same_origin_everywhere(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    aud = "https://viewer.example"
    auth_token = admin.mint_auth_token("zhiva-admin", aud=aud)
    assert claims_of(pacs, auth_token)["aud"] == aud
    assert exchange(https, pacs, auth_token).status_code == 403  # no Origin
    assert exchange(https, pacs, auth_token, origin="https://other.example").status_code == 403
    response = exchange(https, pacs, auth_token, origin=aud)  # still unused: it works
    assert response.status_code == 200
    access = response.headers["authorization"].removeprefix("Bearer ")
    refresh_token = response.text
    assert claims_of(pacs, access)["aud"] == aud
    assert claims_of(pacs, refresh_token)["aud"] == aud

    assert qido(https, pacs, bearer(access)).status_code == 403
    assert qido(https, pacs, {**bearer(access), "Origin": "https://x.example"}).status_code == 403
    assert qido(https, pacs, {**bearer(access), "Origin": aud}).status_code == 200

    assert refresh(https, pacs, refresh_token).status_code == 403
    renewed = refresh(https, pacs, refresh_token, origin=aud)
    assert renewed.status_code == 200
    assert claims_of(pacs, renewed.headers["authorization"][7:])["aud"] == aud


@pytest.mark.integration
def test_origin_without_audience_becomes_the_sessions_audience(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    # The reference sets the new tokens' aud to the exchange's Origin, whatever it is.
    origin = "https://browser.example"
    access, refresh_token = sign_in(https, pacs, admin, "zhiva", origin=origin)
    assert claims_of(pacs, access)["aud"] == origin
    assert qido(https, pacs, bearer(access)).status_code == 403
    assert refresh(https, pacs, refresh_token).status_code == 403  # strict: Origin needed
    assert refresh(https, pacs, refresh_token, origin=origin).status_code == 200


# --- integration: the gate ----------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/zhiva/pacs/studies?limit=1", "/zhiva/wado?requestType=WADO"])
@pytest.mark.parametrize("kind", ["none", "garbage", "basic", "forged", "auth", "refresh"])
def test_gate_lets_only_access_tokens_through(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin, path: str, kind: str
) -> None:
    auth_token = admin.mint_auth_token("zhiva-admin")
    access, refresh_token = sign_in(https, pacs, admin, "zhiva-admin")
    headers = {
        "none": {},
        "garbage": bearer("garbage"),
        "basic": {"Authorization": "Basic " + "emhpdmEtYWRtaW46eA=="},
        "forged": bearer(foreign_token(claims_of(pacs, access))),
        "auth": bearer(auth_token),
        "refresh": bearer(refresh_token),
    }[kind]
    response = https.get(f"{pacs.token_origin}{path}", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    # The same request with the access token passes the gate (WADO then wants UIDs).
    allowed = https.get(f"{pacs.token_origin}{path}", headers=bearer(access))
    assert allowed.status_code not in (401, 403)


@pytest.mark.integration
def test_gate_serves_only_the_zhiva_layout(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    access, _ = sign_in(https, pacs, admin, "zhiva-admin")
    assert https.get(f"{pacs.token_origin}/system", headers=bearer(access)).status_code == 404
    # The admin API is on the token server's loopback port only.
    assert https.get(f"{pacs.token_origin}/admin/stats").status_code == 404
    assert https.get(f"{pacs.auth_url}/../admin/stats").status_code == 404
    # The basic-auth server is untouched: a bearer token is no Basic credential there.
    assert https.get(f"{pacs.base_url}/studies", headers=bearer(access)).status_code == 401


@pytest.mark.integration
@pytest.mark.parametrize(
    ("user", "can_edit", "allowed"),
    [("zhiva", None, False), ("zhiva-editor", None, True), ("zhiva-admin", None, True),
     ("zhiva-admin", False, False), ("zhiva", True, True)],
)  # fmt: skip
def test_store_needs_can_edit_resource(
    pacs: TestPacs,
    https: httpx.Client,
    admin: TokenServerAdmin,
    user: str,
    can_edit: bool | None,
    allowed: bool,
) -> None:
    response = exchange(https, pacs, admin.mint_auth_token(user, can_edit=can_edit))
    access = response.headers["authorization"].removeprefix("Bearer ")
    stored = stow(https, pacs, access)
    if allowed:
        assert stored.status_code == 200, stored.text  # Orthanc answered, as zhiva-admin
        assert stored.headers["content-type"].startswith("application/dicom+json")
    else:
        assert stored.status_code == 403
        assert admin.stats().count("verify", 403) == 1
    deleted = https.delete(f"{pacs.token_base_url}/studies/1.2.3", headers=bearer(access))
    # Orthanc's DICOMweb has no DELETE: past the gate it answers 404/405, not 403.
    assert (deleted.status_code == 403) is not allowed
    assert qido(https, pacs, bearer(access)).status_code == 200


# --- integration: expiry, refresh, revocation ---------------------------------------------


@pytest.mark.integration
def test_refresh_gives_a_new_access_token_and_keeps_the_refresh_token(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    access, refresh_token = sign_in(https, pacs, admin, "zhiva-editor")
    first = refresh(https, pacs, refresh_token)
    assert first.status_code == 200
    assert first.content == b""  # not rotated: nothing in the body
    new_access = first.headers["authorization"].removeprefix("Bearer ")
    assert new_access != access
    claims = claims_of(pacs, new_access)
    assert (claims["username"], claims["canEditResource"]) == ("zhiva-editor", True)
    assert qido(https, pacs, bearer(new_access)).status_code == 200
    assert qido(https, pacs, bearer(access)).status_code == 200  # the old one still lives
    assert refresh(https, pacs, refresh_token).status_code == 200  # reusable
    assert admin.stats().refreshes == 2


@pytest.mark.integration
def test_clock_past_expiry_closes_the_gate_until_refresh(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    access, refresh_token = sign_in(https, pacs, admin, "zhiva")
    # Offsets from the token's exp: the server's clock keeps running meanwhile.
    exp = claims_of(pacs, access)["exp"]
    with admin.clock_offset(exp - time.time() - 60):  # a minute before
        assert qido(https, pacs, bearer(access)).status_code == 200
    with admin.clock_offset(exp - time.time()):  # now >= exp: expired
        expired = qido(https, pacs, bearer(access))
        assert expired.status_code == 401
        assert "invalid_token" in expired.headers["www-authenticate"]
        # The refresh token lives 30 days; the new access token is valid on this clock.
        renewed = refresh(https, pacs, refresh_token)
        assert renewed.status_code == 200
        new_access = renewed.headers["authorization"].removeprefix("Bearer ")
        assert qido(https, pacs, bearer(new_access)).status_code == 200
        with admin.settings(verify_expired_status=403):  # the reference's gate says 403
            assert qido(https, pacs, bearer(access)).status_code == 403
    assert qido(https, pacs, bearer(access)).status_code == 200  # clock put back


@pytest.mark.integration
def test_expiring_one_access_token(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    access, refresh_token = sign_in(https, pacs, admin, "zhiva-admin")
    other, _ = sign_in(https, pacs, admin, "zhiva-admin")
    assert admin.expire_access_tokens(access) == 1
    assert admin.expire_access_tokens(access) == 0  # already expired
    assert qido(https, pacs, bearer(access)).status_code == 401
    assert qido(https, pacs, bearer(other)).status_code == 200
    renewed = bearer(refresh(https, pacs, refresh_token).headers["authorization"][7:])
    assert qido(https, pacs, renewed).status_code == 200
    # By user: every access token of that user, the new one included.
    assert admin.expire_access_tokens(user="zhiva-admin") >= 2
    assert qido(https, pacs, bearer(other)).status_code == 401
    assert qido(https, pacs, renewed).status_code == 401


@pytest.mark.integration
def test_revoked_refresh_token_is_refused(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    access, refresh_token = sign_in(https, pacs, admin, "zhiva")
    _, kept = sign_in(https, pacs, admin, "zhiva")
    assert admin.revoke_refresh_tokens(refresh_token) == 1
    refused = refresh(https, pacs, refresh_token)
    assert refused.status_code == 403
    assert refused.json() == {"message": "Invalid Token"}
    assert "authorization" not in refused.headers
    assert refresh(https, pacs, kept).status_code == 200
    assert qido(https, pacs, bearer(access)).status_code == 200  # access tokens stay
    assert admin.revoke_refresh_tokens() >= 1  # all of them
    assert refresh(https, pacs, kept).status_code == 403


@pytest.mark.integration
def test_expired_refresh_token_gets_500_like_the_reference(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    _, refresh_token = sign_in(https, pacs, admin, "zhiva")
    with admin.clock_offset(REFRESH_LIFETIME):
        response = refresh(https, pacs, refresh_token)
    assert response.status_code == 500
    assert response.json() == {"message": "Unexpected error"}


@pytest.mark.integration
def test_token_kinds_cannot_stand_in_for_each_other(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    access, refresh_token = sign_in(https, pacs, admin, "zhiva-admin")
    auth_token = admin.mint_auth_token("zhiva-admin")
    assert refresh(https, pacs, access).status_code == 403
    assert refresh(https, pacs, auth_token).status_code == 403
    assert exchange(https, pacs, access).status_code == 403
    assert exchange(https, pacs, refresh_token).status_code == 403
    assert https.post(pacs.refresh_server_url).status_code == 401  # no token at all
    assert exchange(https, pacs, auth_token).status_code == 200  # still unused


# --- integration: sign-in ------------------------------------------------------------------


@pytest.mark.integration
def test_sign_user_issues_an_auth_token(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    url = f"{pacs.auth_url}/sign-user"
    password = pacs.token_users["zhiva-editor"]
    response = https.post(url, json={"username": "zhiva-editor", "password": password})
    assert response.status_code == 200
    token = response.json()["token"]
    claims = claims_of(pacs, token)
    assert (claims["username"], claims["canEditResource"]) == ("zhiva-editor", True)
    assert claims["pacs"] == pacs.token_base_url
    assert "aud" not in claims
    assert exchange(https, pacs, token).status_code == 200

    # The reference sets aud to the body's referer, even an empty one (no Origin needed).
    body = {"username": "zhiva", "password": pacs.token_users["zhiva"], "referer": ""}
    with_referer = https.post(url, json=body)
    assert claims_of(pacs, with_referer.json()["token"])["aud"] == ""
    assert exchange(https, pacs, with_referer.json()["token"]).status_code == 200


@pytest.mark.integration
@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"username": "zhiva", "password": "wrong"}, 401, "Invalid data"),
        ({"username": "nobody", "password": "x"}, 401, "Invalid data"),
        ({"username": "zhiva"}, 400, "Invalid data"),
        ({"password": "x"}, 400, "username not valid"),
    ],
)
def test_sign_user_refuses_bad_credentials(
    pacs: TestPacs,
    https: httpx.Client,
    admin: TokenServerAdmin,
    body: dict[str, str],
    status: int,
    message: str,
) -> None:
    response = https.post(f"{pacs.auth_url}/sign-user", json=body)
    assert response.status_code == status
    assert response.json() == {"message": message}
    assert admin.stats().count("sign_user", status) == 1


@pytest.mark.integration
def test_sign_user_can_answer_400_like_the_reference(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    with admin.settings(bad_credentials_status=400):
        body = {"username": "zhiva", "password": "wrong"}
        assert https.post(f"{pacs.auth_url}/sign-user", json=body).status_code == 400
    assert https.post(f"{pacs.auth_url}/sign-user", json=body).status_code == 401


@pytest.mark.integration
def test_browser_flow_redirects_to_return_uri_with_token_and_state(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    state = "s0me-state_&=?"
    page = https.get(
        f"{pacs.auth_url}/sign-in", params={"return_uri": LOOPBACK_CALLBACK, "state": state}
    )
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    action, hidden = login_form(page.text)
    assert action == "/auth/sign-in"
    assert hidden["return_uri"] == LOOPBACK_CALLBACK and hidden["state"] == state

    form = {**hidden, "username": "zhiva-admin", "password": pacs.token_users["zhiva-admin"]}
    response = https.post(f"{pacs.token_origin}{action}", data=form)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == LOOPBACK_CALLBACK
    query = parse_qs(location.query)
    assert query["state"] == [state]
    token = query["token"][0]
    claims = claims_of(pacs, token)
    assert claims["username"] == "zhiva-admin"
    assert claims["aud"] == ""  # the page posts document.referrer, empty here
    assert claims["pacs"] == pacs.token_base_url
    assert exchange(https, pacs, token).status_code == 200
    assert admin.stats().count("sign_in", 302) == 1


@pytest.mark.integration
def test_browser_flow_wrong_password_shows_the_form_again(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    form = {"return_uri": LOOPBACK_CALLBACK, "state": "x", "username": "zhiva", "password": "no"}
    response = https.post(f"{pacs.auth_url}/sign-in", data=form)
    assert response.status_code == 401
    assert "location" not in response.headers
    assert "Invalid data" in response.text
    assert login_form(response.text)[1]["state"] == "x"


@pytest.mark.integration
def test_browser_flow_reference_state_ignores_the_callers_state(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    response_type = json.dumps({"returnParams": {"state": "nonce-1"}})
    form = {
        "return_uri": LOOPBACK_CALLBACK,
        "state": "mine",
        "response_type": response_type,
        "username": "zhiva",
        "password": pacs.token_users["zhiva"],
    }
    with admin.settings(sign_in_state="reference"):
        response = https.post(f"{pacs.auth_url}/sign-in", data=form)
    assert response.status_code == 302
    state = parse_qs(urlsplit(response.headers["location"]).query)["state"][0]
    assert json.loads(state) == {
        "context": "zhiva_auth",
        "state": "",
        "params": {"state": "nonce-1"},
    }


@pytest.mark.integration
def test_play_browser_login_reaches_a_loopback_listener(
    pacs: TestPacs, admin: TokenServerAdmin
) -> None:
    received: list[str] = []

    class Callback(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.path)
            body = b"signed in"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Callback) as listener:
        thread = threading.Thread(target=listener.handle_request)  # one request
        thread.start()
        return_uri = f"http://127.0.0.1:{listener.server_address[1]}/callback"
        url = f"{pacs.auth_url}/sign-in?" + urlencode({"return_uri": return_uri, "state": "st"})
        user, password = "zhiva-editor", pacs.token_users["zhiva-editor"]
        final = play_browser_login(url, user, password, ca_file=pacs.ca_file)
        thread.join(timeout=10)
    assert final.status_code == 200 and final.text == "signed in"
    (path,) = received
    query = parse_qs(urlsplit(path).query)
    assert urlsplit(path).path == "/callback" and query["state"] == ["st"]
    assert claims_of(pacs, query["token"][0])["username"] == "zhiva-editor"

    refused = play_browser_login(url, user, "wrong", ca_file=pacs.ca_file)
    assert refused.status_code == 401


# --- integration: counters ----------------------------------------------------------------


@pytest.mark.integration
def test_stats_count_each_call_by_result(
    pacs: TestPacs, https: httpx.Client, admin: TokenServerAdmin
) -> None:
    assert admin.stats() == TokenServerStats({})  # the fixture reset it
    access, refresh_token = sign_in(https, pacs, admin, "zhiva")
    before = admin.stats()
    qido(https, pacs, bearer(access))
    qido(https, pacs)
    refresh(https, pacs, refresh_token)
    after = admin.stats()
    assert after.since(before).counts == {"refresh": {200: 1}, "verify": {204: 1, 401: 1}}
    assert after.counts == {
        "exchange": {200: 1},
        "refresh": {200: 1},
        "verify": {204: 1, 401: 1},
    }
    assert (after.exchanges, after.refreshes, after.count("verify")) == (1, 1, 2)
    admin.reset()
    assert admin.stats().counts == {}


@pytest.mark.integration
def test_admin_refuses_bad_requests(admin: TokenServerAdmin) -> None:
    with pytest.raises(RuntimeError, match="400"):
        admin.mint_auth_token("nobody")
    with pytest.raises(RuntimeError, match="400"):
        admin.configure(verify_expired_status=200)
    assert admin.public_key().startswith("-----BEGIN PUBLIC KEY-----")
    assert abs(admin.set_clock_offset(3600) - admin.server_time()) < 60


# --- unit: pure helpers and the service without HTTP --------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("BEARER abc", "abc"),
        ("abc", "abc"),
        ("Bearer", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_reference_state_is_the_pages_json() -> None:
    assert reference_state(None) == '{"context":"zhiva_auth","state":"","params":{}}'
    assert json.loads(reference_state('{"returnParams": {"a": 1}}'))["params"] == {"a": 1}
    assert json.loads(reference_state("not json"))["params"] == {}


def test_redirect_location_encodes_like_url_search_params() -> None:
    assert (
        redirect_location("http://127.0.0.1:1/cb", "t.o.k", 'a b&{"x"}')
        == "http://127.0.0.1:1/cb?token=t.o.k&state=a+b%26%7B%22x%22%7D"
    )
    assert redirect_location("http://h/cb?x=1", "t", "s") == "http://h/cb?x=1&token=t&state=s"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    private, public = generate_keys(tmp_path_factory.mktemp("keys"))
    return private.read_bytes(), public.read_bytes()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(keys: tuple[bytes, bytes], clock: FakeClock) -> TokenService:
    users = {
        "zhiva": UserRecord("zhiva", "pw", "Zhiva", False),
        "zhiva-admin": UserRecord("zhiva-admin", "apw", "Admin", True),
    }
    return TokenService(*keys, users, time_source=clock)


def call(
    service: TokenService,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: bytes = b"",
    **headers: str,
) -> Reply:
    all_headers = {k.replace("_", "-"): v for k, v in headers.items()}
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    return service.handle(Request(method, path, all_headers, body))


def session_from(service: TokenService, auth_token: str) -> tuple[str, str]:
    """Exchange: (access token, refresh token)."""
    reply = call(service, "POST", "/auth/generate-access-token", token=auth_token)
    assert reply.status == 200, reply.body
    return (reply.header("Authorization") or "").removeprefix("Bearer "), reply.body.decode()


def session(service: TokenService, user: str = "zhiva") -> tuple[str, str]:
    return session_from(service, service.mint_auth_token(user))


def test_service_exchange_and_verify_on_its_clock(service: TokenService, clock: FakeClock) -> None:
    auth_token = service.mint_auth_token("zhiva")
    clock.now += AUTH_LIFETIME - 1
    access, refresh_token = session_from(service, auth_token)
    assert call(service, "GET", "/auth/verify", token=access).status == 204
    assert (
        call(service, "GET", "/auth/verify", token=access, x_original_method="HEAD").status == 204
    )
    assert (
        call(service, "GET", "/auth/verify", token=access, x_original_method="POST").status == 403
    )
    clock.now += ACCESS_LIFETIME
    assert call(service, "GET", "/auth/verify", token=access).status == 401
    renewed = call(service, "POST", "/auth/refresh-token", token=refresh_token)
    assert renewed.status == 200 and renewed.body == b""
    new_access = (renewed.header("authorization") or "").removeprefix("Bearer ")
    assert call(service, "GET", "/auth/verify", token=new_access).status == 204
    assert service.stats() == {
        "exchange": {"200": 1},
        "refresh": {"200": 1},
        "verify": {"204": 3, "401": 1, "403": 1},
    }


def test_service_expired_auth_token_and_reuse(service: TokenService, clock: FakeClock) -> None:
    auth_token = service.mint_auth_token("zhiva")
    clock.now += AUTH_LIFETIME  # expired once now >= exp, as jsonwebtoken decides
    assert call(service, "POST", "/auth/generate-access-token", token=auth_token).status == 500
    clock.now -= 1
    session_from(service, auth_token)
    assert call(service, "POST", "/auth/generate-access-token", token=auth_token).status == 403


def test_service_refresh_checks_expiry_before_origin(
    service: TokenService, clock: FakeClock
) -> None:
    _, refresh_token = session(service)
    clock.now += REFRESH_LIFETIME
    # Expired and a wrong Origin: the reference's JWT check comes first, so 500.
    reply = call(service, "POST", "/auth/refresh-token", token=refresh_token, origin="https://x")
    assert reply.status == 500


def test_service_mint_overrides_and_removes_claims(service: TokenService) -> None:
    token = service.mint_auth_token(
        "zhiva", can_edit=True, aud="https://a", claims={"refreshServer": None, "extra": 1}
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["canEditResource"] is True
    assert claims["aud"] == "https://a"
    assert "refreshServer" not in claims
    assert claims["extra"] == 1
    with pytest.raises(KeyError):
        service.mint_auth_token("nobody")


def test_service_sign_in_page_escapes_what_it_echoes(service: TokenService) -> None:
    reply = call(service, "GET", '/auth/sign-in?return_uri=x&state="><script>')
    assert reply.status == 200
    assert b"<script>" not in reply.body
    assert b"&quot;&gt;&lt;script&gt;" in reply.body


def test_service_sign_in_needs_a_return_uri(service: TokenService) -> None:
    body = b"username=zhiva&password=pw"
    reply = call(service, "POST", "/auth/sign-in", body=body)
    assert reply.status == 400
    assert reply.header("Location") is None


def test_service_admin_answers_400_for_bad_bodies(service: TokenService) -> None:
    assert call(service, "POST", "/admin/clock", body=b"[1]").status == 400
    assert call(service, "POST", "/admin/clock", body=b"{}").status == 400
    assert call(service, "POST", "/admin/settings", body=b'{"colour": 1}').status == 400
    assert call(service, "POST", "/admin/nothing").status == 404
    assert call(service, "GET", "/auth/nothing").status == 404
    assert service.stats() == {}  # admin calls and unknown paths are not counted


# --- the token server process ---------------------------------------------------------------


def _bare_pacs(workdir: Path) -> RunningPacs:
    """A RunningPacs holding only a token server (no Orthanc, no nginx)."""
    return RunningPacs(
        workdir=workdir,
        port=0,
        expired_port=0,
        orthanc_port=0,
        users={},
        certificates=Certificates(*[workdir / "unused"] * 6),
        token_users={name: "pw-" + name for name in pacs_module.TOKEN_USERS},
    )


def test_token_server_process_starts_on_its_own_port_and_stops(tmp_path: Path) -> None:
    running = _bare_pacs(tmp_path)
    try:
        running.token_server = pacs_module._spawn_token_server(running)
        pacs_module._wait_for_token_server(running, running.token_server, timeout=30)
        assert running.token_port > 0
        with TokenServerAdmin(running.token_server_admin_url) as admin:
            token = admin.mint_auth_token("zhiva")
            assert admin.public_key() == (running.token_keys_dir / "public.pem").read_text()
        pids = running.pids()
        assert pids == [running.token_server.pid]
    finally:
        running.stop()
    assert running.pids() == []
    assert claims_of_file(running.token_keys_dir / "public.pem", token)["username"] == "zhiva"
    # Test secrets stay private to the user running the tests.
    assert (tmp_path / "token-server" / "users.json").stat().st_mode & 0o077 == 0
    assert (running.token_keys_dir / "private.pem").stat().st_mode & 0o077 == 0


def claims_of_file(public_key: Path, token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token, public_key.read_text(), algorithms=["RS256"], options={"verify_exp": False}
    )
    return claims


def test_a_token_server_that_cannot_start_fails_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_users(path: Path, users: object) -> None:
        path.write_text("{not json")

    import tests.support.token_server as token_server_module

    monkeypatch.setattr(token_server_module, "write_users", broken_users)
    running = _bare_pacs(tmp_path)
    try:
        running.token_server = pacs_module._spawn_token_server(running)
        with pytest.raises(PacsSetupError, match="JSONDecodeError") as info:
            pacs_module._wait_for_token_server(running, running.token_server, timeout=30)
        assert "token server exited with code 1" in str(info.value)
    finally:
        running.stop()
    assert running.pids() == []
