"""A server that echoes what it was sent never gets a secret into an IntuitError (issue 9 §5).

The connector API raises IntuitError to code that logs str()/repr() as it likes, so the
exception itself must be secret-free: the intuit_tid header is an opaque id ([A-Za-z0-9-],
bounded) and drops any echo of a secret; error text is scrubbed of every form of what was sent.
"""

from __future__ import annotations

import base64

import pytest

from doctor.intuit.client import IntuitClient
from doctor.intuit.errors import IntuitError, classify_error_response
from doctor.intuit.wire import MAX_TID_CHARS, intuit_tid
from tests.support.fake_intuit import FakeIntuit

CLIENT_ID = "ABcid0sandbox1234567890"
CLIENT_SECRET = "sandboxSecret0123456789abcdefXYZ"
REALM = "9130357992224456"
BASIC = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


def forms(secret: str) -> list[str]:
    every_byte = "".join(f"%{b:02X}" for b in secret.encode())
    return [secret, every_byte, every_byte.lower(), base64.b64encode(secret.encode()).decode().rstrip("=")]


def shown(err: IntuitError) -> str:
    return " ".join(str(x) for x in (str(err), repr(err), err.args, err.detail, err.code, err.intuit_tid))


def assert_no_secret(err: IntuitError, *secrets: str) -> None:
    text = shown(err)
    for secret in secrets:
        for form in forms(secret):
            assert form not in text, f"a form of a secret leaked into the IntuitError: {text}"
        # Not even a piece: 12 characters of the secret are already too many.
        assert not any(secret[i : i + 12] in text for i in range(len(secret) - 11)), text


@pytest.fixture
def fake():
    with FakeIntuit() as fake:
        fake.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
        fake.add_company(REALM, "Larry's Bakery", "sandbox")
        yield fake


@pytest.mark.parametrize("echo", ["basic", "refresh_token", "client_secret"])
def test_a_token_endpoint_echoing_a_secret_in_tid_and_description(fake: FakeIntuit, echo: str) -> None:
    token = fake.mint_chain(CLIENT_ID, REALM)
    fake.echo_secret = echo  # type: ignore[assignment]
    with IntuitClient(environ=fake.environ(), timeout=5.0) as client:
        with pytest.raises(IntuitError) as info:
            client.refresh(CLIENT_ID, CLIENT_SECRET, token)
    err = info.value
    assert err.kind == "invalid_grant"
    assert err.intuit_tid is None  # an echo is not an id
    assert_no_secret(err, CLIENT_SECRET, token, BASIC)


def test_a_qbo_endpoint_echoing_the_access_token(fake: FakeIntuit) -> None:
    fake.mint_chain(CLIENT_ID, REALM)
    access = fake.issue_access_token(CLIENT_ID, REALM)
    fake.echo_secret = "access_token"
    with IntuitClient(environ=fake.environ(), timeout=5.0) as client:
        with pytest.raises(IntuitError) as info:
            client.company_info(access, REALM, "sandbox")
    assert info.value.intuit_tid is None
    assert_no_secret(info.value, access)


def test_a_real_tid_is_kept_and_hostile_bytes_are_not() -> None:
    real = "1-6904c7a6-4f2a5d1b2e6a3c1d7e9f0a1b"
    assert intuit_tid({"intuit_tid": real}) == real
    assert intuit_tid({"Intuit_Tid": " 1-abc\x1b]52;c;aGk=\x07-def\r\n"}) == "1-abc52caGk-def"
    assert len(intuit_tid({"intuit_tid": "a" * 500}) or "") == MAX_TID_CHARS
    assert intuit_tid({"intuit_tid": "\x1b[;\x07"}) is None  # nothing of an id is left
    # A tid sharing a run with a secret we sent is dropped, even cut, even with its '=' stripped.
    assert intuit_tid({"intuit_tid": f"1-{BASIC}"}, [BASIC]) is None
    assert intuit_tid({"intuit_tid": f"1-{CLIENT_SECRET[5:20]}"}, [CLIENT_SECRET]) is None
    assert intuit_tid({"intuit_tid": real}, [CLIENT_SECRET, BASIC]) == real


def test_the_classifier_scrubs_every_encoding_of_a_secret_from_the_description() -> None:
    every_byte = "".join(f"%{b:02X}" for b in CLIENT_SECRET.encode())
    body = f'{{"error":"invalid_client","error_description":"got {every_byte} and {every_byte.lower()}"}}'
    err = classify_error_response(
        401, body.encode(), {"intuit_tid": CLIENT_SECRET}, api="token", secrets=[CLIENT_SECRET]
    )
    assert err.kind == "invalid_client"
    assert_no_secret(err, CLIENT_SECRET)
