"""Probe `realm-match`: is QB_REALM_ID the company the saved connection belongs to?

A refresh token is bound to one company (realm) at consent, but nothing stops a person from
pasting another company's ID into `.env`. Intuit then accepts the refresh and refuses every
API call with a bare "General Authentication Error" (401 code 100, INTUIT.md §3.3) — which
reads like an expired login. This probe checks what it can offline (the ID's shape, the realm
recorded at consent) and, when refresh-chain left a fresh access token, asks QuickBooks for
the company itself. The company lookup (doctor/token_chain.py) is shared with
environment-match, so one run asks QuickBooks at most once per environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

from doctor.advice import REAUTH, invalid_value, reauth_remediation
from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe
from doctor.situations import first_finding
from doctor.token_chain import (
    ENV_KINDS,
    ENVIRONMENTS,
    company_lookup,
    fresh_access_token,
    lookup_failure,
    refusal_facts,
    why_not_refreshed,
)

if TYPE_CHECKING:  # pragma: no cover
    from doctor.intuit.errors import IntuitError
    from doctor.intuit.responses import CompanyInfo

    Lookup = Union[CompanyInfo, IntuitError]


class _Reading:
    """The company ID as `.env` has it, and (once asked) QuickBooks' answer about it."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.realm = ctx.env("QB_REALM_ID") or ""
        self.token_realm = ctx.env("QB_TOKEN_REALM_ID")
        self.environment = (ctx.env("QB_ENVIRONMENT") or "").lower()
        self.facts: dict[str, object] = {
            "realm_id": self.realm or None,
            "token_realm_id": self.token_realm,
            "environment": self.environment,
        }
        self.access_token = fresh_access_token(ctx)
        self.answer: Lookup | None = None  # set by ask_quickbooks
        self.refused: IntuitError | None = None


# -- what .env alone shows


def realm_missing(r: _Reading) -> Finding | None:
    if r.realm:
        return None
    return Finding(
        "fail",
        "QB_REALM_ID (the QuickBooks company ID) is missing from .env.",
        facts=r.facts,
        cause="not_configured",
        remediation=reauth_remediation(f"Run `{REAUTH}`; it saves the company ID for you."),
    )


def realm_not_digits(r: _Reading) -> Finding | None:
    if r.realm.isascii() and r.realm.isdigit():
        return None
    problem, digits = realm_problem(r.realm)
    fix = (
        f"Set QB_REALM_ID={digits} in .env (digits only), or run `{REAUTH}`; it saves the right company ID for you."
        if digits
        else f"Run `{REAUTH}`; it saves the right company ID for you."
    )
    return Finding(
        "fail",
        f"QB_REALM_ID in .env is not a QuickBooks company ID: it {problem}.",
        details=["A company name, spaces or quotes pasted into the value give this."],
        facts={**r.facts, "invalid_value": invalid_value("QB_REALM_ID", f"QB_REALM_ID (the company ID) {problem}")},
        cause="not_configured",
        remediation=reauth_remediation(fix),
    )


def realm_problem(realm: str) -> tuple[str, str | None]:
    """(what is wrong with a company ID that is not all digits, the digits it holds when only separators are extra)."""
    digits = "".join(ch for ch in realm if ch.isascii() and ch.isdigit())
    separators = set(realm) - set("0123456789")
    if separators and separators <= set(" \t-'\""):
        what = "spaces" if separators <= {" ", "\t"} else "spaces, dashes or quotes"
        return f"has {what} in it; a company ID is digits only", digits or None
    return f"must be digits only ({len(realm)} characters found, not all digits)", None


def minted_for_other_company(r: _Reading) -> Finding | None:
    if not r.token_realm or r.token_realm == r.realm:
        return None
    return Finding(
        "fail",
        f"QB_REALM_ID is {r.realm}, but the saved connection was made for company {r.token_realm}.",
        details=["The connection only works for the company it was made for."],
        facts=r.facts,
        cause="realm_mismatch",
        remediation=reauth_remediation(
            f"Set QB_REALM_ID={r.token_realm} in .env again, or run `{REAUTH}` and pick company {r.realm}."
        ),
    )


