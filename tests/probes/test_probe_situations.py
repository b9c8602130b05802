"""Each named situation of the token-chain probes, on its own and in-process.

The probes' checks are tuples of small situations tried in order (doctor/situations.py). Here
each deciding situation gets the `.env` (a real file in tmp_path) and, for the live ones, the
run facts a refresh and QuickBooks' answers would have left (real RefreshResult, CompanyInfo
and IntuitError values), and the test checks that exactly that situation decides. The Intuit
addresses point at a closed port on 127.0.0.1, so a lookup nobody prepared fails at once
instead of leaving the machine. The end-to-end paths through the fake Intuit are in
test_probes_chain.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from doctor.context import Context
from doctor.intuit.errors import IntuitError
from doctor.intuit.responses import CompanyInfo
from doctor.situations import which
from doctor.store.token_store import RefreshResult
from probes import environment_match, realm_match, refresh_chain, token_age
from tests.support.chain_support import OTHER_REALM_ID, stamp, write_chain_env
from tests.support.homes import REALM_ID

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
TOKEN = "RT1-39-H3-1700000000neverissuedbythefake0"
ACCESS_TOKEN = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0..fresh-access-token-for-tests"
NOWHERE = "http://127.0.0.1:9"
NOWHERE_ENVIRON = {
    "SIDEQUEST_OAUTH_TOKEN_URL": NOWHERE + "/oauth2/v1/tokens/bearer",
    "SIDEQUEST_QBO_URL_PRODUCTION": NOWHERE,
    "SIDEQUEST_QBO_URL_SANDBOX": NOWHERE,
}
COMPANY = CompanyInfo("Larry's Bakery", REALM_ID, "US", "tid-1", NOW)


def context(tmp_path: Path, *, offline: bool = True, env_file: bool = True, **values: str) -> Context:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    if env_file:
        write_chain_env(home, TOKEN, **values)
    ctx = Context(home, None, environ=NOWHERE_ENVIRON, offline=offline, clock=lambda: NOW)
    ctx.load_env()
    return ctx


def refreshed(ctx: Context) -> Context:
    ctx.run_facts.record_refresh(
        RefreshResult(
            access_token=ACCESS_TOKEN,
            refresh_token=TOKEN,
            rotated=False,
            previous_refresh_token=TOKEN,
            refreshed_at=NOW,
            expires_at=NOW + timedelta(days=101),
            hard_expires_at=None,
            intuit_tid=None,
            attempts=1,
        )
    )
    return ctx


def answered(ctx: Context, sandbox, production=None) -> Context:
    """QuickBooks' answers in each environment, as this run's lookups would have left them."""
    refreshed(ctx)
    ctx.run_facts.company_lookup("sandbox", REALM_ID, lambda: sandbox)
    other = production if production is not None else IntuitError("wrong_environment", status=403)
    ctx.run_facts.company_lookup("production", REALM_ID, lambda: other)
    return ctx


def decided_by(probe, ctx: Context) -> str:
    name, finding = which(probe.SITUATIONS, probe._Reading(ctx))
    assert finding.summary == probe.check(ctx).summary
    return name


def deciding_names(situations) -> set[str]:
    # Situations annotated `-> None` only take notes; every other one can decide.
    return {s.__name__ for s in situations if s.__annotations__.get("return") != "None"}


# ----------------------------------------------------------------------------- token-age

TOKEN_AGE = {
    "estimate_past_its_date": lambda p: context(p, modified=NOW - timedelta(days=130)),
    "expired": lambda p: context(p, QB_REFRESH_TOKEN_EXPIRES_AT=stamp(NOW - timedelta(hours=1))),
    "ends_within_two_weeks": lambda p: context(p, QB_REFRESH_TOKEN_EXPIRES_AT=stamp(NOW + timedelta(days=10))),
    "no_deadline_known": lambda p: context(p, env_file=False),
    "good_until": lambda p: context(p, QB_REFRESH_TOKEN_EXPIRES_AT=stamp(NOW + timedelta(days=40))),
}


@pytest.mark.parametrize("situation", sorted(TOKEN_AGE))
def test_token_age_situation(tmp_path, situation) -> None:
    assert decided_by(token_age, TOKEN_AGE[situation](tmp_path)) == situation


def test_token_age_situations_are_all_tested() -> None:
    assert deciding_names(token_age.SITUATIONS) == set(TOKEN_AGE)


def test_token_age_reads_intuits_fresh_dates_after_a_refresh(tmp_path) -> None:
    ctx = refreshed(context(tmp_path, QB_REFRESH_TOKEN_EXPIRES_AT=stamp(NOW - timedelta(hours=1))))
    reading = token_age._Reading(ctx)
    token_age.where_the_dates_come_from(reading)
    assert reading.facts["basis"] == "refreshed_in_this_run"
    assert "These dates come from Intuit's answer to the refresh the doctor just made." in reading.details
    assert decided_by(token_age, ctx) == "good_until"


# ----------------------------------------------------------------------------- refresh-chain's refusals

REFUSALS = {
    "minted_for_other_environment": ("invalid_grant", {"QB_TOKEN_ENVIRONMENT": "production"}),
    "minted_for_other_company": ("invalid_grant", {"QB_TOKEN_REALM_ID": OTHER_REALM_ID}),
    "past_a_deadline": ("invalid_grant", {"QB_REFRESH_TOKEN_EXPIRES_AT": stamp(NOW - timedelta(days=2))}),
    "clock_off": ("invalid_grant", {"QB_TOKEN_REFRESHED_AT": stamp(NOW - timedelta(hours=2))}),
    "disconnected_or_superseded": ("invalid_grant", {"QB_TOKEN_REFRESHED_AT": stamp(NOW - timedelta(hours=2))}),
    "app_keys_refused": ("invalid_client", {}),
    "refusal_with_a_name": ("rate_limited", {}),
    "intuit_unreachable": ("network", {}),
    "intuit_in_trouble": ("server_error", {}),
    "insecure_token_url": ("insecure_url", {}),
    "other_refusal": ("invalid_request", {}),
}


@pytest.mark.parametrize("situation", sorted(REFUSALS))
def test_refresh_chain_refusal(tmp_path, situation) -> None:
    kind, values = REFUSALS[situation]
    ctx = context(tmp_path, offline=False, **values)
    # Intuit's Date header 6 hours ahead of this computer's clock only where the clock is the point.
    server_date = NOW + timedelta(hours=6) if situation == "clock_off" else None
    exc = IntuitError(kind, status=400, server_date=server_date)
    refusal = refresh_chain._Refusal(ctx, exc, refresh_chain._ChainState(ctx))
    name, finding = which(refresh_chain.REFUSALS, refusal)
    assert name == situation, finding.summary
    assert finding.status == "fail" and finding.cause
    assert finding.facts["error_kind"] == kind


def test_refresh_chain_refusals_are_all_tested() -> None:
    assert deciding_names(refresh_chain.REFUSALS) == set(REFUSALS)


# ----------------------------------------------------------------------------- realm-match

REALM = {
    "realm_missing": lambda p: context(p, QB_REALM_ID=""),
    "realm_not_digits": lambda p: context(p, QB_REALM_ID="Larry's Bakery"),
    "minted_for_other_company": lambda p: context(p, QB_TOKEN_REALM_ID=OTHER_REALM_ID),
    "offline": lambda p: context(p),
    "no_fresh_access_token": lambda p: context(p, offline=False),
    "environment_unknown": lambda p: refreshed(context(p, offline=False, QB_ENVIRONMENT="staging")),
    "confirmed": lambda p: answered(context(p, offline=False), COMPANY),
    "another_company": lambda p: answered(context(p, offline=False), IntuitError("wrong_realm", status=401)),
    "refused_in_this_environment": lambda p: answered(
        context(p, offline=False), IntuitError("wrong_environment", status=403)
    ),
    "lookup_failed": lambda p: answered(context(p, offline=False), IntuitError("server_error", status=500)),
}


@pytest.mark.parametrize("situation", sorted(REALM))
def test_realm_match_situation(tmp_path, situation) -> None:
    assert decided_by(realm_match, REALM[situation](tmp_path)) == situation


def test_realm_match_situations_are_all_tested() -> None:
    assert deciding_names(realm_match.SITUATIONS) == set(REALM)


# ----------------------------------------------------------------------------- environment-match

WRONG_ENV = IntuitError("wrong_environment", status=403)
ENVIRONMENT = {
    "not_an_environment": lambda p: context(p, QB_ENVIRONMENT="staging"),
    "minted_for_other_environment": lambda p: context(p, QB_TOKEN_ENVIRONMENT="production"),
    "offline": lambda p: context(p),
    "cannot_ask": lambda p: context(p, offline=False),
    "answers_here": lambda p: answered(context(p, offline=False), COMPANY),
    "only_the_company_is_wrong": lambda p: answered(context(p, offline=False), IntuitError("wrong_realm", status=401)),
    "lookup_failed_here": lambda p: answered(context(p, offline=False), IntuitError("server_error", status=500)),
    "works_there": lambda p: answered(context(p, offline=False), WRONG_ENV, COMPANY),
    "accepted_there_up_to_the_company": lambda p: answered(
        context(p, offline=False), WRONG_ENV, IntuitError("wrong_realm", status=401)
    ),
    "refused_in_both": lambda p: answered(context(p, offline=False), WRONG_ENV, IntuitError("wrong_cluster")),
    "other_lookup_failed": lambda p: answered(context(p, offline=False), WRONG_ENV, IntuitError("network")),
}


@pytest.mark.parametrize("situation", sorted(ENVIRONMENT))
def test_environment_match_situation(tmp_path, situation) -> None:
    assert decided_by(environment_match, ENVIRONMENT[situation](tmp_path)) == situation


def test_environment_match_situations_are_all_tested() -> None:
    assert deciding_names(environment_match.SITUATIONS) == set(ENVIRONMENT)
