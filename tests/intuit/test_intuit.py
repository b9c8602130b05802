"""Tests for doctor/intuit: the pure parsers against every real Intuit capture in the corpus,
and the client end to end against FakeIntuit on 127.0.0.1 for every path the doctor diagnoses.

Every IntuitError a test produces goes through `expect_error`, which also proves that no secret
value sent with the request appears in the error's message, repr, detail or code.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from doctor.intuit.client import IntuitClient
from doctor.intuit.endpoints import ACCOUNTING_SCOPE, Endpoints, check_url_allowed
from doctor.intuit.errors import KINDS, IntuitError, classify_error_response
from doctor.intuit.responses import (
    CompanyInfo,
    TokenResponse,
    parse_company_info,
    parse_server_date,
    parse_token_response,
)
from doctor.intuit.wire import MAX_BODY_BYTES
from doctor.store.token_store import DEFAULT_REDIRECT_URI
from tests.support.fake_intuit import FakeIntuit

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "intuit"

CLIENT_ID = "ABcid0sandbox1234567890"
CLIENT_SECRET = "sandboxSecret0123456789abcdefXYZ"
PROD_ID = "ABcid0production123456789"
PROD_SECRET = "prodSecret0123456789abcdefXYZ"
REALM = "9130357992224456"
OTHER_REALM = "9130357992229999"
PROD_REALM = "123146090856284"
REDIRECT = "http://127.0.0.1:8765/callback"


# ---------------------------------------------------------------------------------------------
# helpers


class Clock:
    """A settable clock for the fake: tests move time instead of sleeping."""

    def __init__(self) -> None:
        self.value = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.value

    def advance(self, **delta: float) -> None:
        self.value += timedelta(**delta)


def expect_error(call: Callable[[], object], kind: str, *secrets: str) -> IntuitError:
    with pytest.raises(IntuitError) as info:
        call()
    err = info.value
    assert err.kind == kind, f"expected {kind}, got {err.kind}: {err}"
    assert_secret_free(err, *secrets)
    return err


def assert_secret_free(err: IntuitError, *secrets: str) -> None:
    shown = " ".join(str(x) for x in (str(err), repr(err), err.detail, err.code, err.args))
    assert "\n" not in str(err)
    for secret in (CLIENT_SECRET, PROD_SECRET, *secrets):
        assert secret and secret not in shown, "a secret leaked into an IntuitError"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock):
    fake = FakeIntuit()
    fake.now = clock
    fake.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
    fake.add_app(PROD_ID, PROD_SECRET, "production")
    fake.add_company(REALM, "Larry's Bakery", "sandbox")
    fake.add_company(OTHER_REALM, "Other Sandbox Co", "sandbox")
    fake.add_company(PROD_REALM, "Real Distribution LLC", "production")
    with fake:
        yield fake


@pytest.fixture
def client(fake: FakeIntuit):
    with IntuitClient(environ=fake.environ(), timeout=2.0, connect_timeout=1.0) as client:
        yield client


# ---------------------------------------------------------------------------------------------
# module hygiene and configuration


def test_import_does_not_load_httpx() -> None:
    code = "import sys, doctor.intuit.client; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_endpoints_default_to_intuit_and_follow_environment() -> None:
    default = Endpoints.from_environ({})
    assert default.token == "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
    assert default.authorize == "https://appcenter.intuit.com/connect/oauth2"
    assert default.revoke == "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
    assert default.qbo_base("production") == "https://quickbooks.api.intuit.com"
    assert default.qbo_base(" Sandbox ") == "https://sandbox-quickbooks.api.intuit.com"
    custom = Endpoints.from_environ(
        {
            "SIDEQUEST_OAUTH_TOKEN_URL": "http://127.0.0.1:1/t",
            "SIDEQUEST_QBO_URL_SANDBOX": "http://127.0.0.1:1/s/",
            "SIDEQUEST_OAUTH_REVOKE_URL": "   ",
        }
    )
    assert custom.token == "http://127.0.0.1:1/t"
    assert custom.qbo_base("sandbox") == "http://127.0.0.1:1/s"
    assert custom.revoke == default.revoke  # blank means unset
    with pytest.raises(ValueError):
        default.qbo_base("staging")


@pytest.mark.parametrize(
    "url",
    [
        "https://oauth.platform.intuit.com/x",
        "http://127.0.0.1:8080/x",
        "http://127.5.6.7/x",
        "http://[::1]:9/x",
        "http://localhost:1/x",
        "HTTPS://Example.com",
    ],
)
def test_allowed_urls(url: str) -> None:
    check_url_allowed(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://oauth.platform.intuit.com/x",
        "http://10.0.0.1/x",
        "http://localhost.evil.com/x",
        "ftp://127.0.0.1/x",
        "oauth.platform.intuit.com/x",
        "",
        "https:///nohost",
        "http://[::ffff:10.0.0.1]/x",
    ],
)
def test_refused_urls(url: str) -> None:
    err = expect_error(lambda: check_url_allowed(url), "insecure_url")
    assert not err.retryable


def test_authorize_url_has_exactly_the_five_parameters(client: IntuitClient, fake: FakeIntuit) -> None:
    url = client.authorize_url(CLIENT_ID, DEFAULT_REDIRECT_URI, "state-123")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == fake.environ()["SIDEQUEST_OAUTH_AUTHORIZE_URL"]
    assert parse_qs(parts.query) == {
        "client_id": [CLIENT_ID],
        "response_type": ["code"],
        "scope": [ACCOUNTING_SCOPE],
        "redirect_uri": [DEFAULT_REDIRECT_URI],
        "state": ["state-123"],
    }


def test_intuit_error_rejects_unknown_kind_and_sets_retryable() -> None:
    with pytest.raises(ValueError):
        IntuitError("nope")
    assert IntuitError("network").retryable and IntuitError("timeout").retryable
    assert IntuitError("server_error", status=503).retryable
    assert IntuitError("http_error", status=429).retryable
    assert not IntuitError("invalid_grant", status=400).retryable
    assert not IntuitError("certificate").retryable  # the same certificate fails the same way again
    assert (
        set(KINDS) >= {"invalid_grant", "wrong_realm", "insecure_url", "certificate", "rate_limited"}
        and len(KINDS) == 18
    )


# ---------------------------------------------------------------------------------------------
# the corpus: every real capture parses into the right kind without crashing

# file prefix -> (HTTP status the body came with, api, expected kind or "success", expected code)
CORPUS_TABLE: dict[str, tuple[int, str, str, str | None]] = {
    "01": (200, "token", "success", None),
    "02": (200, "token", "success", None),
    "03": (200, "token", "success", None),
    "04": (400, "token", "invalid_grant", "invalid_grant"),
    "05": (400, "token", "invalid_grant", "invalid_grant"),
    "06": (400, "token", "invalid_grant", "invalid_grant"),
    "07": (401, "token", "invalid_client", "invalid_client"),
    "08": (401, "qbo", "token_rejected", "3200"),
    "09": (401, "qbo", "token_rejected", "3200"),
    "10": (401, "qbo", "token_rejected", "3200"),
    "11": (403, "qbo", "wrong_environment", "3100"),
    "12": (403, "qbo", "wrong_environment", "3100"),
    "13": (403, "qbo", "wrong_environment", "3100"),
    "14": (401, "qbo", "wrong_realm", "100"),
    "15": (401, "qbo", "wrong_realm", "100"),
    "16": (401, "qbo", "wrong_realm", "100"),
    "17": (500, "qbo", "server_error", "100"),
    "18": (401, "qbo", "wrong_cluster", "130"),
    "19": (401, "qbo", "token_rejected", "3200"),  # not well-formed (VCR's <COMPANY_ID>), code salvaged
    "20": (401, "qbo", "token_rejected", "3200"),
    "21": (400, "qbo", "http_error", "3202"),
    "22": (400, "qbo", "http_error", "4000"),
    "23": (200, "qbo", "success", None),
    "24": (200, "qbo", "success", None),
    "25": (200, "qbo", "success", None),
}


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if p.is_file() and p.name != "SOURCES.md")


def unescape_as_pasted(path: Path, raw: bytes) -> bytes:
    """Undo the pasting described in corpus/intuit/SOURCES.md (12: JSON string literal; 18: \\")."""
    if ".aspasted." not in path.name:
        return raw
    if raw.lstrip().startswith(b'"'):
        return json.loads(raw).encode("utf-8")
    return raw.replace(b'\\"', b'"')


def test_corpus_table_covers_every_file() -> None:
    files = corpus_files()
    if not files:
        pytest.skip("corpus not available")
    assert sorted(p.name[:2] for p in files) == sorted(CORPUS_TABLE)


@pytest.mark.parametrize("prefix", sorted(CORPUS_TABLE))
def test_corpus_file_is_classified(prefix: str) -> None:
    matches = [p for p in corpus_files() if p.name.startswith(prefix + "-")]
    if not matches:
        pytest.skip("corpus not available")
    path = matches[0]
    status, api, kind, code = CORPUS_TABLE[prefix]
    body = unescape_as_pasted(path, path.read_bytes())
    headers = {"intuit_tid": "1-628f0be4-19ed5ea63980105102b16b1e", "Date": "Mon, 22 Dec 2025 13:16:02 GMT"}
    if kind == "success" and api == "token":
        tokens = parse_token_response(body, headers)
        assert tokens.expires_in == 3600 and tokens.refresh_expires_in == 8726400
        assert tokens.hard_expires_in is None
        assert tokens.refresh_token == "sample_refresh_token"
        assert "sample_refresh_token" not in repr(tokens) and "sample_access_token" not in repr(tokens)
        assert tokens.server_date == datetime(2025, 12, 22, 13, 16, 2, tzinfo=timezone.utc)
        return
    if kind == "success":
        info = parse_company_info(body, headers, "4620816365")
        assert info.company_name and info.realm_id == "4620816365" and info.country == "US"
        return
    err = classify_error_response(status, body, headers, api=api)  # type: ignore[arg-type]
    assert (err.kind, err.code, err.status) == (kind, code, status)
    assert err.intuit_tid == "1-628f0be4-19ed5ea63980105102b16b1e"
    assert "intuit_tid 1-628f0be4" in str(err)
    assert_secret_free(err)
    # The SignatureBaseString of the OAuth1 captures holds the signed request: never echoed.
    assert "SignatureBaseString" not in str(err) and "oauth_nonce" not in str(err)


def test_corpus_details_keep_meaning_and_mask_token_ids() -> None:
    files = {p.name[:2]: p for p in corpus_files()}
    if not files:
        pytest.skip("corpus not available")
    expired = classify_error_response(401, files["08"].read_bytes(), {}, api="qbo")
    masked_id = "XX00000000000xxxxXxxXXxxxXXXXXXX0xxXxXxXxxxXX00Xxx"
    assert masked_id not in str(expired) and expired.detail.startswith("Token expired: …")
    scope = classify_error_response(403, files["13"].read_bytes(), {}, api="qbo")
    assert scope.detail == "The access token does not have sufficient scope"
    variant = classify_error_response(403, unescape_as_pasted(files["12"], files["12"].read_bytes()), {}, api="qbo")
    assert variant.detail == "ApplicationAuthorizationFailed"
    # Even the escaped form as pasted (a JSON string literal) is understood, one level deep.
    assert classify_error_response(403, files["12"].read_bytes(), {}, api="qbo").kind == "wrong_environment"
    grant = classify_error_response(400, files["05"].read_bytes(), {}, api="token", grant="refresh_token")
    assert (
        str(grant) == "Intuit refused the refresh token (HTTP 400, invalid_grant: Incorrect or invalid refresh token)"
    )


# ---------------------------------------------------------------------------------------------
# the pure parser on hostile or odd input


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, b"", "bad_response"),
        (401, b"   \r\n", "bad_response"),
        (503, b"", "server_error"),
        (502, b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>", "server_error"),
        (404, b"<html><body>Not here</body></html>", "bad_response"),
        (400, b'{"error":"invalid_gr', "bad_response"),
        (400, b'\xef\xbb\xbf{"error":"invalid_grant"}\r\n', "invalid_grant"),
        (400, b'{"error":"unauthorized_client"}', "invalid_request"),
        (400, b'{"error":"unsupported_grant_type"}', "invalid_request"),
        (400, b'{"error":"something_new"}', "http_error"),
        (500, b'{"error":"invalid_grant"}', "server_error"),
        (429, b"Too many requests", "rate_limited"),
        (
            401,
            b'<?xml version="1.0"?><IntuitResponse><Fault type="AuthenticationFault"><Error code="100">',
            "wrong_realm",
        ),
        (401, b"<?xml version='1.0'?><IntuitResponse><Fault", "bad_response"),
        (401, b"<IntuitResponse><Other/></IntuitResponse>", "bad_response"),
        (400, b"\x00\xff\xfe garbage", "bad_response"),
        (400, b"[1, 2, 3]", "http_error"),
        (
            401,
            b'{"code":"AuthenticationFailed","type":"INPUT","message":null,"detail":"Malformed bearer token"}',
            "token_rejected",
        ),
        (
            401,
            b'{"Fault":{"Error":[{"Message":"message=AuthenticationFailed; errorCode=003200; statusCode=401",'
            b'"Detail":"Token expired","code":"3200"}],"type":"AUTHENTICATION"}}',
            "token_rejected",
        ),
        (
            401,
            b'{"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401"}]}}',
            "token_rejected",
        ),
        (
            401,
            b'<Fault type="AuthorizatonFault"><Error code="120">'
            b"<Message>Authorization Failure</Message></Error></Fault>",
            "access_lost",
        ),
    ],
)
def test_classify_odd_bodies(status: int, body: bytes, kind: str) -> None:
    err = classify_error_response(status, body, {}, api="qbo" if b"ault" in body or b"code" in body else "token")
    assert err.kind == kind
    assert err.status == status
    assert_secret_free(err)


