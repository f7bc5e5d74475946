"""Zhiva sign-in on the client: token checks, links, exchange/refresh, the auth flow.

The flow is driven as a generator (next/send) without a network; the token server's
answers are injected with MockTransport. The real token server is exercised in
test_auth_integration.py.
"""

from __future__ import annotations

import re
import threading

import httpx
import jwt
import msgspec
import pytest

from net import ServerConfig
from net._auth import (
    TokenSet,
    ZhivaTokenAuth,
    configuration_link_origin,
    decode_token,
    exchange_auth_token,
    parse_configuration_link,
    refresh_access_token,
    server_from_claims,
)
from net._errors import SignInRequired, TokenError, TokenExpired

NOW = 1_800_000_000.0
HOST = "https://pacs.example.org"


def clock() -> float:
    return NOW


def make_token(lifetime: float = 3600, *, iat: float | None = None, **claims: object) -> str:
    body: dict[str, object] = {
        "name": "Jane Doe",
        "username": "jane",
        "canEditResource": True,
        "tokenServer": f"{HOST}/auth/generate-access-token",
        "refreshServer": f"{HOST}/auth/refresh-token",
        "pacs": f"{HOST}/zhiva/pacs",
        "iss": "zhiva.ai",
        "iat": int(NOW if iat is None else iat),
        "exp": int(NOW + lifetime),
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, "test-key-not-verified-by-the-client", algorithm="HS256")


# --- decoding and links -------------------------------------------------------------------


def test_decode_shows_the_claims() -> None:
    claims = decode_token(make_token(aud="https://viewer.example.org"), clock=clock)
    assert (claims.name, claims.username, claims.can_edit) == ("Jane Doe", "jane", True)
    assert claims.pacs == f"{HOST}/zhiva/pacs"
    assert claims.aud == "https://viewer.example.org"
    assert claims.expires_at() is not None


def test_expired_token_is_reported_before_anything_is_sent() -> None:
    with pytest.raises(TokenExpired) as info:
        decode_token(make_token(lifetime=-10), clock=clock)
    assert "expired" in str(info.value) and info.value.hint


def test_token_from_the_future_blames_the_clock() -> None:
    with pytest.raises(TokenError) as info:
        decode_token(make_token(iat=NOW + 3600), clock=clock)
    assert "clock" in str(info.value)


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        ("not-a-jwt", "not a valid sign-in token"),
        ("a.b.c", "not a valid sign-in token"),
        (make_token(pacs=None), "'pacs'"),
        (make_token(tokenServer="http://pacs.example.org/auth/generate-access-token"), "https"),
        (make_token(pacs="https://bad host/x"), "spaces"),
    ],
)
def test_bad_tokens_are_explained(token: str, fragment: str) -> None:
    with pytest.raises(TokenError) as info:
        decode_token(token, clock=clock)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("claims", "fragment"),
    [
        ({"tokenServer": "https://evil.example/auth/generate-access-token"}, "tokenServer"),
        ({"refreshServer": "https://evil.example/auth/refresh-token"}, "refreshServer"),
        ({"tokenServer": f"{HOST}:8443/auth/generate-access-token"}, "tokenServer"),  # port
    ],
)
def test_a_token_naming_another_sites_endpoints_is_refused(
    claims: dict[str, object], fragment: str
) -> None:
    with pytest.raises(TokenError) as info:
        decode_token(make_token(**claims), clock=clock)
    assert fragment in str(info.value) and "one site" in str(info.value)


def test_token_endpoints_may_live_on_the_configuration_links_site() -> None:
    auth = "https://auth.example.org"
    token = make_token(
        tokenServer=f"{auth}/auth/generate-access-token", refreshServer=f"{auth}/auth/refresh-token"
    )
    with pytest.raises(TokenError):
        decode_token(token, clock=clock)
    link = f"{auth}/auth/oauth?token={token}"
    assert configuration_link_origin(link) == auth
    assert configuration_link_origin(f"zhiva-viewer://oauth?token={token}") == ""
    claims = decode_token(token, clock=clock, link_origin=configuration_link_origin(link))
    assert claims.token_server.startswith(auth)
    # ... but token and refresh endpoints on two different sites are refused.
    split = make_token(refreshServer=f"{auth}/auth/refresh-token")
    with pytest.raises(TokenError, match="did not issue it"):
        decode_token(split, clock=clock, link_origin=auth)


def test_bearer_prefix_is_tolerated() -> None:
    assert decode_token("Bearer " + make_token(), clock=clock).username == "jane"


@pytest.mark.parametrize(
    "link",
    [
        "https://pacs.example.org/auth/oauth?token=abc.def.ghi",
        "https://pacs.example.org/auth/oauth/?token=abc.def.ghi&x=1",
        "zhiva-viewer://oauth?token=abc.def.ghi",
    ],
)
def test_configuration_links(link: str) -> None:
    assert parse_configuration_link(link) == "abc.def.ghi"


