"""Zhiva login: the loopback redirect listener and the sign-user form post."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

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


# --- a hostile local process on the listener's port (issue 13, item 3) -------------------


def _idle_connection(login: LoopbackLogin, first_bytes: bytes = b"") -> socket.socket:
    """Another local process that connects and then sends nothing (more)."""
    idle = socket.create_connection(("127.0.0.1", login.port), timeout=5)
    if first_bytes:
        idle.sendall(first_bytes)
    return idle


def _in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


#: How long a call that must return "at once" may take before the test calls it hung: a
#: liveness bound far above the listener's own timeouts, not a speed measurement.
HUNG = 20.0


@pytest.mark.parametrize("first_bytes", [b"", b"GET /callb"])
def test_an_idle_connection_does_not_block_the_real_callback(first_bytes: bytes) -> None:
    browser, _ = _browser_that_signs_in("REAL.TOKEN.X")
    opened: list[str] = []
    login = LoopbackLogin("https://localhost/auth", open_browser=opened.append)
    login.start()
    with _idle_connection(login, first_bytes):
        browser(opened[0])  # the real redirect arrives while the idle one is held open
        assert login.wait(timeout=HUNG) == "REAL.TOKEN.X"


def test_cancel_and_timeout_return_while_a_connection_is_held_open() -> None:
    login = LoopbackLogin("https://localhost/auth", open_browser=lambda url: None)
    login.start()
    with _idle_connection(login, b"GET /callback?token=x"):
        waiter, outcome = _in_thread(lambda: login.wait(timeout=HUNG * 10))
        login.cancel()
        waiter.join(HUNG)
        assert not waiter.is_alive(), "wait() did not return after cancel()"
        assert isinstance(outcome[0], LoginCancelled) and "cancelled" in outcome[0].message

    idle = LoopbackLogin("https://localhost/auth", open_browser=lambda url: None)
    idle.start()
    with _idle_connection(idle):
        waiter, outcome = _in_thread(lambda: idle.wait(timeout=0.2))
        waiter.join(HUNG)
        assert not waiter.is_alive(), "wait(timeout) did not return with a connection held open"
        assert isinstance(outcome[0], LoginCancelled) and "No sign-in" in outcome[0].message


@pytest.mark.parametrize(
    "query",
    [
        "token=x&state=%C3%A9t%C3%A9",  # non-ASCII after percent-decoding
        "token=x&state=%FF%FE",  # not even UTF-8
        'token=x&state={"params":{"state":"\\u00e9"}}',  # the nested form, non-ASCII
    ],
)
def test_a_non_ascii_state_is_a_400_and_the_login_keeps_waiting(
    query: str, capfd: pytest.CaptureFixture[str]
) -> None:
    browser, _ = _browser_that_signs_in("GOOD.TOKEN.X")
    opened: list[str] = []
    login = LoopbackLogin("https://localhost/auth", open_browser=opened.append)
    login.start()
    forged = httpx.get(f"{login.return_uri}?{query}", timeout=HUNG)
    assert forged.status_code == 400
    browser(opened[0])
    assert login.wait(timeout=HUNG) == "GOOD.TOKEN.X"
    assert "Traceback" not in capfd.readouterr().err