def test_classify_refuses_entity_expansion_and_huge_bodies() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b'<Fault><Error code="100"><Message>&lol2;</Message></Error></Fault>'
    )
    err = classify_error_response(401, laughs, {}, api="qbo")
    assert err.kind == "wrong_realm" and "lollol" not in str(err)  # code salvaged, entities never expanded
    huge = b'{"error":"invalid_grant","error_description":"' + b"x" * (MAX_BODY_BYTES * 2) + b'"}'
    start = time.monotonic()
    err = classify_error_response(400, huge, {}, api="token")
    assert err.kind == "bad_response" and time.monotonic() - start < 2
    assert len(str(err)) < 400


def test_classify_scrubs_known_secrets_and_token_like_ids() -> None:
    refresh_token = "RT1-39-H3-1785429816rcysb9dns1ofreknypnm"
    body = json.dumps({"error": "invalid_grant", "error_description": f"Refresh token not found: {refresh_token}"})
    err = classify_error_response(400, body.encode(), {}, api="token", secrets=[refresh_token])
    assert refresh_token not in str(err) and "1785429816" not in str(err)
    body = json.dumps(
        {"error": "invalid_grant", "error_description": "Refresh token not found: AB11575917x9kq2mzYt5a8LpQ"}
    )
    err = classify_error_response(400, body.encode(), {}, api="token")
    assert "AB11575917x9kq2mzYt5a8LpQ" not in str(err) and err.detail.endswith("…8LpQ")
    # Ordinary long words survive the masking.
    err = classify_error_response(
        403, b'{"fault":{"error":[{"message":"message=ApplicationAuthorizationFailed","code":"3100"}]}}', {}, api="qbo"
    )
    assert err.detail == "ApplicationAuthorizationFailed"