@pytest.mark.parametrize(
    ("link", "fragment"),
    [
        ("http://pacs.example.org/auth/oauth?token=x", "https"),
        ("https://pacs.example.org/other?token=x", "/auth/oauth"),
        ("https://pacs.example.org/auth/oauth", "no token"),
        ("ftp://x/auth/oauth?token=x", "not a configuration link"),
    ],
)
def test_bad_configuration_links(link: str, fragment: str) -> None:
    with pytest.raises(TokenError) as info:
        parse_configuration_link(link)
    assert fragment in str(info.value)


def test_server_from_claims_uses_the_pacs_claim_and_keeps_an_existing_server() -> None:
    claims = decode_token(make_token(canEditResource=False), clock=clock)
    new = server_from_claims(claims)
    assert new.url == f"{HOST}/zhiva/pacs" and new.auth_type == "token"
    assert new.wado_uri_postfix == "/zhiva/wado" and new.can_store is False
    old = ServerConfig(name="Mine", url="https://old.example.org/x", qido_postfix="rs")
    updated = server_from_claims(claims, old)
    assert (updated.id, updated.name, updated.qido_postfix) == (old.id, "Mine", "rs")
    assert updated.url == new.url


# --- exchange and refresh (token server answers injected) -------------------------------------


def test_exchange_reads_access_header_and_refresh_body() -> None:
    auth_token = make_token(aud="https://viewer.example.org")
    seen: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, headers={"Authentication": "Bearer ACCESS.t.k"}, text="REFRESH.t.k"
        )

    claims, tokens = exchange_auth_token(
        auth_token, transport=httpx.MockTransport(server), clock=clock
    )
    assert (tokens.access_token, tokens.refresh_token) == ("ACCESS.t.k", "REFRESH.t.k")
    assert tokens.refresh_server == claims.refresh_server and tokens.can_edit
    request = seen[0]
    assert request.method == "POST" and str(request.url) == claims.token_server
    assert request.headers["authorization"] == f"Bearer {auth_token}"
    assert request.headers["authentication"] == f"Bearer {auth_token}"
    assert request.headers["origin"] == "https://viewer.example.org"


@pytest.mark.parametrize("status", [401, 403, 500])
def test_exchange_refused_says_tokens_work_once(status: int) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(status, text="jwt already used"))
    with pytest.raises(TokenError) as info:
        exchange_auth_token(make_token(), transport=transport, clock=clock)
    assert "only once" in info.value.hint


def test_exchange_without_access_header_is_an_error() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text="REFRESH"))
    with pytest.raises(TokenError, match="no Authorization header"):
        exchange_auth_token(make_token(), transport=transport, clock=clock)


def test_refresh_keeps_refresh_token_and_maps_refusal_to_sign_in() -> None:
    tokens = TokenSet(
        access_token="old", refresh_token="R.e.f", refresh_server=f"{HOST}/auth/refresh-token"
    )
    ok = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"Authorization": "Bearer new.a.t"})
    )
    assert refresh_access_token(tokens, transport=ok) == TokenSet(
        access_token="new.a.t", refresh_token="R.e.f", refresh_server=tokens.refresh_server
    )
    refused = httpx.MockTransport(lambda r: httpx.Response(403, text="revoked"))
    with pytest.raises(SignInRequired):
        refresh_access_token(tokens, transport=refused)
    with pytest.raises(SignInRequired):
        refresh_access_token(TokenSet(access_token="x"))


def test_a_refresh_token_is_sent_only_to_the_site_that_issued_it() -> None:
    sent: list[httpx.Request] = []

    def anywhere(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, headers={"Authorization": "Bearer new.a.t"})

    moved = TokenSet(
        access_token="old",
        refresh_token="R.e.f",
        refresh_server="https://elsewhere.example/auth/refresh-token",
        issuer=HOST,
    )
    with pytest.raises(SignInRequired, match=re.escape(f"issued by {HOST}")):
        refresh_access_token(moved, transport=httpx.MockTransport(anywhere))
    assert sent == []
    same = msgspec.structs.replace(moved, refresh_server=f"{HOST}:443/auth/refresh-token")
    assert refresh_access_token(same, transport=httpx.MockTransport(anywhere)).access_token == (
        "new.a.t"
    )
    assert len(sent) == 1


def test_the_exchange_records_the_issuing_site() -> None:
    def token_server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Authorization": "Bearer a.b.c"}, text="")

    _, tokens = exchange_auth_token(
        make_token(), transport=httpx.MockTransport(token_server), clock=clock
    )
    assert tokens.issuer == HOST and tokens.refresh_token == ""


# --- the auth flow as a generator ------------------------------------------------------------


def access(lifetime: float) -> str:
    return make_token(lifetime=lifetime)


class Refresher:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self, tokens: TokenSet) -> TokenSet:
        self.calls += 1
        if self.fail:
            raise SignInRequired("refresh token revoked")
        return TokenSet(
            access_token=access(3600) + f"#{self.calls}", refresh_token=tokens.refresh_token
        )


def request() -> httpx.Request:
    return httpx.Request("GET", f"{HOST}/zhiva/pacs/studies")


