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

from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe, Remediation
from doctor.token_chain import (
    ENV_KINDS,
    ENVIRONMENTS,
    company_lookup,
    fresh_access_token,
    lookup_failure,
    other_environment,
    why_not_refreshed,
)

REAUTH = "sidequest reauth-qb"
KIND_OF_COMPANY = {"sandbox": "test (sandbox)", "production": "real (production)"}


def _mismatch(configured: str, works: str, facts: dict, details: list[str], summary: str) -> Finding:
    """The finding both the offline and the live check give, with the two ways out."""
    return Finding(
        "fail",
        summary,
        details=details
        + [
            f"Two ways to fix it: set QB_ENVIRONMENT={works} in .env to use the {KIND_OF_COMPANY[works]} company "
            f"the connection was made for, or run `{REAUTH} --environment {configured}` to connect your "
            f"{KIND_OF_COMPANY[configured]} company instead.",
        ],
        facts={**facts, "works_in": works},
        cause="environment_mismatch",
        remediation=Remediation(
            f"Set QB_ENVIRONMENT={works} in .env, or run `{REAUTH} --environment {configured}`.",
            (f"{REAUTH} --environment {configured}",),
        ),
    )


def check(ctx: Context) -> Finding:
    raw = ctx.env("QB_ENVIRONMENT") or ""
    configured = raw.lower()
    token_environment = (ctx.env("QB_TOKEN_ENVIRONMENT") or "").lower() or None
    facts: dict[str, object] = {"environment": configured or None, "token_environment": token_environment}

    if configured not in ENVIRONMENTS:
        return Finding(
            "fail",
            f"QB_ENVIRONMENT is {raw!r}; it must be 'sandbox' or 'production'.",
            facts=facts,
            cause="not_configured",
            remediation=Remediation(
                "Set QB_ENVIRONMENT=production (your real books) or QB_ENVIRONMENT=sandbox in .env."
            ),
        )
    if token_environment in ENVIRONMENTS and token_environment != configured:
        return _mismatch(
            configured,
            token_environment,
            facts,
            ["QB_TOKEN_ENVIRONMENT was recorded when the connection was made."],
            f"QB_ENVIRONMENT says {configured}, but the connection was made for a {token_environment} company.",
        )

    if ctx.offline:
        return Finding("ok", f"QB_ENVIRONMENT is {configured} (offline: not confirmed with QuickBooks).", facts=facts)
    access_token = fresh_access_token(ctx)
    realm = ctx.env("QB_REALM_ID") or ""
    if access_token is None or not (realm.isascii() and realm.isdigit()):
        why = "QB_REALM_ID is not usable (see realm-match)" if access_token is not None else why_not_refreshed(ctx)
        return Finding(
            "ok",
            f"QB_ENVIRONMENT is {configured}; QuickBooks could not be asked to confirm it because {why}.",
            facts=facts,
        )

    from doctor.intuit.client import IntuitError

    here = company_lookup(ctx, access_token, realm, configured)
    if not isinstance(here, IntuitError):
        return Finding("ok", f"QuickBooks answers in {configured}, as QB_ENVIRONMENT says.", facts=facts)
    facts.update({"error_kind": here.kind, "http_status": here.status, "intuit_tid": here.intuit_tid})
    if here.kind == "wrong_realm":
        # QuickBooks got as far as checking the company, so the environment is right.
        return Finding(
            "ok",
            f"QuickBooks accepts the connection in {configured}; the company ID is realm-match's finding.",
            facts=facts,
        )
    if here.kind not in ENV_KINDS:
        if "realm-match" in ctx.results:
            return Finding(
                "warn",
                f"Could not confirm {configured}: QuickBooks' lookup failed; see realm-match.",
                details=[f"QuickBooks' answer: {here}."],
                facts=facts,
            )
        return lookup_failure(here, f"the {configured} company")

    other = other_environment(configured)
    there = company_lookup(ctx, access_token, realm, other)
    details = [f"QuickBooks' answer in {configured}: {here}."]
    if not isinstance(there, IntuitError):
        name = f" (“{there.company_name}”)" if there.company_name else ""
        return _mismatch(
            configured,
            other,
            {**facts, "company_name": there.company_name},
            details + [f"The same connection works in {other}{name}."],
            f"QB_ENVIRONMENT says {configured}, but the connection belongs to a {other} company{name}: "
            f"QuickBooks refuses it in {configured} and accepts it in {other}.",
        )
    facts["other_error_kind"] = there.kind
    details.append(f"QuickBooks' answer in {other}: {there}.")
    if there.kind == "wrong_realm":
        # Accepted in the other environment as far as the company check: the connection lives there.
        return _mismatch(
            configured,
            other,
            facts,
            details + ["There, only the company ID (QB_REALM_ID) is wrong as well."],
            f"QB_ENVIRONMENT says {configured}, but QuickBooks only accepts the connection in {other}.",
        )
    if there.kind in ENV_KINDS:
        return Finding(
            "fail",
            "QuickBooks refuses the connection in both sandbox and production; the SideQuest app may lack "
            "permission to read your books.",
            details=details,
            facts=facts,
            cause="unknown",
            remediation=Remediation(f"Run `{REAUTH}` and allow access to your accounting data.", (REAUTH,)),
        )
    return Finding(
        "warn",
        f"QuickBooks refuses the connection in {configured}, and asking {other} failed, so the environment could "
        "not be confirmed.",
        details=details,
        facts=facts,
    )


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