def test_headers_are_read_case_insensitively_and_dates_parsed() -> None:
    err = classify_error_response(
        400,
        b'{"error":"invalid_grant"}',
        {"INTUIT_TID": "1-aa\r\nInjected: yes", "date": "Tue, 01 Dec 2026 10:00:00 GMT"},
        api="token",
    )
    assert err.intuit_tid == "1-aaInjectedyes" and "\n" not in str(err)  # only [A-Za-z0-9-] is kept
    assert err.server_date == datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    assert parse_server_date("not a date") is None and parse_server_date(None) is None
    assert parse_server_date("Tue, 01 Dec 2026 12:00:00 +0200") == datetime(2026, 12, 1, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>hi</html>",
        b'{"access_token":"a"',
        b'["x"]',
        b'{"access_token":"","refresh_token":"def","expires_in":3600}',
    ],
)
def test_parse_token_response_rejects_unusable_answers(body: bytes) -> None:
    err = expect_error(lambda: parse_token_response(body, {}), "bad_response", "abc", "def")
    assert err.status == 200


@pytest.mark.parametrize("expires", [b"", b',"expires_in":true', b',"expires_in":"' + b"9" * 5000 + b'"'])
def test_an_unusable_expires_in_keeps_the_tokens_with_intuits_hour(expires: bytes) -> None:
    # After a rotation the old refresh token is dead: a bad lifetime must not drop the new one.
    token = parse_token_response(b'{"access_token":"abc","refresh_token":"def"' + expires + b"}", {})
    assert (token.access_token, token.refresh_token, token.expires_in) == ("abc", "def", 3600)


