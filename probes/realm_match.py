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

from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe, Remediation
from doctor.token_chain import ENV_KINDS, company_lookup, fresh_access_token, lookup_failure, why_not_refreshed

REAUTH = "sidequest reauth-qb"


def check(ctx: Context) -> Finding:
    realm = ctx.env("QB_REALM_ID") or ""
    token_realm = ctx.env("QB_TOKEN_REALM_ID")
    environment = (ctx.env("QB_ENVIRONMENT") or "").lower()
    facts: dict[str, object] = {"realm_id": realm or None, "token_realm_id": token_realm, "environment": environment}

    if not realm:
        return Finding(
            "fail",
            "QB_REALM_ID (the QuickBooks company ID) is missing from .env.",
            facts=facts,
            cause="not_configured",
            remediation=Remediation(f"Run `{REAUTH}`; it saves the company ID for you.", (REAUTH,)),
        )
    if not (realm.isascii() and realm.isdigit()):
        return Finding(
            "fail",
            "QB_REALM_ID in .env is not a QuickBooks company ID: it must be digits only "
            f"({len(realm)} characters found, not all digits).",
            details=["A company name, spaces or quotes pasted into the value give this."],
            facts=facts,
            cause="not_configured",
            remediation=Remediation(f"Run `{REAUTH}`; it saves the right company ID for you.", (REAUTH,)),
        )
    if token_realm and token_realm != realm:
        return Finding(
            "fail",
            f"QB_REALM_ID is {realm}, but the saved connection was made for company {token_realm}.",
            details=["The connection only works for the company it was made for."],
            facts=facts,
            cause="realm_mismatch",
            remediation=Remediation(
                f"Set QB_REALM_ID={token_realm} in .env again, or run `{REAUTH}` and pick company {realm}.",
                (REAUTH,),
            ),
        )

    if ctx.offline:
        return Finding("ok", f"QB_REALM_ID {realm} looks right (offline: not confirmed with QuickBooks).", facts=facts)
    access_token = fresh_access_token(ctx)
    if access_token is None:
        return Finding(
            "ok",
            f"QB_REALM_ID {realm} looks right; QuickBooks could not be asked to confirm it because "
            f"{why_not_refreshed(ctx)}.",
            facts=facts,
        )
    if environment not in ("sandbox", "production"):
        return Finding(
            "ok", f"QB_REALM_ID {realm} looks right; the environment is environment-match's finding.", facts=facts
        )

    outcome = company_lookup(ctx, access_token, realm, environment)
    from doctor.intuit.client import IntuitError

    if not isinstance(outcome, IntuitError):
        facts["company_name"] = outcome.company_name
        facts["intuit_tid"] = outcome.intuit_tid
        name = f"“{outcome.company_name}”" if outcome.company_name else "the company"
        return Finding("ok", f"QuickBooks confirms {name} (company {realm}) in {environment}.", facts=facts)
    facts.update({"error_kind": outcome.kind, "http_status": outcome.status, "intuit_tid": outcome.intuit_tid})
    if outcome.kind == "wrong_realm":
        made_for = f" (it was made for company {token_realm})" if token_realm else ""
        return Finding(
            "fail",
            f"QuickBooks says the just-renewed connection does not belong to company {realm} (QB_REALM_ID){made_for}.",
            details=[
                f"QuickBooks' answer: {outcome}.",
                "The connection works only for the company chosen when it was made; QB_REALM_ID names another one.",
            ],
            facts=facts,
            cause="realm_mismatch",
            remediation=Remediation(
                f"Run `{REAUTH}` and pick the company you use; it saves that company's ID.", (REAUTH,)
            ),
        )
    if outcome.kind in ENV_KINDS:
        return Finding(
            "warn",
            f"Could not confirm company {realm}: QuickBooks refused the connection in {environment}; "
            "see environment-match.",
            details=[f"QuickBooks' answer: {outcome}."],
            facts=facts,
        )
    return lookup_failure(outcome, f"company {realm}")


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
