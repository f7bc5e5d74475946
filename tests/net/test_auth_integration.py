"""Sign-in end to end: our client against the real token server and the token-gated PACS.

The token server's admin API moves its clock, expires and revokes tokens and counts
refreshes, so every step is deterministic: nothing here sleeps or times anything.
"""

from __future__ import annotations

import threading

import httpx
import msgspec
import pydicom
import pytest
from pydicom.uid import generate_uid

from net import (
    AuthError,
    DicomWebClient,
    SignInRequired,
    TokenError,
    TokenExpired,
    TokenSet,
    ZhivaTokenAuth,
    decode_token,
    exchange_auth_token,
    parse_configuration_link,
    server_from_claims,
)
from net._login import LoopbackLogin, sign_user
from tests.support.pacs import TestPacs
from tests.support.token_admin import TokenServerAdmin, play_browser_login

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_token_server")]


def _link(pacs: TestPacs, token: str) -> str:
    return f"{pacs.token_origin}/auth/oauth?token={token}"


def _session(
    pacs: TestPacs, token_admin: TokenServerAdmin, user: str = "zhiva-admin", **mint: object
):  # type: ignore[no-untyped-def]
    auth_token = token_admin.mint_auth_token(user, **mint)  # type: ignore[arg-type]
    claims, tokens = exchange_auth_token(auth_token, ca_file=pacs.ca_file)
    config = server_from_claims(claims)
    return msgspec.structs.replace(config, ca_file=pacs.ca_file), tokens


def test_configuration_link_to_studies(pacs: TestPacs, token_admin: TokenServerAdmin) -> None:
    link = _link(pacs, token_admin.mint_auth_token("zhiva-admin"))
    auth_token = parse_configuration_link(link)
    claims = decode_token(auth_token)
    assert claims.pacs == pacs.token_base_url and claims.username == "zhiva-admin"
    _, tokens = exchange_auth_token(auth_token, ca_file=pacs.ca_file)
    config = server_from_claims(claims)
    assert config.url == pacs.token_base_url and config.auth_type == "token" and config.can_store
    config = msgspec.structs.replace(config, ca_file=pacs.ca_file)
    auth = ZhivaTokenAuth(tokens, ca_file=pacs.ca_file)
    with DicomWebClient(config, auth) as client:
        studies = {s.study_uid for s in client.search_studies()}
        assert pacs.data.study_uid in studies
        unc = pacs.data.series("uncompressed")
        ds = client.retrieve_instance(pacs.data.study_uid, unc.series_uid, unc.sop_uids[0])
        assert ds.SOPInstanceUID == unc.sop_uids[0]
        assert isinstance(
            client.wado_uri(pacs.data.study_uid, unc.series_uid, unc.sop_uids[1]), pydicom.Dataset
        )
    # The link's token works once.
    with pytest.raises(TokenError) as info:
        exchange_auth_token(auth_token, ca_file=pacs.ca_file)
    assert "only once" in info.value.hint


def test_without_a_token_the_gate_refuses(pacs: TestPacs, token_admin: TokenServerAdmin) -> None:
    config, _ = _session(pacs, token_admin)
    with DicomWebClient(config) as client, pytest.raises(AuthError) as info:
        client.search_studies(limit=1)
    assert info.value.status_code == 401


def test_expired_auth_token_is_refused_before_sending(
    pacs: TestPacs, token_admin: TokenServerAdmin
) -> None:
    expired = token_admin.mint_auth_token("zhiva-admin", lifetime=-60)
    before = token_admin.stats()
    with pytest.raises(TokenExpired):
        exchange_auth_token(expired, ca_file=pacs.ca_file)
    assert token_admin.stats().since(before).exchanges == 0


def test_audience_travels_as_origin(pacs: TestPacs, token_admin: TokenServerAdmin) -> None:
    config, tokens = _session(pacs, token_admin, aud="https://viewer.example.org")
    assert tokens.aud == "https://viewer.example.org"
    auth = ZhivaTokenAuth(tokens, ca_file=pacs.ca_file)
    with DicomWebClient(config, auth) as client:
        assert client.search_studies(limit=1)
        token_admin.expire_access_tokens()
        assert client.search_studies(limit=1)  # the refresh sent the Origin too
    assert auth.refresh_count == 1


def test_token_expiring_mid_series_costs_exactly_one_refresh(
    pacs: TestPacs, token_admin: TokenServerAdmin
) -> None:
    config, tokens = _session(pacs, token_admin)
    auth = ZhivaTokenAuth(tokens, ca_file=pacs.ca_file)
    unc = pacs.data.series("uncompressed")
    wanted = unc.sop_uids[:40]
    got: list[str] = []
    before = token_admin.stats()
    with DicomWebClient(config, auth) as client:
        for k, sop in enumerate(wanted):
            if k == 17:  # the download pauses here while the access token expires
                assert token_admin.expire_access_tokens() >= 1
            got.append(
                str(
                    client.retrieve_instance(
                        pacs.data.study_uid, unc.series_uid, sop
                    ).SOPInstanceUID
                )
            )
    assert got == list(wanted)  # nothing lost, nothing twice
    assert token_admin.stats().since(before).refreshes == 1
    assert auth.refresh_count == 1