def test_token_response_repr_hides_tokens() -> None:
    body = (
        b'{"access_token":"eyJaccess0123456789","refresh_token":"RT1-39-H3-17854298zzzz","expires_in":"3600",'
        b'"x_refresh_token_expires_in":8726400.0,"x_refresh_token_hard_expires_in":"156032154"}'
    )
    tokens = parse_token_response(body, {})
    assert isinstance(tokens, TokenResponse)
    assert (tokens.expires_in, tokens.refresh_expires_in, tokens.hard_expires_in) == (3600, 8726400, 156032154)
    for shown in (repr(tokens), str(tokens), f"{tokens}"):
        assert "eyJaccess0123456789" not in shown and "RT1-39-H3-17854298zzzz" not in shown
        assert "RT…zzzz" in shown and "AT…6789" in shown


def test_parse_company_info_rejects_other_json() -> None:
    expect_error(lambda: parse_company_info(b'{"QueryResponse":{}}', {}, "1"), "bad_response")
    expect_error(lambda: parse_company_info(b"<x", {}, "1"), "bad_response")
    info = parse_company_info(b'{"QueryResponse":{"CompanyInfo":[{"CompanyName":"Q Co","Country":"CA"}]}}', {}, "7")
    assert info == CompanyInfo("Q Co", "7", "CA", None, None)


