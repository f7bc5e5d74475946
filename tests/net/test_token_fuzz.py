"""Hostile token claims: only our `TokenError` (an `AuthError`) may come out, with words.

Tokens are decoded without a key (the client cannot check signatures), so anything a
link, a paste or a token server sends is parsed: non-finite and huge numbers, wrong
types, deep nesting, broken base64 and JSON.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from net import AuthError, TokenClaims, TokenError, TokenSet, decode_token

NOW = 1_800_000_000.0
CLAIMS = ["name", "username", "canEditResource", "tokenServer", "refreshServer", "pacs",
          "aud", "iss", "iat", "exp", "nbf"]  # fmt: skip
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e999, -1e999, 1e308, -1e308, 253402300800, -62135596801]),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=30)
    | st.sampled_from(["https://pacs.example.org/zhiva/pacs", "https://h:99999/x", "http://h/"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)  # fmt: skip
claims_like = st.dictionaries(st.sampled_from([*CLAIMS, "extra"]), json_values, max_size=10)


def _unsigned(payload: str | bytes) -> str:
    """A token whose payload is `payload` verbatim (JSON the encoder would not write)."""

    def part(data: str | bytes) -> str:
        raw = data.encode() if isinstance(data, str) else data
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part(json.dumps({'alg': 'HS256', 'typ': 'JWT'}))}.{part(payload)}.c2ln"


def _only_our_error(token: str) -> None:
    for auth_token in (True, False):
        try:
            claims = decode_token(token, auth_token=auth_token, clock=lambda: NOW)
        except TokenError as exc:
            assert isinstance(exc, AuthError) and exc.message.strip()
            continue
        assert isinstance(claims, TokenClaims)
        claims.expires_at()  # never raises either
    try:
        TokenSet(access_token=token).access_claims()
    except TokenError as exc:
        assert exc.message.strip()


FUZZ = settings(max_examples=300, deadline=None)


@FUZZ
@given(claims_like)
def test_random_claims_give_a_token_or_our_error(claims: dict[str, Any]) -> None:
    # Written by hand: PyJWT's encoder refuses some claims a hostile token can carry.
    _only_our_error(_unsigned(json.dumps(claims)))


@FUZZ
@given(st.text(max_size=200))
def test_random_text_gives_our_error(text: str) -> None:
    _only_our_error(text)


@pytest.mark.parametrize(
    "payload",
    [
        '{"iat": 1e999, "exp": 2e9}',  # OverflowError in datetime
        '{"exp": 1e999}',
        '{"exp": -1e999}',
        '{"exp": NaN}',
        '{"iat": Infinity}',
        '{"exp": 1' + "0" * 400 + "}",  # too large for a float
        '{"exp": 253402300800}',  # after the year 9999
        '{"aud": [[[]]], "name": {"a": 1}}',
        "[" * 100_000 + "]" * 100_000,  # RecursionError in the JSON parser
        '"just a string"',
        b"\xff\xfe{}",  # not UTF-8
        '{"iss": 5, "name": "x"}',
        '{"exp": 1' + "0" * 5000 + "}",  # past Python's int-to-str limit
    ],
)
def test_hostile_claims_become_token_errors(payload: str | bytes) -> None:
    _only_our_error(_unsigned(payload))


def test_an_impossible_time_is_named_in_the_message() -> None:
    with pytest.raises(TokenError, match="'iat'"):
        decode_token(_unsigned('{"iat": 1e999, "exp": 2e9}'), clock=lambda: NOW)
