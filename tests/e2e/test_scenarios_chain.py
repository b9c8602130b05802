"""End to end: `sidequest doctor` in a subprocess against the fake Intuit, one scenario per cause.

Each scenario builds the world a user would be in (a chain of a given age, a disconnected app,
keys of the wrong kind, Intuit down), runs the real CLI in all three formats and checks what a
person would rely on: the one cause, the exit code, the key probes, a schema-valid JSON report
and not one secret in any output. Failing scenarios leave `.env` untouched, so repeating the
live run reproduces the cause; the healthy one is checked to keep the chain intact.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tests.support.chain_support import (
    OTHER_REALM_ID,
    OWNER_LINES,
    assert_no_secret,
    closed_port,
    doctor,
    doctor_all_formats,
    issued_secrets,
    metadata,
    owner_lines,
    probe,
    sandbox_world,
    statuses,
    utc_now,
    write_chain_env,
)
from tests.support.homes import CLIENT_ID, REALM_ID
from tests.support.schema_check import assert_valid_report


def test_healthy_refreshes_once_and_keeps_the_chain(tmp_path, fake_intuit):
    now = utc_now()
    # Issued 30 h ago: the doctor's refresh rotates it, which is when chains get lost.
    first = sandbox_world(fake_intuit, issued_at=now - timedelta(hours=30))
    home = tmp_path / "home"
    env_path = write_chain_env(home, first, **metadata(refreshed_at=now - timedelta(hours=30)))
    before_owner = owner_lines(env_path)

    doc, text, prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "healthy"
    assert doc["exit_code"] == 0
    got = statuses(doc)
    for probe_id in ("env-file", "token-age", "refresh-chain", "realm-match", "environment-match"):
        assert got[probe_id] == "ok", (probe_id, probe(doc, probe_id)["summary"])
    # Three live runs, one refresh each, never more.
    assert fake_intuit.refresh_count == 3
    current = fake_intuit.current_refresh_token(CLIENT_ID, REALM_ID)
    assert current != first
    assert f"QB_REFRESH_TOKEN={current}" in env_path.read_text(encoding="utf-8").splitlines()
    assert owner_lines(env_path) == before_owner
    assert OWNER_LINES in env_path.read_text(encoding="utf-8")
    # The first run rotated; it says so, with the redacted new token, in its note.
    refresh = probe(doc, "refresh-chain")
    assert "once through the locked token store" in refresh["summary"]
    assert "chain is intact" in refresh["summary"]
    assert any("once through the locked token store" in note for note in doc["notes"])
    assert refresh["facts"]["intuit_tid"]
    assert "Larry's Bakery" in probe(doc, "realm-match")["summary"]
    # Said once in the text: the run's note is refresh-chain's own line, not repeated under "Note:".
    assert text.count("once through the locked token store") == 1 and "Note:" not in text
    assert "once through the locked token store" in prompt
    assert f"RT…{current[-4:]}" in text


def test_expired_with_metadata_names_the_100_day_limit(tmp_path, fake_intuit):
    now = utc_now()
    long_ago = now - timedelta(days=106)
    token = sandbox_world(fake_intuit, issued_at=long_ago, last_used_at=long_ago)
    home = tmp_path / "home"
    env_path = write_chain_env(home, token, **metadata(refreshed_at=long_ago))
    before = env_path.read_bytes()

    doc, text, _prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "refresh_token_expired"
    assert doc["exit_code"] == 1
    assert statuses(doc)["token-age"] == "fail"
    refresh = probe(doc, "refresh-chain")
    assert refresh["status"] == "fail"
    assert "100-day" in refresh["summary"]
    assert refresh["facts"]["refused_because"] == "idle_limit"
    assert env_path.read_bytes() == before
    assert "sidequest reauth-qb" in text


def test_expired_legacy_file_is_estimated_then_confirmed_live(tmp_path, fake_intuit):
    now = utc_now()
    long_ago = now - timedelta(days=120)
    token = sandbox_world(fake_intuit, issued_at=long_ago, last_used_at=long_ago)
    home = tmp_path / "home"
    write_chain_env(home, token, modified=long_ago)

    doc, _text, _prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "refresh_token_expired"
    assert doc["exit_code"] == 1
    age = probe(doc, "token-age")
    # An estimate alone never fails: it warns and leaves the verdict to the live check.
    assert age["status"] == "warn"
    assert age["facts"]["basis"] == "file_date_estimate"
    assert "probably expired" in age["summary"]
    refresh = probe(doc, "refresh-chain")
    assert refresh["status"] == "fail"
    assert "estimated" in refresh["summary"]

    offline = doctor(home, fake_intuit, "--offline")
    assert offline.returncode == 0, "an estimate alone must not fail the offline run"
    assert probe(offline.json(), "token-age")["status"] == "warn"


def test_expired_by_the_five_year_cap(tmp_path, fake_intuit):
    now = utc_now()
    token = sandbox_world(
        fake_intuit,
        issued_at=now - timedelta(days=1830),
        last_used_at=now - timedelta(days=3),
        hard_expires_at=now - timedelta(days=1),
    )
    home = tmp_path / "home"
    write_chain_env(
        home,
        token,
        **metadata(
            refreshed_at=now - timedelta(days=3),
            expires_at=now + timedelta(days=98),
            hard_expires_at=now - timedelta(days=1),
        ),
    )

    doc, _text, _prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "refresh_token_expired"
    assert doc["exit_code"] == 1
    refresh = probe(doc, "refresh-chain")
    assert refresh["facts"]["refused_because"] == "hard_cap"
    assert "five-year" in refresh["summary"]
    assert "five-year" in probe(doc, "token-age")["summary"]


def test_app_disconnected_in_quickbooks(tmp_path, fake_intuit):
    now = utc_now()
    token = sandbox_world(fake_intuit, issued_at=now - timedelta(days=3))
    fake_intuit.disconnect(REALM_ID)
    home = tmp_path / "home"
    write_chain_env(home, token, **metadata(refreshed_at=now - timedelta(days=3)))

    doc, text, _prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "app_disconnected"
    assert doc["exit_code"] == 1
    refresh = probe(doc, "refresh-chain")
    assert refresh["status"] == "fail"
    assert refresh["facts"]["refused_because"] == "disconnected"
    assert "disconnected in QuickBooks is likelier" in refresh["summary"]
    assert statuses(doc)["token-age"] == "ok"
    assert "sidequest reauth-qb" in text


def test_environment_mismatch_from_metadata(tmp_path, fake_intuit):
    now = utc_now()
    token = sandbox_world(fake_intuit, issued_at=now - timedelta(hours=2))
    home = tmp_path / "home"
    write_chain_env(
        home,
        token,
        QB_ENVIRONMENT="production",
        **metadata(refreshed_at=now - timedelta(hours=2), environment="sandbox"),
    )

    doc, text, _prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "environment_mismatch"
    assert doc["exit_code"] == 1
    env_match = probe(doc, "environment-match")
    assert env_match["status"] == "fail"
    assert "production" in env_match["summary"] and "sandbox" in env_match["summary"]
    assert "sidequest reauth-qb --environment production" in text

    offline = doctor(home, fake_intuit, "--offline")
    assert offline.returncode == 1
    assert offline.json()["diagnosis"]["cause"] == "environment_mismatch"


def test_environment_mismatch_found_live_without_metadata(tmp_path, fake_intuit):
    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, token, QB_ENVIRONMENT="production")

    doc, text, _prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "environment_mismatch"
    assert doc["exit_code"] == 1
    got = statuses(doc)
    assert got["refresh-chain"] == "ok"
    assert got["realm-match"] == "warn"
    env_match = probe(doc, "environment-match")
    assert env_match["status"] == "fail"
    assert env_match["facts"]["works_in"] == "sandbox"
    assert "QB_ENVIRONMENT=sandbox" in text
    assert "sidequest reauth-qb --environment production" in text
    # Offline there is nothing to go on: no metadata, no network.
    offline = doctor(home, fake_intuit, "--offline")
    assert probe(offline.json(), "environment-match")["status"] == "ok"


def test_realm_mismatch(tmp_path, fake_intuit):
    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, token, QB_REALM_ID=OTHER_REALM_ID)

    doc, _text, _prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "realm_mismatch"
    assert doc["exit_code"] == 1
    got = statuses(doc)
    assert got["refresh-chain"] == "ok"
    assert got["realm-match"] == "fail"
    assert got["environment-match"] == "ok"
    assert OTHER_REALM_ID in probe(doc, "realm-match")["summary"]


def test_invalid_client(tmp_path, fake_intuit):
    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    wrong_secret = "wRoNgSeCrEt0123456789abcdefghijABCDEF99"
    write_chain_env(home, token, QB_CLIENT_SECRET=wrong_secret)

    doc, _text, _prompt = doctor_all_formats(home, fake_intuit, secrets=(wrong_secret,))

    assert doc["diagnosis"]["cause"] == "invalid_client"
    assert doc["exit_code"] == 1
    refresh = probe(doc, "refresh-chain")
    assert refresh["status"] == "fail"
    assert any("Development keys" in line for line in refresh["details"])


def test_network_unreachable_closed_port(tmp_path, fake_intuit):
    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, token)
    port = closed_port()

    doc, _text, _prompt = doctor_all_formats(
        home, fake_intuit, SIDEQUEST_OAUTH_TOKEN_URL=f"http://127.0.0.1:{port}/oauth2/v1/tokens/bearer"
    )

    assert doc["diagnosis"]["cause"] == "network_unreachable"
    assert doc["exit_code"] == 1
    assert statuses(doc)["refresh-chain"] == "fail"
    assert fake_intuit.requests == []


def test_network_unreachable_server_never_answers(tmp_path, fake_intuit):
    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, token)
    fake_intuit.fail_mode = "hang"
    # The smallest budget that still proves the point: the local probes take milliseconds, so
    # the refresh is running (or not yet started) when the budget ends; both are a timeout.
    budget = 1.0
    bound = budget + 4  # start-up and teardown of the child, with room for a loaded machine

    started = time.monotonic()
    result = doctor(home, fake_intuit, "--timeout", str(budget), fmt="json")
    elapsed = time.monotonic() - started

    assert elapsed < bound, f"the doctor took {elapsed:.1f} s with --timeout {budget}"
    assert result.returncode == 1
    doc = result.json()
    assert_valid_report(doc)
    assert doc["diagnosis"]["cause"] == "network_unreachable"
    assert statuses(doc)["refresh-chain"] == "timeout"
    secrets = issued_secrets(fake_intuit)
    assert_no_secret(result.stdout + result.stderr, secrets)
    # The other formats, also live: the same hang, the same answer, within the same bound.
    for fmt in ("text", "prompt"):
        started = time.monotonic()
        other = doctor(home, fake_intuit, "--timeout", str(budget), fmt=fmt)
        assert time.monotonic() - started < bound
        assert other.returncode == 1
        assert_no_secret(other.stdout + other.stderr, secrets)


@pytest.mark.parametrize("mode", ["503", "html_502"])
def test_intuit_unavailable(tmp_path, fake_intuit, mode):
    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    env_path = write_chain_env(home, token)
    before = env_path.read_bytes()
    fake_intuit.fail_mode = mode

    doc, _text, _prompt = doctor_all_formats(home, fake_intuit)

    assert doc["diagnosis"]["cause"] == "intuit_unavailable"
    assert doc["exit_code"] == 1
    assert statuses(doc)["refresh-chain"] == "fail"
    assert env_path.read_bytes() == before


def test_offline_sends_nothing_and_skips_network_probes(tmp_path, fake_intuit):
    now = utc_now()
    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, token, **metadata(refreshed_at=now - timedelta(days=2)))

    doc, _text, _prompt = doctor_all_formats(home, fake_intuit, "--offline")

    assert fake_intuit.requests == []
    assert doc["mode"] == "offline"
    assert doc["diagnosis"]["cause"] == "healthy"
    got = statuses(doc)
    assert got["refresh-chain"] == "skip"
    assert got["token-age"] == "ok"
    assert got["realm-match"] == "ok"
    assert got["environment-match"] == "ok"
    assert "offline" in probe(doc, "realm-match")["summary"]