# ---------------------------------------------------------------------------------------------
# end to end against the fake


def test_refresh_success_sends_what_intuit_expects(client: IntuitClient, fake: FakeIntuit, clock: Clock) -> None:
    rt = fake.mint_chain(CLIENT_ID, REALM, issued_at=clock() - timedelta(hours=1))
    tokens = client.refresh(CLIENT_ID, CLIENT_SECRET, rt)
    assert tokens.refresh_token == rt  # within 24 h: same token, clock counting down
    assert tokens.refresh_expires_in == 8726400 - 3600
    assert tokens.expires_in == 3600
    assert tokens.hard_expires_in == pytest.approx(157680000 - 3600, abs=2)
    assert tokens.intuit_tid and tokens.intuit_tid.startswith("1-")
    assert tokens.server_date == clock()
    sent = fake.requests[-1]
    assert sent.method == "POST" and sent.path == "/oauth2/v1/tokens/bearer"
    assert sent.headers["x-include-refresh-token-hard-expires-in"] == "true"
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.body_keys == ("grant_type", "refresh_token")
    info = client.company_info(tokens.access_token, REALM, "sandbox")
    assert info.company_name == "Larry's Bakery" and info.realm_id == REALM and info.country == "US"
    assert fake.requests[-1].path == f"/sandbox/v3/company/{REALM}/companyinfo/{REALM}"
    assert fake.requests[-1].query_keys == ("minorversion",)


def test_daily_rotation_supersedes_the_old_token(client: IntuitClient, fake: FakeIntuit, clock: Clock) -> None:
    rt1 = fake.mint_chain(CLIENT_ID, REALM)
    assert client.refresh(CLIENT_ID, CLIENT_SECRET, rt1).refresh_token == rt1
    clock.advance(hours=25)
    rotated = client.refresh(CLIENT_ID, CLIENT_SECRET, rt1)
    assert rotated.refresh_token != rt1 and rotated.refresh_expires_in == 8726400
    assert fake.current_refresh_token(CLIENT_ID, REALM) == rotated.refresh_token
    err = expect_error(lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, rt1), "invalid_grant", rt1)
    assert (err.status, err.code, err.detail) == (400, "invalid_grant", "Incorrect or invalid refresh token")
    assert str(err).startswith("Intuit refused the refresh token") and not err.retryable
    assert fake.refresh_count == 2