# -- why QuickBooks cannot be asked


def offline(r: _Reading) -> Finding | None:
    if not r.ctx.offline:
        return None
    return Finding("ok", f"QB_REALM_ID {r.realm} looks right (offline: not confirmed with QuickBooks).", facts=r.facts)


def no_fresh_access_token(r: _Reading) -> Finding | None:
    if r.access_token is not None:
        return None
    return Finding(
        "ok",
        f"QB_REALM_ID {r.realm} looks right; QuickBooks could not be asked to confirm it because "
        f"{why_not_refreshed(r.ctx)}.",
        facts=r.facts,
    )


def environment_unknown(r: _Reading) -> Finding | None:
    if r.environment in ENVIRONMENTS:
        return None
    return Finding(
        "ok", f"QB_REALM_ID {r.realm} looks right; the environment is environment-match's finding.", facts=r.facts
    )


# -- what QuickBooks says


def ask_quickbooks(r: _Reading) -> None:
    """Asks for the company (once per run, shared with environment-match); never decides."""
    from doctor.intuit.errors import IntuitError

    r.answer = company_lookup(r.ctx, r.access_token, r.realm, r.environment)
    if isinstance(r.answer, IntuitError):
        r.refused = r.answer
        r.facts.update(refusal_facts(r.refused))


def confirmed(r: _Reading) -> Finding | None:
    if r.refused is not None:
        return None
    r.facts["company_name"] = r.answer.company_name
    r.facts["intuit_tid"] = r.answer.intuit_tid
    name = f"“{r.answer.company_name}”" if r.answer.company_name else "the company"
    return Finding("ok", f"QuickBooks confirms {name} (company {r.realm}) in {r.environment}.", facts=r.facts)


def another_company(r: _Reading) -> Finding | None:
    if r.refused.kind != "wrong_realm":
        return None
    made_for = f" (it was made for company {r.token_realm})" if r.token_realm else ""
    return Finding(
        "fail",
        f"QuickBooks says the just-renewed connection does not belong to company {r.realm} (QB_REALM_ID){made_for}.",
        details=[
            f"QuickBooks' answer: {r.refused}.",
            "The connection works only for the company chosen when it was made; QB_REALM_ID names another one.",
        ],
        facts=r.facts,
        cause="realm_mismatch",
        remediation=reauth_remediation(f"Run `{REAUTH}` and pick the company you use; it saves that company's ID."),
    )


def refused_in_this_environment(r: _Reading) -> Finding | None:
    if r.refused.kind not in ENV_KINDS:
        return None
    return Finding(
        "warn",
        f"Could not confirm company {r.realm}: QuickBooks refused the connection in {r.environment}; "
        "see environment-match.",
        details=[f"QuickBooks' answer: {r.refused}."],
        facts=r.facts,
    )


def lookup_failed(r: _Reading) -> Finding:
    return lookup_failure(r.ctx, r.refused, f"company {r.realm}", r.facts)


# Tried in order; the first finding is the verdict (doctor/situations.py).
SITUATIONS = (
    realm_missing,
    realm_not_digits,
    minted_for_other_company,
    offline,
    no_fresh_access_token,
    environment_unknown,
    ask_quickbooks,
    confirmed,
    another_company,
    refused_in_this_environment,
    lookup_failed,
)


def check(ctx: Context) -> Finding:
    return first_finding(SITUATIONS, _Reading(ctx))


PROBE = Probe(
    id="realm-match",
    title="QuickBooks company (realm ID)",
    category="token",
    run=check,
    depends_on=("env-file",),
    # Ordering only: the live check uses the access token of refresh-chain's refresh, and
    # still runs its offline checks when that refresh failed.
    runs_after=("refresh-chain",),
    timeout=12.0,
)


@hookimpl
def sidequest_probes():
    return [PROBE]