def test_flow_sends_bearer_and_origin() -> None:
    auth = ZhivaTokenAuth(TokenSet(access_token=access(3600), aud="https://v.example"), clock=clock)
    flow = auth.sync_auth_flow(request())
    sent = next(flow)
    assert sent.headers["authorization"].startswith("Bearer ey")
    assert sent.headers["origin"] == "https://v.example"
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))


def test_flow_refreshes_before_expiry() -> None:
    refresher = Refresher()
    hour_old = make_token(lifetime=30, iat=NOW - 3570)  # a 1 h token with 30 s left
    auth = ZhivaTokenAuth(
        TokenSet(access_token=hour_old, refresh_token="r"), refresher=refresher, clock=clock
    )
    sent = next(auth.sync_auth_flow(request()))
    assert refresher.calls == 1  # 30 s left is inside the clock-skew margin
    assert sent.headers["authorization"].endswith("#1")


def test_a_token_shorter_than_the_margin_is_refreshed_once_per_lifetime() -> None:
    # A server issuing 20 s access tokens: a fixed 60 s margin refreshed before every
    # request. The margin is at most a tenth of the lifetime: 2 s here.
    now = [NOW]
    refreshes: list[float] = []

    def refresher(tokens: TokenSet) -> TokenSet:
        refreshes.append(now[0])
        fresh = make_token(iat=now[0], exp=int(now[0] + 20))
        return TokenSet(access_token=fresh, refresh_token="r")

    auth = ZhivaTokenAuth(
        TokenSet(access_token=make_token(lifetime=20), refresh_token="r"),
        refresher=refresher,
        clock=lambda: now[0],
    )
    for second in range(60):  # one request a second for a minute
        now[0] = NOW + second
        next(auth.sync_auth_flow(request()))
    assert refreshes == [NOW + 18, NOW + 36, NOW + 54]


@pytest.mark.parametrize("status", [401, 403])
def test_flow_refreshes_once_on_rejection_and_retries(status: int) -> None:
    refresher = Refresher()
    changes: list[TokenSet] = []
    auth = ZhivaTokenAuth(
        TokenSet(access_token=access(3600), refresh_token="r"),
        refresher=refresher,
        clock=clock,
        on_change=changes.append,
    )
    flow = auth.sync_auth_flow(request())
    next(flow)
    retried = flow.send(httpx.Response(status))
    assert retried.headers["authorization"].endswith("#1")
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(status))  # still refused: a real refusal, no second refresh
    assert refresher.calls == 1 and len(changes) == 1


def test_failed_refresh_without_handler_asks_to_sign_in() -> None:
    auth = ZhivaTokenAuth(
        TokenSet(access_token=access(3600), refresh_token="r"),
        refresher=Refresher(fail=True),
        clock=clock,
    )
    flow = auth.sync_auth_flow(request())
    next(flow)
    with pytest.raises(SignInRequired):
        flow.send(httpx.Response(401))


def test_failed_refresh_waits_for_sign_in_and_retries_the_request() -> None:
    asked: list[SignInRequired] = []

    def sign_in(exc: SignInRequired) -> TokenSet:
        asked.append(exc)
        return TokenSet(access_token="after-sign-in", refresh_token="r2")

    auth = ZhivaTokenAuth(
        TokenSet(access_token=access(3600), refresh_token="r"),
        refresher=Refresher(fail=True),
        sign_in=sign_in,
        clock=clock,
    )
    body_request = httpx.Request("POST", f"{HOST}/zhiva/pacs/studies", content=b"stow body")
    flow = auth.sync_auth_flow(body_request)
    next(flow)
    retried = flow.send(httpx.Response(401))
    assert retried.headers["authorization"] == "Bearer after-sign-in"
    assert retried.content == b"stow body"  # the STOW body is kept for the retry
    assert len(asked) == 1


def test_cancelled_sign_in_raises() -> None:
    auth = ZhivaTokenAuth(
        TokenSet(access_token=access(3600), refresh_token="r"),
        refresher=Refresher(fail=True),
        sign_in=lambda e: None,
        clock=clock,
    )
    flow = auth.sync_auth_flow(request())
    next(flow)
    with pytest.raises(SignInRequired):
        flow.send(httpx.Response(403))


def test_concurrent_rejections_cause_exactly_one_refresh() -> None:
    gate = threading.Barrier(8)
    calls: list[int] = []

    def slow_refresher(tokens: TokenSet) -> TokenSet:
        calls.append(1)
        return TokenSet(access_token=access(3600) + "#new", refresh_token="r")

    auth = ZhivaTokenAuth(
        TokenSet(access_token=access(3600), refresh_token="r"),
        refresher=slow_refresher,
        clock=clock,
    )
    retried: list[str] = []

    def worker() -> None:
        flow = auth.sync_auth_flow(request())
        next(flow)
        gate.wait()  # every thread has sent with the old token before any refresh
        retried.append(flow.send(httpx.Response(401)).headers["authorization"])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(retried) == 8 and all(h.endswith("#new") for h in retried)


def test_async_use_is_refused_clearly() -> None:
    auth = ZhivaTokenAuth(TokenSet(access_token="x"), clock=clock)
    with pytest.raises(RuntimeError):
        next(auth.auth_flow(request()))