def test_every_call_rotation_and_grace(client: IntuitClient, fake: FakeIntuit, clock: Clock) -> None:
    fake.rotation = "every_call"
    fake.grace_seconds = 60
    rt1 = fake.mint_chain(CLIENT_ID, REALM)
    rt2 = client.refresh(CLIENT_ID, CLIENT_SECRET, rt1).refresh_token
    assert rt2 != rt1
    clock.advance(seconds=30)
    rt3 = client.refresh(CLIENT_ID, CLIENT_SECRET, rt1).refresh_token  # superseded, but inside the grace
    assert rt3 not in (rt1, rt2)
    clock.advance(seconds=61)
    expect_error(lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, rt1), "invalid_grant", rt1)
    expect_error(lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, rt2), "invalid_grant", rt2)
    assert client.refresh(CLIENT_ID, CLIENT_SECRET, rt3).refresh_token != rt3


def test_never_rotation_keeps_the_token(client: IntuitClient, fake: FakeIntuit, clock: Clock) -> None:
    fake.rotation = "never"
    rt = fake.mint_chain(CLIENT_ID, REALM)
    clock.advance(days=3)
    assert client.refresh(CLIENT_ID, CLIENT_SECRET, rt).refresh_token == rt


def test_idle_expiry_after_100_days(client: IntuitClient, fake: FakeIntuit, clock: Clock) -> None:
    alive = fake.mint_chain(CLIENT_ID, REALM)
    idle = fake.mint_chain(
        CLIENT_ID, OTHER_REALM, issued_at=clock() - timedelta(days=120), last_used_at=clock() - timedelta(days=101)
    )
    expect_error(lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, idle), "invalid_grant", idle)
    clock.advance(days=99)
    kept = client.refresh(CLIENT_ID, CLIENT_SECRET, alive).refresh_token
    clock.advance(days=101)
    expect_error(lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, kept), "invalid_grant", kept)


def test_hard_cap_ends_the_chain(client: IntuitClient, fake: FakeIntuit, clock: Clock) -> None:
    rt = fake.mint_chain(CLIENT_ID, REALM, hard_expires_at=clock() + timedelta(hours=2))
    tokens = client.refresh(CLIENT_ID, CLIENT_SECRET, rt)
    assert tokens.hard_expires_in == 7200 and tokens.refresh_expires_in == 7200
    clock.advance(hours=3)
    expect_error(lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, rt), "invalid_grant", rt)


def test_disconnect_kills_refresh_and_access_tokens(client: IntuitClient, fake: FakeIntuit) -> None:
    rt = fake.mint_chain(CLIENT_ID, REALM)
    tokens = client.refresh(CLIENT_ID, CLIENT_SECRET, rt)
    fake.disconnect(REALM)
    expect_error(lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, rt), "invalid_grant", rt)
    err = expect_error(
        lambda: client.company_info(tokens.access_token, REALM, "sandbox"), "token_rejected", tokens.access_token
    )
    assert err.code == "3200" and err.detail.startswith("Token expired: …")
    assert fake.current_refresh_token(CLIENT_ID, REALM) is None


def test_wrong_keys(client: IntuitClient, fake: FakeIntuit) -> None:
    rt = fake.mint_chain(CLIENT_ID, REALM)
    err = expect_error(
        lambda: client.refresh(CLIENT_ID, "wrong-secret-0123456789", rt),
        "invalid_client",
        rt,
        "wrong-secret-0123456789",
    )
    assert (err.status, err.code) == (401, "invalid_client")
    expect_error(lambda: client.refresh("unknown-client", CLIENT_SECRET, rt), "invalid_client", rt)
    # Production keys do not know a chain consented with the development (sandbox) keys.
    expect_error(lambda: client.refresh(PROD_ID, PROD_SECRET, rt), "invalid_grant", rt)


