"""Intuit's refusals that used to be "unknown" or "an error page" get kinds of their own (issue 13, Intuit side).

Each is checked through the real client against the fake Intuit's opt-in switches on
127.0.0.1, and the pure parts (Retry-After, the monthly cap's marker) directly.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from doctor.intuit.client import IntuitClient
from doctor.intuit.errors import IntuitError, classify_error_response, parse_retry_after
from doctor.intuit.responses import parse_company_info, parse_token_response
from tests.support.fake_intuit import FakeIntuit

CLIENT_ID = "ABcid0sandbox1234567890"
CLIENT_SECRET = "sandboxSecret0123456789abcdefXYZ"
REALM = "9130357992224456"


@pytest.fixture
def fake():
    with FakeIntuit() as fake:
        fake.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
        fake.add_company(REALM, "Larry's Bakery", "sandbox")
        fake.mint_chain(CLIENT_ID, REALM)
        yield fake


def company_error(fake: FakeIntuit) -> IntuitError:
    access = fake.issue_access_token(CLIENT_ID, REALM)
    with IntuitClient(environ=fake.environ(), timeout=5.0) as client:
        with pytest.raises(IntuitError) as info:
            client.company_info(access, REALM, "sandbox")
    assert access not in str(info.value)
    return info.value


def refresh_error(fake: FakeIntuit) -> IntuitError:
    token = fake.current_refresh_token(CLIENT_ID, REALM) or ""
    with IntuitClient(environ=fake.environ(), timeout=5.0) as client:
        with pytest.raises(IntuitError) as info:
            client.refresh(CLIENT_ID, CLIENT_SECRET, token)
    return info.value


@pytest.mark.parametrize(
    ("fault", "status", "kind", "words"),
    [
        ("120", 401, "access_lost", "no longer has access"),
        ("120_json", 401, "access_lost", "no longer has access"),
        ("6190", 400, "subscription_lapsed", "subscription has ended"),
        ("130", 401, "wrong_cluster", "wrong cluster"),
    ],
)
@pytest.mark.parametrize("inside_200", [False, True], ids=["error_status", "fault_in_200"])
def test_companyinfo_refusals_are_named(
    fake: FakeIntuit, fault: str, status: int, kind: str, words: str, inside_200: bool
) -> None:
    fake.qbo_fault = fault  # type: ignore[assignment]
    fake.qbo_fault_status = 200 if inside_200 else None
    err = company_error(fake)
    assert err.kind == kind, err
    assert err.status == (200 if inside_200 else status)
    assert err.code == fault.split("_")[0]
    assert words in str(err) and err.intuit_tid


def test_a_fault_can_be_limited_to_one_environment(fake: FakeIntuit) -> None:
    """The fake's 130 only in production: the sandbox company (where the chain lives) still answers."""
    fake.qbo_fault = "130"
    fake.qbo_fault_environments = frozenset({"production"})
    access = fake.issue_access_token(CLIENT_ID, REALM)
    with IntuitClient(environ=fake.environ(), timeout=5.0) as client:
        assert client.company_info(access, REALM, "sandbox").company_name == "Larry's Bakery"
        with pytest.raises(IntuitError) as info:
            client.company_info(access, REALM, "production")
    assert info.value.kind == "wrong_cluster" and info.value.code == "130"


def test_an_oauth_error_inside_a_200_token_answer_is_classified() -> None:
    with pytest.raises(IntuitError) as info:
        parse_token_response(b'{"error":"invalid_grant"}', {"intuit_tid": "1-abc"})
    err_200 = info.value
    assert err_200.kind == "invalid_grant" and err_200.status == 200 and err_200.intuit_tid == "1-abc"
    with pytest.raises(IntuitError) as info:
        parse_company_info(b'{"Fault":{"Error":[{"code":"3200","Message":"x"}]}}', {}, REALM)
    assert info.value.kind == "token_rejected"
    # A 200 without the tokens and without an error stays what it was.
    with pytest.raises(IntuitError) as info:
        parse_token_response(b'{"token_type":"bearer"}', {})
    assert info.value.kind == "bad_response"


@pytest.mark.parametrize("api", ["token", "qbo"])
@pytest.mark.parametrize("retry_after", [None, "60"])
def test_a_per_minute_throttle(fake: FakeIntuit, api: str, retry_after: str | None) -> None:
    fake.throttle = "per_minute"
    fake.retry_after = retry_after
    err = refresh_error(fake) if api == "token" else company_error(fake)
    assert err.kind == "rate_limited" and err.status == 429 and err.retryable
    assert err.retry_after == (60.0 if retry_after else None)
    assert ("wait 60 s" in str(err)) == bool(retry_after)


@pytest.mark.parametrize("api", ["token", "qbo"])
def test_the_monthly_cap_is_told_from_a_throttle(fake: FakeIntuit, api: str) -> None:
    fake.throttle = "monthly_cap"
    err = refresh_error(fake) if api == "token" else company_error(fake)
    assert err.kind == "monthly_limit" and err.code == "3001" and not err.retryable
    assert "until next month" in str(err)


def test_the_monthly_cap_code_with_another_status_is_still_the_cap() -> None:
    body = b'{"Fault":{"Error":[{"Message":"message=ThrottleExceeded; errorCode=003001; statusCode=403"}]}}'
    assert classify_error_response(403, body, {}, api="qbo").kind == "monthly_limit"


def test_retry_after_as_seconds_or_a_date() -> None:
    now = datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Tue, 01 Dec 2026 10:01:30 GMT", now) == 90.0
    assert parse_retry_after("Tue, 01 Dec 2026 09:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert parse_retry_after("99999999999") is None  # not advice anyone can follow
    err = classify_error_response(
        429, b"", {"Retry-After": "Tue, 01 Dec 2026 10:01:00 GMT", "Date": "Tue, 01 Dec 2026 10:00:00 GMT"}, api="qbo"
    )
    assert err.kind == "rate_limited" and err.retry_after == 60.0
