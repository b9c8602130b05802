"""Probe `environment-match`: is QB_ENVIRONMENT the kind of company the connection was made for?

Sandbox (test) and production (real books) companies live behind different QuickBooks
addresses, and a connection made for one is refused by the other with a "403 / 3100
ApplicationAuthorizationFailed" (or "130 wrong cluster") that says nothing about the
environment (INTUIT.md §3.3). The reliable test is the one support people do by hand: ask the
configured environment, and if it refuses, ask the other one; the one that answers is where
the connection belongs. Offline, the environment recorded at consent (QB_TOKEN_ENVIRONMENT)
gives the same verdict without asking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

from doctor.advice import (
    REAUTH,
    environment_invalid,
    environment_meant,
    environment_problem,
    environment_remediation,
    invalid_value,
    reauth_in,
    reauth_remediation,
)
from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe, Remediation
from doctor.situations import first_finding
from doctor.token_chain import (
    ENV_KINDS,
    ENVIRONMENTS,
    company_lookup,
    fresh_access_token,
    lookup_failure,
    other_environment,
    refusal_facts,
    why_not_refreshed,
)

if TYPE_CHECKING:  # pragma: no cover
    from doctor.intuit.errors import IntuitError
    from doctor.intuit.responses import CompanyInfo

    Lookup = Union[CompanyInfo, IntuitError]

KIND_OF_COMPANY = {"sandbox": "test (sandbox)", "production": "real (production)"}


def _mismatch(configured: str, works: str, facts: dict, details: list[str], summary: str) -> Finding:
    """The finding both the offline and the live check give, with the two ways out."""
    return Finding(
        "fail",
        summary,
        details=details
        + [
            f"Two ways to fix it: set QB_ENVIRONMENT={works} in .env to use the {KIND_OF_COMPANY[works]} company "
            f"the connection was made for, or run `{reauth_in(configured)}` to connect your "
            f"{KIND_OF_COMPANY[configured]} company instead.",
        ],
        facts={**facts, "works_in": works},
        cause="environment_mismatch",
        remediation=environment_remediation(works, configured),
    )


class _Reading:
    """QB_ENVIRONMENT as `.env` has it, and (once asked) QuickBooks' answers in each environment."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.raw = ctx.env("QB_ENVIRONMENT") or ""
        self.configured = self.raw.lower()
        self.other = other_environment(self.configured)
        self.token_environment = (ctx.env("QB_TOKEN_ENVIRONMENT") or "").lower() or None
        self.realm = ctx.env("QB_REALM_ID") or ""
        self.facts: dict[str, object] = {
            "environment": self.configured or None,
            "token_environment": self.token_environment,
        }
        self.access_token = fresh_access_token(ctx)
        self.here: IntuitError | None = None  # the refusal in the configured environment
        self.there: Lookup | None = None  # the answer in the other one
        self.details: list[str] = []


# -- what .env alone shows


def not_an_environment(r: _Reading) -> Finding | None:
    if r.configured in ENVIRONMENTS:
        return None
    meant = environment_meant(r.raw)
    return Finding(
        "fail",
        environment_invalid(r.raw),
        facts={**r.facts, "invalid_value": invalid_value("QB_ENVIRONMENT", environment_problem(r.raw))},
        cause="not_configured",
        remediation=Remediation(
            f"Set QB_ENVIRONMENT={meant} in .env."
            if meant
            else "Set QB_ENVIRONMENT=production (your real books) or QB_ENVIRONMENT=sandbox in .env."
        ),
    )


def minted_for_other_environment(r: _Reading) -> Finding | None:
    if r.token_environment not in ENVIRONMENTS or r.token_environment == r.configured:
        return None
    return _mismatch(
        r.configured,
        r.token_environment,
        r.facts,
        ["QB_TOKEN_ENVIRONMENT was recorded when the connection was made."],
        f"QB_ENVIRONMENT says {r.configured}, but the connection was made for a {r.token_environment} company.",
    )


# -- why QuickBooks cannot be asked


def offline(r: _Reading) -> Finding | None:
    if not r.ctx.offline:
        return None
    return Finding("ok", f"QB_ENVIRONMENT is {r.configured} (offline: not confirmed with QuickBooks).", facts=r.facts)


def cannot_ask(r: _Reading) -> Finding | None:
    if r.access_token is not None and r.realm.isascii() and r.realm.isdigit():
        return None
    why = "QB_REALM_ID is not usable (see realm-match)" if r.access_token is not None else why_not_refreshed(r.ctx)
    return Finding(
        "ok",
        f"QB_ENVIRONMENT is {r.configured}; QuickBooks could not be asked to confirm it because {why}.",
        facts=r.facts,
    )