def test_api_errors_3200_3100_100(client: IntuitClient, fake: FakeIntuit, clock: Clock) -> None:
    rt = fake.mint_chain(CLIENT_ID, REALM)
    at = client.refresh(CLIENT_ID, CLIENT_SECRET, rt).access_token
    err = expect_error(lambda: client.company_info(at, REALM, "production"), "wrong_environment", at)
    assert (err.status, err.code, err.detail) == (403, "3100", "ApplicationAuthorizationFailed")
    err = expect_error(lambda: client.company_info(at, OTHER_REALM, "sandbox"), "wrong_realm", at)
    assert (err.status, err.code) == (401, "100")
    err = expect_error(lambda: client.company_info("garbage", REALM, "sandbox"), "token_rejected", "garbage")
    assert err.detail == "Malformed bearer token: too short or too long"
    clock.advance(seconds=3601)
    err = expect_error(lambda: client.company_info(at, REALM, "sandbox"), "token_rejected", at)
    assert err.intuit_tid and err.server_date == clock()
    # A production token on the sandbox base is refused the same way.
    prod_rt = fake.mint_chain(PROD_ID, PROD_REALM)
    prod_at = client.refresh(PROD_ID, PROD_SECRET, prod_rt).access_token
    expect_error(lambda: client.company_info(prod_at, PROD_REALM, "sandbox"), "wrong_environment", prod_at)
    assert client.company_info(prod_at, PROD_REALM, "production").company_name == "Real Distribution LLC"


@pytest.mark.parametrize(
    ("mode", "kind"),
    [("503", "server_error"), ("html_502", "server_error"), ("truncated", "bad_response"), ("reset", "network")],
)
def test_failure_modes(client: IntuitClient, fake: FakeIntuit, mode: str, kind: str) -> None:
    fake.rotation = "every_call"
    rt = fake.mint_chain(CLIENT_ID, REALM)
    fake.fail_mode = mode  # type: ignore[assignment]
    err = expect_error(lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, rt), kind, rt)
    assert err.retryable == (kind != "bad_response")
    if mode == "truncated":
        # Intuit rotated, but the answer was lost: the old token is now dead (INTUIT.md §2.3).
        assert fake.current_refresh_token(CLIENT_ID, REALM) != rt
    fake.fail_mode = None
    if mode != "truncated":
        assert client.refresh(CLIENT_ID, CLIENT_SECRET, rt).refresh_token != rt


def test_slow_answer_within_timeout_succeeds(client: IntuitClient, fake: FakeIntuit) -> None:
    rt = fake.mint_chain(CLIENT_ID, REALM)
    fake.fail_mode, fake.slow_seconds = "slow", 0.3
    start = time.monotonic()
    assert client.refresh(CLIENT_ID, CLIENT_SECRET, rt).refresh_token == rt
    assert time.monotonic() - start >= 0.3


def test_hang_times_out_within_the_client_timeout(fake: FakeIntuit) -> None:
    rt = fake.mint_chain(CLIENT_ID, REALM)
    fake.fail_mode = "hang"
    with IntuitClient(environ=fake.environ(), timeout=0.5, connect_timeout=0.5) as client:
        start = time.monotonic()
        err = expect_error(lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, rt), "timeout", rt)
        elapsed = time.monotonic() - start
    assert 0.4 <= elapsed < 1.5 and err.retryable


def test_connection_refused_on_a_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    environ = {"SIDEQUEST_OAUTH_TOKEN_URL": f"http://127.0.0.1:{port}/oauth2/v1/tokens/bearer"}
    with IntuitClient(environ=environ, timeout=1, connect_timeout=1) as client:
        err = expect_error(
            lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, "RT1-39-H3-secretvalue123456"),
            "network",
            "RT1-39-H3-secretvalue123456",
        )
    assert err.retryable and "127.0.0.1" in str(err)


def test_plain_http_to_a_remote_host_is_refused_before_connecting() -> None:
    # 192.0.2.1 (TEST-NET-1) would hang a real connect; the refusal must come first and fast.
    environ = {
        "SIDEQUEST_OAUTH_TOKEN_URL": "http://192.0.2.1/oauth2/v1/tokens/bearer",
        "SIDEQUEST_QBO_URL_SANDBOX": "http://192.0.2.1/sandbox",
    }
    client = IntuitClient(environ=environ, timeout=5, connect_timeout=5)
    start = time.monotonic()
    expect_error(lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, "RT1-39-H3-secretvalue123456"), "insecure_url")
    expect_error(lambda: client.company_info("eyJsecretaccess0123456789", REALM, "sandbox"), "insecure_url")
    assert time.monotonic() - start < 0.5
    assert client._http is None  # no HTTP client was even created
    client.close()


