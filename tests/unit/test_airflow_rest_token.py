"""Token renewal time, read from the JWT's claims without verifying the signature."""

from __future__ import annotations

import base64
import json

import pytest

from airflow_rest.token import renew_at


def jwt(claims: object) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzUxMiJ9.{payload}.c2lnbmF0dXJl"


def test_long_lived_token_is_renewed_30_s_before_expiry() -> None:
    assert renew_at(jwt({"iat": 1000, "exp": 1000 + 86400})) == 1000 + 86400 - 30


def test_short_lived_token_is_renewed_after_three_quarters_of_its_life() -> None:
    assert renew_at(jwt({"iat": 1000, "nbf": 1000, "exp": 1020})) == 1015


def test_token_without_iat_uses_the_full_margin() -> None:
    assert renew_at(jwt({"exp": 5000})) == 4970


@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", "a.b.c", jwt({"sub": "monitor"}), jwt(["exp"]), jwt({"exp": "soon"}), ""],
)
def test_unreadable_token_has_no_renewal_time(token: str) -> None:
    assert renew_at(token) is None