# -- what QuickBooks says in the configured environment


def answers_here(r: _Reading) -> Finding | None:
    from doctor.intuit.errors import IntuitError

    here = company_lookup(r.ctx, r.access_token, r.realm, r.configured)
    if not isinstance(here, IntuitError):
        return Finding("ok", f"QuickBooks answers in {r.configured}, as QB_ENVIRONMENT says.", facts=r.facts)
    r.here = here
    r.facts.update(refusal_facts(here))
    return None


def only_the_company_is_wrong(r: _Reading) -> Finding | None:
    # QuickBooks got as far as checking the company, so the environment is right.
    if r.here.kind != "wrong_realm":
        return None
    return Finding(
        "ok",
        f"QuickBooks accepts the connection in {r.configured}; the company ID is realm-match's finding.",
        facts=r.facts,
    )


def lookup_failed_here(r: _Reading) -> Finding | None:
    if r.here.kind in ENV_KINDS:
        return None
    if "realm-match" in r.ctx.results:
        return Finding(
            "warn",
            f"Could not confirm {r.configured}: QuickBooks' lookup failed; see realm-match.",
            details=[f"QuickBooks' answer: {r.here}."],
            facts=r.facts,
        )
    return lookup_failure(r.ctx, r.here, f"the {r.configured} company", r.facts)


# -- refused here: what the other environment says


def works_there(r: _Reading) -> Finding | None:
    from doctor.intuit.errors import IntuitError

    r.there = company_lookup(r.ctx, r.access_token, r.realm, r.other)
    r.details = [f"QuickBooks' answer in {r.configured}: {r.here}."]
    if isinstance(r.there, IntuitError):
        r.facts["other_error_kind"] = r.there.kind
        r.details.append(f"QuickBooks' answer in {r.other}: {r.there}.")
        return None
    name = f" (“{r.there.company_name}”)" if r.there.company_name else ""
    return _mismatch(
        r.configured,
        r.other,
        {**r.facts, "company_name": r.there.company_name},
        r.details + [f"The same connection works in {r.other}{name}."],
        f"QB_ENVIRONMENT says {r.configured}, but the connection belongs to a {r.other} company{name}: "
        f"QuickBooks refuses it in {r.configured} and accepts it in {r.other}.",
    )


def accepted_there_up_to_the_company(r: _Reading) -> Finding | None:
    # Accepted in the other environment as far as the company check: the connection lives there.
    if r.there.kind != "wrong_realm":
        return None
    return _mismatch(
        r.configured,
        r.other,
        r.facts,
        r.details + ["There, only the company ID (QB_REALM_ID) is wrong as well."],
        f"QB_ENVIRONMENT says {r.configured}, but QuickBooks only accepts the connection in {r.other}.",
    )


def refused_in_both(r: _Reading) -> Finding | None:
    if r.there.kind not in ENV_KINDS:
        return None
    return Finding(
        "fail",
        "QuickBooks refuses the connection in both sandbox and production; the SideQuest app may lack "
        "permission to read your books.",
        details=r.details,
        facts=r.facts,
        cause="unknown",
        remediation=reauth_remediation(f"Run `{REAUTH}` and allow access to your accounting data."),
    )


def other_lookup_failed(r: _Reading) -> Finding:
    return Finding(
        "warn",
        f"QuickBooks refuses the connection in {r.configured}, and asking {r.other} failed, so the environment "
        "could not be confirmed.",
        details=r.details,
        facts=r.facts,
    )


# Tried in order; the first finding is the verdict (doctor/situations.py).
SITUATIONS = (
    not_an_environment,
    minted_for_other_environment,
    offline,
    cannot_ask,
    answers_here,
    only_the_company_is_wrong,
    lookup_failed_here,
    works_there,
    accepted_there_up_to_the_company,
    refused_in_both,
    other_lookup_failed,
)


def check(ctx: Context) -> Finding:
    return first_finding(SITUATIONS, _Reading(ctx))


PROBE = Probe(
    id="environment-match",
    title="Sandbox or production",
    category="token",
    run=check,
    depends_on=("env-file",),
    # Ordering only: reuse refresh-chain's access token and realm-match's lookup of the
    # configured environment rather than asking QuickBooks twice.
    runs_after=("refresh-chain", "realm-match"),
    timeout=12.0,
)


@hookimpl
def sidequest_probes():
    return [PROBE]
