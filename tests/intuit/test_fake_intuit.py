"""Tests for tests/support/fake_intuit.py itself: the wire details other suites rely on (headers, the
opt-in hard-expiry field, recording without secrets, consent errors, the fake clock, stop()
with parked handlers, use from a subprocess). Spoken to with the stdlib's http.client so the
fake is checked independently of the client under test.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.support.fake_intuit import FakeIntuit

CLIENT_ID = "fakeClientSandbox01"
CLIENT_SECRET = "fakeSecret0123456789abcdef"
REALM = "4620816365"
TID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")


def basic(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def call(
    fake: FakeIntuit, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    url = urlsplit(fake.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def refresh(fake: FakeIntuit, rt: str, *, hard: bool = False, auth: str | None = None) -> tuple[int, dict]:
    headers = {
        "Authorization": auth or basic(),
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
    }
    if hard:
        headers["x-include-refresh-token-hard-expires-in"] = "true"
    status, _, body = call(
        fake,
        "POST",
        "/oauth2/v1/tokens/bearer",
        body=urlencode({"grant_type": "refresh_token", "refresh_token": rt}).encode(),
        headers=headers,
    )
    return status, json.loads(body) if body else {}


class Clock:
    def __init__(self) -> None:
        self.value = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock):
    with FakeIntuit() as fake:
        fake.now = clock
        fake.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
        fake.add_company(REALM, "Sandbox Company_US_1", "sandbox")
        yield fake


def test_environ_points_every_endpoint_at_the_fake(fake: FakeIntuit) -> None:
    env = fake.environ()
    assert set(env) == {
        "SIDEQUEST_OAUTH_AUTHORIZE_URL",
        "SIDEQUEST_OAUTH_TOKEN_URL",
        "SIDEQUEST_OAUTH_REVOKE_URL",
        "SIDEQUEST_QBO_URL_PRODUCTION",
        "SIDEQUEST_QBO_URL_SANDBOX",
    }
    assert env["SIDEQUEST_OAUTH_TOKEN_URL"] == fake.url + "/oauth2/v1/tokens/bearer"
    assert env["SIDEQUEST_QBO_URL_PRODUCTION"] != env["SIDEQUEST_QBO_URL_SANDBOX"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", fake.url)
    with pytest.raises(RuntimeError):
        FakeIntuit().environ()


def test_every_answer_has_intuit_tid_and_a_date_from_the_fake_clock(fake: FakeIntuit, clock: Clock) -> None:
    clock.value += timedelta(days=101)
    for method, path in [
        ("GET", "/nowhere"),
        ("POST", "/oauth2/v1/tokens/bearer"),
        ("GET", f"/sandbox/v3/company/{REALM}/companyinfo/{REALM}"),
    ]:
        status, headers, _ = call(fake, method, path)
        assert TID.match(headers["intuit_tid"]), (path, headers["intuit_tid"])
        assert parsedate_to_datetime(headers["Date"]) == clock.value
    assert call(fake, "GET", "/nowhere")[0] == 404


def test_hard_expiry_field_only_when_asked(fake: FakeIntuit, clock: Clock) -> None:
    rt = fake.mint_chain(
        CLIENT_ID, REALM, issued_at=clock.value - timedelta(hours=2), hard_expires_at=clock.value + timedelta(days=1000)
    )
    status, plain = refresh(fake, rt)
    assert status == 200 and "x_refresh_token_hard_expires_in" not in plain
    assert plain["token_type"] == "bearer" and plain["expires_in"] == 3600
    assert plain["x_refresh_token_expires_in"] == 8726400 - 7200 and plain["refresh_token"] == rt
    status, asked = refresh(fake, rt, hard=True)
    assert asked["x_refresh_token_hard_expires_in"] == 1000 * 86400
    assert fake.refresh_count == 2


def test_token_endpoint_rejects_bad_requests(fake: FakeIntuit) -> None:
    rt = fake.mint_chain(CLIENT_ID, REALM)
    assert refresh(fake, rt, auth="Basic !!!notbase64") == (401, {"error": "invalid_client"})
    assert refresh(fake, rt, auth="Bearer x") == (401, {"error": "invalid_client"})
    assert refresh(fake, "RT1-unknown") == (
        400,
        {"error": "invalid_grant", "error_description": "Incorrect or invalid refresh token"},
    )
    form_headers = {"Authorization": basic(), "Content-Type": "application/x-www-form-urlencoded"}
    status, _, body = call(fake, "POST", "/oauth2/v1/tokens/bearer", body=b"grant_type=password", headers=form_headers)
    assert (status, json.loads(body)) == (400, {"error": "unsupported_grant_type"})
    status, _, body = call(
        fake, "POST", "/oauth2/v1/tokens/bearer", body=b"grant_type=refresh_token", headers=form_headers
    )
    assert (status, json.loads(body)) == (400, {"error": "invalid_request"})
    assert fake.refresh_count == 0


def test_recorded_requests_hold_no_secret(fake: FakeIntuit) -> None:
    rt = fake.mint_chain(CLIENT_ID, REALM)
    status, answer = refresh(fake, rt)
    at = answer["access_token"]
    call(
        fake,
        "GET",
        f"/sandbox/v3/company/{REALM}/companyinfo/{REALM}?minorversion=75",
        headers={"Authorization": f"Bearer {at}", "Accept": "application/json"},
    )
    shown = repr(fake.requests)
    for secret in (rt, at, CLIENT_SECRET, basic()[6:]):
        assert secret not in shown
    first, second = fake.requests
    assert first.headers["authorization"] == "<redacted>" and first.body_keys == ("grant_type", "refresh_token")
    assert (second.method, second.status, second.query_keys) == ("GET", 200, ("minorversion",))


def test_companyinfo_bodies_have_intuits_shapes(fake: FakeIntuit) -> None:
    fake.mint_chain(CLIENT_ID, REALM)
    at = fake.issue_access_token(CLIENT_ID, REALM)
    auth = {"Authorization": f"Bearer {at}", "Accept": "application/json"}
    status, headers, body = call(fake, "GET", f"/sandbox/v3/company/{REALM}/companyinfo/{REALM}", headers=auth)
    assert status == 200 and json.loads(body)["CompanyInfo"]["CompanyName"] == "Sandbox Company_US_1"
    status, _, body = call(fake, "GET", f"/prod/v3/company/{REALM}/companyinfo/{REALM}", headers=auth)
    fault = json.loads(body)["fault"]
    assert status == 403 and fault["type"] == "SERVICE" and fault["error"][0]["code"] == "3100"
    assert "ApplicationAuthorizationFailed; errorCode=003100; statusCode=403" in fault["error"][0]["message"]
    status, headers, body = call(fake, "GET", "/sandbox/v3/company/1/companyinfo/1", headers=auth)
    assert status == 401 and b'<Fault type="AuthenticationFault">' in body and b'<Error code="100">' in body
    status, _, body = call(
        fake, "GET", f"/sandbox/v3/company/{REALM}/companyinfo/{REALM}", headers={"Authorization": "Bearer short"}
    )
    assert status == 401 and json.loads(body)["fault"]["error"][0]["code"] == "3200"
    assert at not in body.decode()  # Intuit echoes a token *id*, never the token


def test_revoke_by_access_token_and_unknown_token(fake: FakeIntuit) -> None:
    rt = fake.mint_chain(CLIENT_ID, REALM)
    at = fake.issue_access_token(CLIENT_ID, REALM)
    headers = {"Authorization": basic(), "Content-Type": "application/json"}
    assert call(fake, "POST", "/v2/oauth2/tokens/revoke", body=b'{"token":"nope"}', headers=headers)[0] == 200
    assert call(fake, "POST", "/v2/oauth2/tokens/revoke", body=b"not json", headers=headers)[0] == 400
    assert call(fake, "POST", "/v2/oauth2/tokens/revoke", body=json.dumps({"token": at}).encode(), headers=headers)[
        :1
    ] == (200,)
    assert refresh(fake, rt)[0] == 400 and fake.current_refresh_token(CLIENT_ID, REALM) is None


def test_consent_errors_and_code_lifetime(fake: FakeIntuit, clock: Clock) -> None:
    def authorize(**params: str) -> tuple[int, dict[str, str]]:
        status, headers, _ = call(fake, "GET", "/connect/oauth2?" + urlencode(params))
        location = headers.get("Location") or ""
        return status, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    good = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "scope": "com.intuit.quickbooks.accounting",
        "redirect_uri": "http://localhost:1/cb?x=1",
        "state": "s",
    }
    assert authorize(**{**good, "client_id": "nobody"})[0] == 400
    assert authorize(**{**good, "scope": "openid"}) == (302, {"x": "1", "error": "invalid_scope", "state": "s"})
    status, params = authorize(**good)
    assert status == 302 and params["x"] == "1" and params["realmId"] == REALM
    assert params["code"].startswith("AB11")
    clock.value += timedelta(minutes=11)
    form = urlencode(
        {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": good["redirect_uri"]}
    ).encode()
    status, _, body = call(
        fake,
        "POST",
        "/oauth2/v1/tokens/bearer",
        body=form,
        headers={"Authorization": basic(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 400 and json.loads(body)["error"] == "invalid_grant"


def test_stop_returns_while_a_request_hangs() -> None:
    fake = FakeIntuit().start()
    fake.fail_mode = "hang"
    address = urlsplit(fake.url)
    sock = socket.create_connection((address.hostname, address.port), timeout=5)
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 5
    while not fake.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.requests and fake.requests[0].status == 0
    start = time.monotonic()
    fake.stop()
    assert time.monotonic() - start < 2
    assert sock.recv(100) == b""  # the parked handler let go and the connection closed
    sock.close()
    fake.stop()  # idempotent


def test_usable_from_a_subprocess(fake: FakeIntuit) -> None:
    fake.now = lambda: datetime.now(timezone.utc)
    rt = fake.mint_chain(CLIENT_ID, REALM)
    script = (
        "import os\n"
        "from doctor.intuit.client import IntuitClient\n"
        "with IntuitClient() as c:\n"
        f"    t = c.refresh({CLIENT_ID!r}, {CLIENT_SECRET!r}, os.environ['RT'])\n"
        f"    print(c.company_info(t.access_token, {REALM!r}, 'sandbox').company_name)\n"
    )
    env = {**os.environ, **fake.environ(), "RT": rt}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Sandbox Company_US_1" and fake.refresh_count == 1
