"""Zhiva login: the loopback redirect listener and the sign-user form post."""

from __future__ import annotations

import threading

import httpx
import pytest

from net._errors import AuthError, TokenError
from net._login import LoginCancelled, LoopbackLogin, auth_base_url, sign_user


def test_auth_base_url_accepts_what_users_paste() -> None:
    assert auth_base_url("https://h/auth/sign-in") == "https://h/auth"
    assert auth_base_url("https://h/auth/") == "https://h/auth"
    with pytest.raises(TokenError):
        auth_base_url("http://h/auth/sign-in")


def _browser_that_signs_in(token: str, *, wrong_state_first: bool = False):  # type: ignore[no-untyped-def]
    """Plays the browser: follows the redirect the auth server would send."""
    opened: list[str] = []

    def open_browser(url: str) -> None:
        opened.append(url)
        login_url = httpx.URL(url)
        return_uri = login_url.params["return_uri"]
        state = login_url.params["state"]

        def redirect() -> None:
            with httpx.Client() as browser:
                if wrong_state_first:
                    forged = browser.get(return_uri, params={"token": "forged", "state": "other"})
                    assert forged.status_code == 400
                done = browser.get(return_uri, params={"token": token, "state": state})
                assert done.status_code == 200 and "Signed in" in done.text

        threading.Thread(target=redirect).start()

    return open_browser, opened


def test_loopback_login_returns_the_token() -> None:
    browser, opened = _browser_that_signs_in("AUTH.TOKEN.X")
    login = LoopbackLogin("https://localhost/auth/sign-in", open_browser=browser)
    url = login.start()
    assert url.startswith("https://localhost/auth/sign-in?return_uri=http%3A%2F%2F127.0.0.1%3A")
    assert opened == [url]
    assert login.wait(timeout=30) == "AUTH.TOKEN.X"


def test_a_redirect_with_another_state_is_ignored() -> None:
    browser, _ = _browser_that_signs_in("GOOD.TOKEN.X", wrong_state_first=True)
    login = LoopbackLogin("https://localhost/auth", open_browser=browser)
    login.start()
    assert login.wait(timeout=30) == "GOOD.TOKEN.X"


def test_cancel_and_timeout() -> None:
    login = LoopbackLogin("https://localhost/auth", open_browser=lambda url: None)
    login.start()
    login.cancel()
    with pytest.raises(LoginCancelled, match="cancelled"):
        login.wait(timeout=30)
    idle = LoopbackLogin("https://localhost/auth", open_browser=lambda url: None)
    idle.start()
    with pytest.raises(LoginCancelled, match="No sign-in"):
        idle.wait(timeout=0)
    # The listener is closed afterwards: the port no longer answers.
    with pytest.raises(httpx.ConnectError):
        httpx.get(idle.return_uri, timeout=5)


def test_sign_user_posts_credentials_and_reads_the_token() -> None:
    seen: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"token": "AUTH.T.K"})

    token = sign_user("https://h/auth/sign-in", "jane", "pw", transport=httpx.MockTransport(server))
    assert token == "AUTH.T.K"
    assert str(seen[0].url) == "https://h/auth/sign-user"
    assert seen[0].method == "POST" and b'"username":"jane"' in seen[0].content


def test_sign_user_wrong_password() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(401, text="Unauthorized"))
    with pytest.raises(AuthError, match="Wrong user name or password"):
        sign_user("https://h/auth", "jane", "bad", transport=transport)
