"""The token-chain probes in-process: token-age's reading of dates, refresh-chain's verdicts on
each refusal, the shared company lookup, and the clock check — against real files in tmp_path
and the fake Intuit on 127.0.0.1, through `doctor.session.execute` as the CLI runs them.

A fixed clock is injected where the verdict depends on "how many days are left", so the
boundaries (14 days, expiry, an estimate past its date) are tested exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from doctor.context import Context
from doctor.intuit.client import IntuitClient
from doctor.plugins import build_plugins
from doctor.session import execute
from doctor.store.token_store import TokenStore
from doctor.token_chain import expiry_status
from probes import refresh_chain
from tests.support.chain_support import (
    OTHER_REALM_ID,
    issued_secrets,
    metadata,
    sandbox_world,
    stamp,
    utc_now,
    write_chain_env,
)
from tests.support.fake_intuit import FakeIntuit
from tests.support.homes import CLIENT_ID, CLIENT_SECRET, REALM_ID, REPO

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
UNKNOWN_TOKEN = "RT1-39-H3-1700000000neverissuedbythefake0"


def make_context(tmp_path: Path, home: Path, fake=None, *, offline: bool = False, clock=None, lock_wait: float = 2.0):
    return Context(
        home,
        tmp_path / "no-claude-config.json",
        environ=fake.environ() if fake is not None else {},
        offline=offline,
        clock=clock or utc_now,
        lock_wait=lock_wait,
    )


def run(ctx: Context, *, only=(), skip=()):
    plugins = build_plugins(ctx.environ, load_entry_points=False)
    try:
        return execute(ctx, plugins, only=only, skip=skip, timeout=20)
    finally:
        ctx.close()


def result(doctor_run, probe_id: str):
    found = doctor_run.report.result(probe_id)
    assert found is not None, f"{probe_id} did not run"
    return found


def assert_facts_secret_free(doctor_run, secrets: list[str]) -> None:
    text = json.dumps([r.facts for r in doctor_run.report.results]) + json.dumps(doctor_run.report.notes)
    for secret in secrets:
        assert secret not in text


# ----------------------------------------------------------------------------- token-age


@pytest.mark.parametrize(
    ("extra", "status", "basis", "days_left"),
    [
        ({"QB_REFRESH_TOKEN_EXPIRES_AT": stamp(NOW + timedelta(days=40))}, "ok", "recorded_expiry", 40),
        ({"QB_REFRESH_TOKEN_EXPIRES_AT": stamp(NOW + timedelta(days=14))}, "warn", "recorded_expiry", 14),
        ({"QB_REFRESH_TOKEN_EXPIRES_AT": stamp(NOW + timedelta(days=15))}, "ok", "recorded_expiry", 15),
        ({"QB_REFRESH_TOKEN_EXPIRES_AT": stamp(NOW - timedelta(seconds=1))}, "fail", "recorded_expiry", -1),
        ({"QB_TOKEN_REFRESHED_AT": stamp(NOW - timedelta(days=90))}, "warn", "last_refresh", 10),
        ({"QB_TOKEN_REFRESHED_AT": stamp(NOW - timedelta(days=20))}, "ok", "last_refresh", 80),
        (
            {
                "QB_REFRESH_TOKEN_EXPIRES_AT": stamp(NOW + timedelta(days=90)),
                "QB_REFRESH_TOKEN_HARD_EXPIRES_AT": stamp(NOW + timedelta(days=5)),
            },
            "warn",
            "recorded_expiry",
            5,
        ),
        (
            {
                "QB_REFRESH_TOKEN_EXPIRES_AT": stamp(NOW + timedelta(days=90)),
                "QB_REFRESH_TOKEN_HARD_EXPIRES_AT": stamp(NOW - timedelta(days=1)),
            },
            "fail",
            "recorded_expiry",
            -1,
        ),
    ],
)
def test_token_age_reads_recorded_dates(tmp_path, extra, status, basis, days_left):
    home = tmp_path / "home"
    write_chain_env(home, UNKNOWN_TOKEN, **extra)
    doctor_run = run(make_context(tmp_path, home, offline=True, clock=lambda: NOW), only=["token-age"])
    age = result(doctor_run, "token-age")
    assert age.status == status, age.summary
    assert age.facts["basis"] == basis
    assert age.facts["days_left"] == days_left
    if status == "fail":
        assert age.cause == "refresh_token_expired"
        assert doctor_run.report.diagnosis.cause == "refresh_token_expired"
    if "QB_REFRESH_TOKEN_HARD_EXPIRES_AT" in extra:
        assert "five-year" in age.summary
    else:
        assert any("five-year limit is unknown" in d for d in age.details)


@pytest.mark.parametrize(
    ("age_days", "status", "phrase"),
    [(30, "ok", "estimated"), (95, "warn", "estimated"), (130, "warn", "probably expired")],
)
def test_token_age_estimates_a_legacy_file_from_its_date_and_never_fails_on_it(tmp_path, age_days, status, phrase):
    home = tmp_path / "home"
    write_chain_env(home, UNKNOWN_TOKEN, modified=NOW - timedelta(days=age_days))
    doctor_run = run(make_context(tmp_path, home, offline=True, clock=lambda: NOW), only=["token-age"])
    age = result(doctor_run, "token-age")
    assert age.status == status
    assert phrase in age.summary
    assert age.facts["basis"] == "file_date_estimate"
    assert age.facts["estimated"] is True
    assert age.facts["rolling_expires_at"] == stamp(NOW - timedelta(days=age_days) + timedelta(days=100))
    assert doctor_run.report.diagnosis.cause == "healthy"
    if age_days == 130:
        assert "without --offline" in age.remediation.text


def test_expiry_status_ignores_an_unreadable_date_and_says_so(tmp_path):
    home = tmp_path / "home"
    write_chain_env(
        home,
        UNKNOWN_TOKEN,
        QB_REFRESH_TOKEN_EXPIRES_AT="next tuesday",
        QB_TOKEN_REFRESHED_AT=stamp(NOW - timedelta(days=1)),
    )
    ctx = make_context(tmp_path, home, offline=True, clock=lambda: NOW)
    status = expiry_status(ctx)
    assert status.basis == "last_refresh"
    assert status.rolling_expires_at == NOW - timedelta(days=1) + timedelta(days=100)
    assert any("QB_REFRESH_TOKEN_EXPIRES_AT" in note for note in status.notes)


# ----------------------------------------------------------------------------- refresh-chain


def test_refresh_hands_the_access_token_on_and_records_the_rotation(tmp_path, fake_intuit):
    now = utc_now()
    first = sandbox_world(fake_intuit, issued_at=now - timedelta(hours=30))
    home = tmp_path / "home"
    write_chain_env(home, first, **metadata(refreshed_at=now - timedelta(hours=30)))
    ctx = make_context(tmp_path, home, fake_intuit)

    doctor_run = run(ctx)

    refresh = result(doctor_run, "refresh-chain")
    assert refresh.status == "ok"
    current = fake_intuit.current_refresh_token(CLIENT_ID, REALM_ID)
    assert refresh.facts["rotated"] is True
    assert refresh.facts["refresh_token"] == f"RT…{current[-4:]}"
    assert refresh.facts["previous_refresh_token"] == f"RT…{first[-4:]}"
    assert f"RT…{current[-4:]}" in refresh.summary and "new token" in refresh.summary
    assert doctor_run.report.notes == [refresh.summary]
    assert ctx.run_facts.access_token
    assert fake_intuit.refresh_count == 1
    # token-age waited for the refresh and reports Intuit's fresh deadline, not the old one.
    age = result(doctor_run, "token-age")
    assert age.facts["basis"] == "refreshed_in_this_run"
    assert age.facts["days_left"] >= 99
    assert result(doctor_run, "clock-skew").status == "ok"
    assert_facts_secret_free(doctor_run, issued_secrets(fake_intuit))


def test_a_token_superseded_elsewhere_soon_after_a_refresh_is_named_as_such(tmp_path, fake_intuit):
    now = utc_now()
    saved = sandbox_world(fake_intuit, issued_at=now - timedelta(hours=30))
    # Another program (an old connector, Claude's own copy) refreshes, rotates, keeps the new token.
    with IntuitClient(environ=fake_intuit.environ(), timeout=5) as elsewhere:
        assert elsewhere.refresh(CLIENT_ID, CLIENT_SECRET, saved).refresh_token != saved
    home = tmp_path / "home"
    write_chain_env(home, saved, **metadata(refreshed_at=now - timedelta(hours=2)))

    doctor_run = run(make_context(tmp_path, home, fake_intuit))

    refresh = result(doctor_run, "refresh-chain")
    assert refresh.status == "fail"
    assert refresh.cause == doctor_run.report.diagnosis.cause == "app_disconnected"
    assert refresh.facts["refused_because"] == "superseded"
    assert "newer token that was not saved is likelier" in refresh.summary
    assert any("refreshed successfully 2 h ago" in d for d in refresh.details)


@pytest.mark.parametrize(
    ("extra", "cause"),
    [
        ({"QB_TOKEN_ENVIRONMENT": "production", "QB_TOKEN_REALM_ID": REALM_ID}, "environment_mismatch"),
        ({"QB_TOKEN_ENVIRONMENT": "sandbox", "QB_TOKEN_REALM_ID": OTHER_REALM_ID}, "realm_mismatch"),
    ],
)
def test_a_refused_chain_minted_elsewhere_is_named_by_where_it_was_minted(tmp_path, fake_intuit, extra, cause):
    sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, UNKNOWN_TOKEN, QB_TOKEN_REFRESHED_AT=stamp(utc_now() - timedelta(days=3)), **extra)

    doctor_run = run(make_context(tmp_path, home, fake_intuit))

    refresh = result(doctor_run, "refresh-chain")
    assert refresh.status == "fail"
    assert refresh.cause == cause
    assert refresh.facts["refused_because"] == cause
    assert doctor_run.report.diagnosis.cause == cause


def test_a_cut_off_token_answer_is_intuits_trouble_and_warns_about_a_lost_rotation(tmp_path, fake_intuit):
    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, token)
    fake_intuit.fail_mode = "truncated"

    doctor_run = run(make_context(tmp_path, home, fake_intuit))

    refresh = result(doctor_run, "refresh-chain")
    assert refresh.status == "fail"
    assert refresh.cause == "intuit_unavailable"
    assert refresh.facts["error_kind"] == "bad_response"
    assert any("cut off" in d for d in refresh.details)


def test_lock_held_by_another_program_names_it(tmp_path, fake_intuit):
    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, token)
    holder = TokenStore(home, command="sidequest refresh-qb")
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.locked(wait=5):
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        assert taken.wait(5)
        # refresh-chain's own verdict, for a lock taken after lock-health found it free.
        ctx = make_context(tmp_path, home, fake_intuit, lock_wait=0.2)
        ctx.load_env()
        finding = refresh_chain.check(ctx)
        assert finding.status == "fail"
        assert finding.cause == "lock_problem"
        assert "sidequest refresh-qb" in finding.summary and f"pid {os.getpid()}" in finding.summary
        # A whole run: lock-health reports the holder and refresh-chain does not refresh (§9a).
        doctor_run = run(make_context(tmp_path, home, fake_intuit, lock_wait=0.2))
        refresh = result(doctor_run, "refresh-chain")
        assert refresh.status == "skip"
        assert refresh.blocked_by == "lock-health"
        assert doctor_run.report.diagnosis.cause == "lock_problem"
    finally:
        release.set()
        thread.join(5)
    assert fake_intuit.requests == []


def test_clock_skew_is_reported_from_intuits_date_header(tmp_path, fake_intuit):
    fake_intuit.now = lambda: datetime.now(timezone.utc) + timedelta(hours=3)
    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, token)

    doctor_run = run(make_context(tmp_path, home, fake_intuit))

    skew = result(doctor_run, "clock-skew")
    assert skew.status == "warn"
    assert "3 hours behind Intuit's" in skew.summary or "2 hours behind Intuit's" in skew.summary
    assert skew.facts["skew_seconds"] < -3 * 3600 + 120
    assert doctor_run.report.diagnosis.cause == "healthy"


def test_clock_skew_on_an_unexplained_refusal_is_named_as_its_likely_reason(tmp_path, fake_intuit):
    fake_intuit.now = lambda: datetime.now(timezone.utc) - timedelta(days=3)
    sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, UNKNOWN_TOKEN)

    doctor_run = run(make_context(tmp_path, home, fake_intuit))

    refresh = result(doctor_run, "refresh-chain")
    assert refresh.cause == "app_disconnected"
    assert refresh.facts["refused_because"] == "clock_skew"
    assert "clock is 3 days ahead of Intuit's" in refresh.summary and "likely reason" in refresh.summary
    assert doctor_run.report.diagnosis.headline == refresh.summary
    assert refresh.remediation is not None and "automatic date and time" in refresh.remediation.text


def test_clock_skew_stays_a_detail_when_the_refusal_has_its_own_explanation(tmp_path, fake_intuit):
    """An expired chain is expired whatever the clock: the deadline is the verdict, the skew a detail."""
    fake_intuit.now = lambda: datetime.now(timezone.utc) - timedelta(days=3)
    sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, UNKNOWN_TOKEN, QB_REFRESH_TOKEN_EXPIRES_AT="2020-01-01T00:00:00Z")

    doctor_run = run(make_context(tmp_path, home, fake_intuit))

    refresh = result(doctor_run, "refresh-chain")
    assert refresh.cause == "refresh_token_expired"
    assert any("3 days ahead of Intuit's" in d for d in refresh.details)


# ----------------------------------------------------------------------------- realm and environment


def test_offline_realm_and_environment_checks(tmp_path):
    home = tmp_path / "home"
    write_chain_env(home, UNKNOWN_TOKEN, QB_REALM_ID="Larry's Bakery")
    doctor_run = run(make_context(tmp_path, home, offline=True), only=["realm-match"])
    realm = result(doctor_run, "realm-match")
    assert (realm.status, realm.cause) == ("fail", "not_configured")
    assert "Larry" not in realm.summary  # the value is not echoed, only what is wrong with it

    write_chain_env(home, UNKNOWN_TOKEN, QB_TOKEN_REALM_ID=OTHER_REALM_ID, QB_TOKEN_ENVIRONMENT="production")
    doctor_run = run(make_context(tmp_path, home, offline=True), only=["realm-match", "environment-match"])
    realm = result(doctor_run, "realm-match")
    assert (realm.status, realm.cause) == ("fail", "realm_mismatch")
    assert OTHER_REALM_ID in realm.summary and REALM_ID in realm.summary
    environment = result(doctor_run, "environment-match")
    assert (environment.status, environment.cause) == ("fail", "environment_mismatch")
    assert "sandbox" in environment.summary and "production" in environment.summary
    assert any("QB_ENVIRONMENT=production" in d and "--environment sandbox" in d for d in environment.details)
    # Both fail; the contract's order makes the environment the root cause.
    assert doctor_run.report.diagnosis.cause == "environment_mismatch"


def test_company_is_asked_once_per_environment(tmp_path, fake_intuit):
    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, token, QB_ENVIRONMENT="production")

    doctor_run = run(make_context(tmp_path, home, fake_intuit))

    assert doctor_run.report.diagnosis.cause == "environment_mismatch"
    lookups = [r.path.split("/")[1] for r in fake_intuit.requests if "/companyinfo/" in r.path]
    assert sorted(lookups) == ["prod", "sandbox"]


def test_live_company_check_without_a_refresh_says_it_could_not_run(tmp_path, fake_intuit):
    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, token)

    doctor_run = run(make_context(tmp_path, home, fake_intuit), skip=["refresh-chain"])

    realm = result(doctor_run, "realm-match")
    assert realm.status == "ok"
    assert "could not be asked" in realm.summary and "refresh-chain did not run" in realm.summary
    assert "could not be asked" in result(doctor_run, "environment-match").summary
    assert fake_intuit.requests == []


def test_chain_probes_do_not_import_the_http_client_or_jinja(tmp_path):
    code = (
        "import sys; import probes.token_age, probes.refresh_chain, probes.realm_match, probes.environment_match; "
        "bad = {'httpx', 'jinja2'} & set(sys.modules); assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


class CompanyInfoGate(FakeIntuit):
    """The fake Intuit, holding each companyinfo answer until a second companyinfo request arrives.

    Two lookups sent together meet at the gate at once; sent one after the other, the first
    waits out the gate's limit alone and the gate breaks. `met` records, per lookup, whether it
    met the other one in flight: a count of overlapping requests, not a timing.
    """

    def __init__(self, wait: float = 5.0) -> None:
        super().__init__()
        self.gate = threading.Barrier(2, timeout=wait)
        self.met: list[bool] = []

    def _companyinfo(self, *args):
        try:
            self.gate.wait()
            self.met.append(True)
        except threading.BrokenBarrierError:
            self.met.append(False)
        return super()._companyinfo(*args)


def test_a_wrong_environment_asks_both_environments_at_once(tmp_path):
    # Legacy .env (no QB_TOKEN_ENVIRONMENT) with a sandbox connection and QB_ENVIRONMENT=production:
    # both lookups need only the fresh access token, so they go out together: 2 round trips, not 3.
    with CompanyInfoGate() as fake:
        token = sandbox_world(fake)
        home = tmp_path / "home"
        write_chain_env(home, token, QB_ENVIRONMENT="production")

        doctor_run = run(make_context(tmp_path, home, fake))

        assert doctor_run.report.diagnosis.cause == "environment_mismatch"
        environment = result(doctor_run, "environment-match")
        assert environment.facts["works_in"] == "sandbox"
        paths = [r.path for r in fake.requests]
        assert sum("/companyinfo/" in p for p in paths) == 2  # still once per environment
        assert paths[0].endswith("/tokens/bearer")  # the lookups wait for the refresh's access token
        assert fake.met == [True, True], "the two company lookups were sent one after the other"


def test_a_recorded_environment_asks_only_that_one(tmp_path, fake_intuit):
    # The healthy run with sidequest's metadata keeps its two requests: nothing is asked speculatively.
    now = utc_now()
    token = sandbox_world(fake_intuit, issued_at=now - timedelta(hours=30))
    home = tmp_path / "home"
    write_chain_env(home, token, **metadata(refreshed_at=now - timedelta(hours=30)))

    doctor_run = run(make_context(tmp_path, home, fake_intuit))

    assert doctor_run.report.diagnosis.cause == "healthy"
    lookups = [r.path.split("/")[1] for r in fake_intuit.requests if "/companyinfo/" in r.path]
    assert lookups == ["sandbox"]
    assert len(fake_intuit.requests) == 2
