"""End to end: the refusals that have causes of their own (issue 13), through the real CLI against the fake Intuit.

Lost access (code 120, XML, JSON, and inside an HTTP 200), a lapsed subscription (6190), rate limits (a per-minute
429 with and without Retry-After, the monthly cap's ThrottleExceeded) and an untrusted certificate (a self-signed
HTTPS fake: refused without SSL_CERT_FILE, healthy with it). Each scenario runs all three formats, checks the one
cause, the facts support needs (intuit_tid, HTTP status, code), a schema-valid report and no secret in any output,
and that `.env` is left as it was.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from doctor.context import Context
from doctor.diagnosis import HEADLINES
from doctor.intuit.errors import IntuitError
from doctor.situations import which
from probes import realm_match
from tests.support.chain_support import (
    doctor_all_formats,
    metadata,
    probe,
    sandbox_world,
    statuses,
    utc_now,
    write_chain_env,
)
from tests.support.fake_intuit import FakeIntuit
from tests.support.homes import REALM_ID


def _world(fake: FakeIntuit, home: Path) -> Path:
    now = utc_now()
    token = sandbox_world(fake, issued_at=now - timedelta(hours=2))
    return write_chain_env(home, token, **metadata(refreshed_at=now - timedelta(hours=2)))


@pytest.mark.parametrize(("fault", "status"), [("120", None), ("120_json", None), ("120", 200)])
def test_qbo_access_denied(tmp_path, fake_intuit, fault, status):
    home = tmp_path / "home"
    _world(fake_intuit, home)
    fake_intuit.qbo_fault = fault
    fake_intuit.qbo_fault_status = status

    doc, text, prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "qbo_access_denied"
    assert doc["exit_code"] == 1
    assert doc["diagnosis"]["headline"] == HEADLINES["qbo_access_denied"]
    got = statuses(doc)
    assert got["refresh-chain"] == "ok"
    realm = probe(doc, "realm-match")
    assert realm["status"] == "fail"
    assert "no longer an administrator" in realm["summary"]
    assert realm["facts"]["error_code"] == "120"
    assert realm["facts"]["http_status"] == (status or 401)
    assert realm["facts"]["intuit_tid"]
    assert realm["facts"]["realm_id"] == REALM_ID
    # environment-match does not blame the environment for it.
    assert got["environment-match"] in ("ok", "warn")
    assert "sidequest reauth-qb" in text and "administrator" in text
    assert "current administrator" in prompt and "Manage users" in prompt


def test_subscription_lapsed(tmp_path, fake_intuit):
    home = tmp_path / "home"
    env_path = _world(fake_intuit, home)
    fake_intuit.qbo_fault = "6190"

    doc, text, prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "subscription_lapsed"
    assert doc["exit_code"] == 1
    realm = probe(doc, "realm-match")
    assert realm["status"] == "fail"
    assert "subscription" in realm["summary"]
    assert realm["facts"]["error_code"] == "6190"
    assert realm["facts"]["http_status"] == 400
    assert realm["facts"]["intuit_tid"]
    assert "Subscriptions and billing" in text
    assert "reauth-qb" not in " ".join(doc["diagnosis"]["fix"])
    assert "subscription" in prompt
    # The refresh worked; the file holds the chain's newest token and nothing else changed.
    assert "QB_REFRESH_TOKEN=" in env_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("retry_after", ["30", None])
def test_rate_limited_per_minute_at_the_token_endpoint(tmp_path, fake_intuit, retry_after):
    home = tmp_path / "home"
    env_path = _world(fake_intuit, home)
    before = env_path.read_bytes()
    fake_intuit.throttle = "per_minute"
    fake_intuit.retry_after = retry_after

    doc, text, prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "rate_limited"
    assert doc["exit_code"] == 1
    refresh = probe(doc, "refresh-chain")
    assert refresh["status"] == "fail"
    assert refresh["facts"]["http_status"] == 429
    assert refresh["facts"]["limit"] == "per_minute"
    assert refresh["facts"]["intuit_tid"]
    if retry_after:
        assert refresh["facts"]["retry_after_seconds"] == 30
        assert refresh["facts"]["retry_at"].endswith("Z")
        assert "in 30 seconds, after " in refresh["summary"]
        assert "in 30 seconds, after " in doc["diagnosis"]["fix"][0]
    else:
        assert "retry_after_seconds" not in refresh["facts"]
        assert "in a minute" in refresh["summary"]
    assert "check the internet" not in text.lower()
    assert "per-minute" in prompt
    assert env_path.read_bytes() == before


def test_rate_limited_by_the_monthly_cap(tmp_path, fake_intuit):
    home = tmp_path / "home"
    env_path = _world(fake_intuit, home)
    before = env_path.read_bytes()
    fake_intuit.throttle = "monthly_cap"

    doc, text, _prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "rate_limited"
    refresh = probe(doc, "refresh-chain")
    assert refresh["facts"]["limit"] == "monthly"
    assert refresh["facts"]["error_code"] == "3001"
    assert refresh["facts"]["http_status"] == 429
    assert "until next month" in refresh["summary"] and "Offline" in refresh["summary"]
    assert "SideQuest support" in text
    assert any("Offline" in step for step in doc["diagnosis"]["fix"])
    # Not retried: the allowance does not come back by asking again.
    assert fake_intuit.refresh_count == 0
    assert env_path.read_bytes() == before


def test_rate_limited_by_the_api_says_when(tmp_path):
    """A 429 from companyinfo (refresh fine): realm-match names the limit and the moment to retry."""
    from tests.probes.test_probe_situations import NOW, answered, context

    ctx: Context = answered(
        context(tmp_path, offline=False), IntuitError("rate_limited", status=429, retry_after=90, intuit_tid="1-abc")
    )
    name, finding = which(realm_match.SITUATIONS, realm_match._Reading(ctx))
    assert name == "lookup_failed"
    assert finding.cause == "rate_limited"
    assert finding.facts["retry_after_seconds"] == 90
    assert finding.facts["intuit_tid"] == "1-abc"
    assert f"after {NOW + timedelta(seconds=90):%H:%M:%S} UTC" in finding.summary


# ----------------------------------------------------------------------------- certificates


@pytest.fixture
def https_fake(certificate: tuple[Path, Path]):
    with FakeIntuit(tls=certificate) as fake:
        yield fake


def test_tls_untrusted_and_then_trusted_through_ssl_cert_file(tmp_path, https_fake, certificate, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    home = tmp_path / "home"
    env_path = _world(https_fake, home)
    before = env_path.read_bytes()
    # A proxy with credentials in its URL that the fake's host is exempt from: shown, without them.
    proxy = {"NO_PROXY": "127.0.0.1,localhost", "HTTPS_PROXY": "http://alice:pr0xyPass@proxy.example:8080"}

    doc, text, prompt = doctor_all_formats(home, https_fake, secrets=("pr0xyPass",), **proxy)

    assert doc["diagnosis"]["cause"] == "tls_untrusted"
    refresh = probe(doc, "refresh-chain")
    assert refresh["status"] == "fail"
    assert "certificate problem" in refresh["summary"] and "not the internet connection" in refresh["summary"]
    assert refresh["facts"]["error_kind"] == "certificate"
    assert refresh["facts"]["no_proxy"] == "127.0.0.1,localhost"
    assert refresh["facts"]["https_proxy"] == "http://proxy.example:8080"
    # The issuer of the certificate the server presented, read from it, in every format.
    assert refresh["facts"]["certificate_issuer"] == "Fake Intuit Test Root"
    assert "self" in refresh["facts"]["certificate_problem"].lower()  # OpenSSL's "self-signed certificate"
    assert "issued by “Fake Intuit Test Root”" in refresh["summary"]
    assert "Fake Intuit Test Root" in text and "Fake Intuit Test Root" in prompt
    assert "install" in text.lower() and "system" in text
    assert "SSL_CERT_FILE" in text and "SSL_CERT_FILE" in prompt
    assert "Never suggest turning certificate checking off" in prompt
    assert https_fake.refresh_count == 0
    assert env_path.read_bytes() == before

    trusted, _text, _prompt = doctor_all_formats(home, https_fake, SSL_CERT_FILE=str(certificate[0]), **proxy)
    assert trusted["diagnosis"]["cause"] == "healthy", [(p["id"], p["summary"]) for p in trusted["probes"]]


def test_proxy_facts_never_show_proxy_credentials(tmp_path):
    from doctor.token_chain import proxy_facts

    ctx = Context(tmp_path, None, environ={"HTTPS_PROXY": "http://alice:s3cretPass@proxy.example:8080"})
    assert proxy_facts(ctx) == {"https_proxy": "http://proxy.example:8080", "no_proxy": None}


# ----------------------------------------------------------------------------- headlines that said the wrong thing


@pytest.mark.parametrize(
    ("values", "says", "fix"),
    [
        ({"QB_ENVIRONMENT": "prod"}, "QB_ENVIRONMENT is 'prod'", "QB_ENVIRONMENT=production"),
        ({"QB_REALM_ID": "9130 3553 7737 1234"}, "has spaces in it", f"QB_REALM_ID={REALM_ID}"),
    ],
)
def test_a_wrong_value_is_named_not_called_not_set_up(tmp_path, fake_intuit, values, says, fix):
    home = tmp_path / "home"
    now = utc_now()
    token = sandbox_world(fake_intuit, issued_at=now - timedelta(hours=2))
    write_chain_env(home, token, **values)

    doc, text, prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "not_configured"
    headline = doc["diagnosis"]["headline"]
    assert "not set up" not in headline and "one setting is wrong" in headline
    assert says in headline
    assert any(fix in step for step in doc["diagnosis"]["fix"])
    assert text.startswith(headline)
    assert says in prompt


def test_a_six_hour_clock_skew_is_six_hours(tmp_path, fake_intuit):
    # Intuit's clock 6 hours ahead of this one: measured a few seconds short of 6 h, it still reads "6 hours".
    fake_intuit.now = lambda: utc_now() + timedelta(hours=6)
    home = tmp_path / "home"
    _world(fake_intuit, home)

    doc, text, _prompt = doctor_all_formats(home, fake_intuit)

    skew = probe(doc, "clock-skew")
    assert skew["status"] == "warn"
    assert "6 hours behind Intuit's" in skew["summary"], skew["summary"]
    assert "5 hours" not in text


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (500, b'{"error":"server_error"}', "a server error (HTTP 500, error code server_error)"),
        (502, b"<html><head><title>502 Bad Gateway</title></head></html>", "an error page (HTTP 502: 502 Bad Gateway)"),
        (200, b'{"access_token": "eyJ', "a cut-off answer (HTTP 200"),
    ],
)
def test_what_arrived_instead_of_a_token_is_said(tmp_path, status, body, says):
    """A 500 with a JSON body, an HTML error page and a truncated body each say what arrived."""
    from doctor.intuit.errors import classify_error_response
    from probes import refresh_chain
    from tests.probes.test_probe_situations import context

    ctx = context(tmp_path, offline=False)
    exc = classify_error_response(status, body, {}, api="token")
    refusal = refresh_chain._Refusal(ctx, exc, refresh_chain._ChainState(ctx))
    name, finding = which(refresh_chain.REFUSALS, refusal)
    assert name == "intuit_in_trouble" and finding.cause == "intuit_unavailable"
    assert says in finding.summary, finding.summary


def test_wrong_cluster_in_both_environments_is_unknown_with_the_code_shown(tmp_path, fake_intuit):
    """Code 130 everywhere: no environment answers, so it is not called a mismatch; the code is in the facts."""
    home = tmp_path / "home"
    _world(fake_intuit, home)
    fake_intuit.qbo_fault = "130"

    doc, text, _prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "unknown"
    env_match = probe(doc, "environment-match")
    assert env_match["status"] == "fail"
    assert env_match["facts"]["error_code"] == "130"
    assert env_match["facts"]["intuit_tid"]
    assert "130" in text


def test_the_certificate_issuer_is_named_when_the_error_carries_it(tmp_path):
    from doctor.token_chain import named_refusal

    exc = IntuitError("certificate", detail="unable to get local issuer certificate", retryable=False)
    exc.issuer = "Zscaler Root CA"
    finding = named_refusal(Context(tmp_path, None, environ={}), exc, "the company")
    assert finding.cause == "tls_untrusted"
    assert "issued by “Zscaler Root CA”" in finding.summary
    assert finding.facts["certificate_issuer"] == "Zscaler Root CA"


# ----------------------------------------------------------------------------- a wrong clock


@pytest.mark.parametrize("hours", [6, -3])
def test_a_skewed_clock_is_named_when_nothing_else_explains_invalid_grant(tmp_path, fake_intuit, hours):
    """invalid_grant with the environment, company and deadlines all fitting, and Intuit's Date header hours
    off: the clock is named as the likely reason and comes first in the fix; reconnecting is the fallback."""
    fake_intuit.now = lambda: utc_now() + timedelta(hours=hours)
    home = tmp_path / "home"
    env_path = _world(fake_intuit, home)
    before = env_path.read_bytes()
    fake_intuit.disconnect(REALM_ID)

    doc, text, prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "app_disconnected"
    direction = "behind" if hours > 0 else "ahead of"
    headline = doc["diagnosis"]["headline"]
    assert f"this computer's clock is {abs(hours)} hours {direction} Intuit's" in headline, headline
    assert "likely reason" in headline
    fix = doc["diagnosis"]["fix"]
    assert "automatic date and time" in fix[0] and "reauth-qb" in fix[1]
    refresh = probe(doc, "refresh-chain")
    assert refresh["status"] == "fail"
    assert refresh["facts"]["refused_because"] == "clock_skew"
    assert refresh["facts"]["error_kind"] == "invalid_grant" and refresh["facts"]["http_status"] == 400
    assert abs(refresh["facts"]["skew_seconds"] + hours * 3600) < 120
    assert refresh["facts"]["intuit_date"].endswith("Z")
    assert probe(doc, "clock-skew")["status"] == "warn"
    assert text.startswith(headline)
    assert "automatic date and time" in text
    assert "clock" in prompt and "Set the clock right first" in prompt
    assert env_path.read_bytes() == before


def test_a_right_clock_leaves_invalid_grant_to_disconnected_or_superseded(tmp_path, fake_intuit):
    """The same refusal with the clocks agreeing: no clock is blamed."""
    home = tmp_path / "home"
    _world(fake_intuit, home)
    fake_intuit.disconnect(REALM_ID)

    doc, text, _prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "app_disconnected"
    assert probe(doc, "refresh-chain")["facts"]["refused_because"] in ("disconnected", "superseded")
    assert "clock" not in doc["diagnosis"]["headline"] and "automatic date and time" not in text


def test_wrong_cluster_where_the_other_environment_answers_is_an_environment_mismatch(tmp_path, fake_intuit):
    """Code 130 "Accessing Wrong Cluster" in production while the sandbox answers: QB_ENVIRONMENT is wrong."""
    home = tmp_path / "home"
    now = utc_now()
    token = sandbox_world(fake_intuit, issued_at=now - timedelta(hours=2))
    # An older .env that does not record where the connection was made, set to production by mistake.
    values = metadata(refreshed_at=now - timedelta(hours=2))
    del values["QB_TOKEN_ENVIRONMENT"]
    env_path = write_chain_env(home, token, QB_ENVIRONMENT="production", **values)
    fake_intuit.qbo_fault = "130"
    fake_intuit.qbo_fault_environments = frozenset({"production"})

    doc, text, prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "environment_mismatch"
    assert doc["exit_code"] == 1
    env_match = probe(doc, "environment-match")
    assert env_match["status"] == "fail"
    assert env_match["facts"]["error_code"] == "130"
    assert env_match["facts"]["error_kind"] == "wrong_cluster"
    assert env_match["facts"]["intuit_tid"]
    assert env_match["facts"]["works_in"] == "sandbox"
    assert "accepts it in sandbox" in env_match["summary"]
    assert any("QB_ENVIRONMENT=sandbox" in step for step in doc["diagnosis"]["fix"]) or "QB_ENVIRONMENT" in text
    assert "sandbox" in prompt and "production" in prompt
    assert "QB_ENVIRONMENT=production" in env_path.read_text(encoding="utf-8")  # nothing changed it