def test_revoke(client: IntuitClient, fake: FakeIntuit) -> None:
    rt = fake.mint_chain(CLIENT_ID, REALM)
    at = client.refresh(CLIENT_ID, CLIENT_SECRET, rt).access_token
    expect_error(lambda: client.revoke(CLIENT_ID, "bad-secret-0123456789", rt), "invalid_client", rt)
    client.revoke(CLIENT_ID, CLIENT_SECRET, rt)
    sent = fake.requests[-1]
    assert sent.path == "/v2/oauth2/tokens/revoke" and sent.body_keys == ("token",)
    assert sent.headers["content-type"] == "application/json"
    expect_error(lambda: client.refresh(CLIENT_ID, CLIENT_SECRET, rt), "invalid_grant", rt)
    expect_error(lambda: client.company_info(at, REALM, "sandbox"), "token_rejected", at)


def consent(client: IntuitClient, redirect_uri: str = REDIRECT, state: str = "st-1") -> dict[str, str]:
    """Play the browser: open the consent URL and read the 302's Location."""
    import http.client

    url = urlsplit(client.authorize_url(CLIENT_ID, redirect_uri, state))
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        connection.request("GET", f"{url.path}?{url.query}")
        response = connection.getresponse()
        assert response.status == 302
        location = response.getheader("Location")
    finally:
        connection.close()
    assert location.startswith(redirect_uri + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_consent_and_code_exchange(client: IntuitClient, fake: FakeIntuit) -> None:
    params = consent(client)
    assert params["state"] == "st-1" and params["realmId"] == REALM
    code = params["code"]
    tokens = client.exchange_code(CLIENT_ID, CLIENT_SECRET, code, REDIRECT)
    assert tokens.refresh_expires_in == 8726400 and tokens.hard_expires_in == 157680000
    assert fake.current_refresh_token(CLIENT_ID, REALM) == tokens.refresh_token
    assert fake.requests[-1].body_keys == ("grant_type", "code", "redirect_uri")
    assert client.company_info(tokens.access_token, REALM, "sandbox").company_name == "Larry's Bakery"
    err = expect_error(lambda: client.exchange_code(CLIENT_ID, CLIENT_SECRET, code, REDIRECT), "invalid_grant", code)
    assert str(err).startswith("Intuit refused the authorization code")


def test_code_needs_the_same_redirect_uri_and_burns(client: IntuitClient, fake: FakeIntuit) -> None:
    code = consent(client)["code"]
    expect_error(
        lambda: client.exchange_code(CLIENT_ID, CLIENT_SECRET, code, DEFAULT_REDIRECT_URI), "invalid_grant", code
    )
    expect_error(lambda: client.exchange_code(CLIENT_ID, CLIENT_SECRET, code, REDIRECT), "invalid_grant", code)


def test_consent_realm_choice_and_denial(client: IntuitClient, fake: FakeIntuit) -> None:
    fake.consent_realm = OTHER_REALM
    code = consent(client)["code"]
    tokens = client.exchange_code(CLIENT_ID, CLIENT_SECRET, code, REDIRECT)
    assert client.company_info(tokens.access_token, OTHER_REALM, "sandbox").company_name == "Other Sandbox Co"
    fake.consent_deny = True
    assert consent(client, state="st-2") == {"error": "access_denied", "state": "st-2"}


def test_client_is_shared_across_threads(client: IntuitClient, fake: FakeIntuit) -> None:
    import threading

    rt = fake.mint_chain(CLIENT_ID, REALM)
    results: list[object] = []

    def work() -> None:
        try:
            results.append(client.refresh(CLIENT_ID, CLIENT_SECRET, rt).refresh_token)
        except IntuitError as exc:  # pragma: no cover - would fail the assertion below
            results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [rt] * 8 and fake.refresh_count == 8