def test_refresh_before_expiry_by_the_clock(pacs: TestPacs, token_admin: TokenServerAdmin) -> None:
    config, tokens = _session(pacs, token_admin)
    # Our clock runs 25 hours ahead: the 24 h access token looks expired before sending.
    exp = tokens.access_claims().exp
    assert exp is not None
    auth = ZhivaTokenAuth(tokens, ca_file=pacs.ca_file, clock=lambda: exp + 1)
    before = token_admin.stats()
    with DicomWebClient(config, auth) as client:
        assert client.search_studies(limit=1)
    assert token_admin.stats().since(before).refreshes == 1


def test_concurrent_requests_on_an_expired_token_refresh_once(
    pacs: TestPacs, token_admin: TokenServerAdmin
) -> None:
    config, tokens = _session(pacs, token_admin)
    auth = ZhivaTokenAuth(tokens, ca_file=pacs.ca_file)
    token_admin.expire_access_tokens()
    before = token_admin.stats()
    errors: list[BaseException] = []
    start = threading.Barrier(8)
    with DicomWebClient(config, auth) as client:

        def worker() -> None:
            start.wait()
            try:
                client.search_studies(limit=1)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert token_admin.stats().since(before).refreshes == 1


def test_revoked_refresh_asks_to_sign_in_then_retries(
    pacs: TestPacs, token_admin: TokenServerAdmin
) -> None:
    config, tokens = _session(pacs, token_admin)
    token_admin.revoke_refresh_tokens()
    token_admin.expire_access_tokens()
    with DicomWebClient(config, ZhivaTokenAuth(tokens, ca_file=pacs.ca_file)) as client:
        with pytest.raises(SignInRequired):
            client.search_studies(limit=1)

    asked: list[SignInRequired] = []

    def sign_in(exc: SignInRequired) -> TokenSet:
        asked.append(exc)  # the app shows the sign-in form; the user signs in again
        return exchange_auth_token(
            token_admin.mint_auth_token("zhiva-admin"), ca_file=pacs.ca_file
        )[1]

    auth = ZhivaTokenAuth(tokens, ca_file=pacs.ca_file, sign_in=sign_in)
    with DicomWebClient(config, auth) as client:
        assert client.search_studies(limit=1)  # the failed request was retried, not lost
    assert len(asked) == 1


def test_store_needs_can_edit_resource(pacs: TestPacs, token_admin: TokenServerAdmin) -> None:
    ds = pydicom.dcmread(pacs.data.uncompressed_paths[1])
    ds.PatientID = "ZHIVA-TOKEN-STOW"
    ds.PatientName = "Stored^ByTokenTest"  # its own patient: phantom searches stay exact
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
        generate_uid(),
        generate_uid(),
        generate_uid(),
    )
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID

    config, tokens = _session(pacs, token_admin, user="zhiva")
    assert not tokens.can_edit  # the UI hides "Store to server" for this session
    with DicomWebClient(config, ZhivaTokenAuth(tokens, ca_file=pacs.ca_file)) as client:
        with pytest.raises(AuthError) as info:
            client.store([ds])
        assert info.value.status_code == 403

    config, tokens = _session(pacs, token_admin, user="zhiva-editor")
    with DicomWebClient(config, ZhivaTokenAuth(tokens, ca_file=pacs.ca_file)) as client:
        assert client.store([ds]).stored == (ds.SOPInstanceUID,)


@pytest.mark.parametrize("state_mode", ["echo", "reference"])
def test_loopback_login_with_a_browser(
    pacs: TestPacs, token_admin: TokenServerAdmin, state_mode: str
) -> None:
    token_admin.configure(sign_in_state=state_mode)
    results: list[httpx.Response] = []
    browsers: list[threading.Thread] = []

    def browser(url: str) -> None:
        user = "zhiva-admin"
        thread = threading.Thread(
            target=lambda: results.append(
                play_browser_login(url, user, pacs.token_users[user], ca_file=pacs.ca_file)
            )
        )
        browsers.append(thread)
        thread.start()

    login = LoopbackLogin(f"{pacs.auth_url}/sign-in", open_browser=browser)
    login.start()
    auth_token = login.wait(timeout=60)
    browsers[0].join()  # the browser shows our "signed in" page after the token arrived
    assert results and results[0].status_code == 200
    claims, tokens = exchange_auth_token(auth_token, ca_file=pacs.ca_file)
    assert claims.username == "zhiva-admin" and tokens.access_token


@pytest.mark.parametrize("bad_status", [401, 400])
def test_sign_user_form(pacs: TestPacs, token_admin: TokenServerAdmin, bad_status: int) -> None:
    token_admin.configure(bad_credentials_status=bad_status)
    token = sign_user(pacs.auth_url, "zhiva", pacs.token_users["zhiva"], ca_file=pacs.ca_file)
    assert decode_token(token).username == "zhiva"
    with pytest.raises(AuthError, match="Wrong user name or password"):
        sign_user(pacs.auth_url, "zhiva", "wrong", ca_file=pacs.ca_file)
