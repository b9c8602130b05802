"""Probe `refresh-chain`: does Intuit still accept the saved connection? One real refresh says.

Only a refresh proves the chain is alive, and a refresh can rotate the token, so it is done
exactly once per run, through the same locked token store the connector uses: the new token
is in `.env` before the lock is released and the chain stays intact (DESIGN.md §5, §9a).
The result (and its fresh access token) is a typed fact of the run (`ctx.run_facts.refresh`),
which token-age, realm-match and environment-match read.

Intuit answers every dead chain with the same `invalid_grant` (INTUIT.md §3.1), so this
module tells the situations apart from what this computer knows: the recorded (or estimated)
deadlines, where the chain was minted, and when `.env` was last refreshed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from doctor.advice import (
    CLOCK_THEN_REAUTH,
    DOCTOR,
    FIX,
    LOCK_WAIT,
    REAUTH,
    SET_CLOCK,
    environment_remediation,
    reauth_in,
    reauth_remediation,
)
from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe, Remediation
from doctor.redaction import redacted_form
from doctor.situations import first_finding
from doctor.store.timestamps import format_timestamp, parse_timestamp
from doctor.token_chain import (
    LIMIT_HARD,
    clock_skew,
    clock_skew_line,
    describe_limit,
    expiry_status,
    named_refusal,
    record_server_date,
    skew_words,
)

if TYPE_CHECKING:  # pragma: no cover
    from doctor.intuit.errors import IntuitError
    from doctor.store.token_store import RefreshResult

# Intuit replaces the refresh token every 24-26 h (INTUIT.md §2.3).
ROTATION_WINDOW = timedelta(hours=26)


def check(ctx: Context) -> Finding:
    from doctor.intuit.errors import IntuitError
    from doctor.store.token_store import LockTimeout, StoreError

    # Read before refreshing: the verdict on a refusal rests on the state that was refused.
    before = _ChainState(ctx)
    try:
        result = ctx.token_store.refresh(wait=ctx.lock_wait)
    except LockTimeout as exc:
        holder = exc.holder.describe(ctx.now()) if exc.holder is not None else "a process that left no owner record"
        return Finding(
            "fail",
            f"Did not refresh: another program holds SideQuest's token file ({holder}).",
            details=[f"Waited {exc.waited:.1f} s for the lock on {ctx.home / '.env.lock'}."],
            facts={**before.facts(), "lock_holder": holder},
            cause="lock_problem",
            remediation=Remediation(
                f"{LOCK_WAIT}; if the holder is no longer running, `{FIX}` clears the lock.",
                (FIX,),
            ),
        )
    except StoreError as exc:
        return _store_failure(exc, before)
    except IntuitError as exc:
        record_server_date(ctx, exc.server_date, "refresh")
        return _intuit_failure(ctx, exc, before)

    ctx.run_facts.record_refresh(result)
    return _success(ctx, result)


class _ChainState:
    """What this computer knew about the chain before the refresh (no secret values)."""

    def __init__(self, ctx: Context) -> None:
        self.expiry = expiry_status(ctx)
        self.environment = (ctx.env("QB_ENVIRONMENT") or "").lower() or None
        self.token_environment = (ctx.env("QB_TOKEN_ENVIRONMENT") or "").lower() or None
        self.realm_id = ctx.env("QB_REALM_ID")
        self.token_realm_id = ctx.env("QB_TOKEN_REALM_ID")
        self.refreshed_at = parse_timestamp(ctx.env("QB_TOKEN_REFRESHED_AT"))
        token = ctx.env("QB_REFRESH_TOKEN")
        self.token = redacted_form("refresh_token", token) if token else None
        self.now = ctx.now()

    def facts(self) -> dict[str, object]:
        return {
            "refresh_token": self.token,
            "rolling_expires_at": self.expiry.facts()["rolling_expires_at"],
            "hard_expires_at": self.expiry.facts()["hard_expires_at"],
            "expiry_basis": self.expiry.basis,
        }


def _success(ctx: Context, result: RefreshResult) -> Finding:
    token = redacted_form("refresh_token", result.refresh_token)
    if result.rotated:
        change = f"Intuit issued a new token ({token}) and .env now holds it"
    else:
        change = f"Intuit kept the same token ({token})"
    sentence = (
        f"Refreshed the QuickBooks connection once through the locked token store; {change}, so the chain is intact."
    )
    ctx.add_note(sentence)
    details = []
    if result.expires_at is not None:
        details.append(f"Intuit extended the 100-day limit to {result.expires_at:%Y-%m-%d}.")
    if result.attempts > 1:
        details.append("The first attempt hit a passing network or Intuit hiccup; the retry worked.")
    return Finding(
        "ok",
        sentence,
        details=details,
        facts={
            "refresh_token": token,
            "rotated": result.rotated,
            "previous_refresh_token": redacted_form("refresh_token", result.previous_refresh_token),
            "refreshed_at": format_timestamp(result.refreshed_at),
            "rolling_expires_at": format_timestamp(result.expires_at) if result.expires_at else None,
            "hard_expires_at": format_timestamp(result.hard_expires_at) if result.hard_expires_at else None,
            "intuit_tid": result.intuit_tid,
            "attempts": result.attempts,
        },
    )


def _store_failure(exc: Exception, before: _ChainState) -> Finding:
    reason = getattr(exc, "reason", "")
    if reason == "write_failed":
        # Intuit answered, but the answer could not be saved: if the token rotated, the
        # saved one is now stale. Saying so plainly is the only help left.
        return Finding(
            "fail",
            f"QuickBooks answered, but the new token could not be saved: {exc}.",
            details=[
                "If Intuit issued a new token, the one in .env no longer works.",
                f"Fix what stops writing to the folder (disk full, permissions), then run `{DOCTOR}` again; "
                f"if it says the connection was disconnected, run `{REAUTH}`.",
            ],
            facts=before.facts(),
            cause="unknown",
        )
    cause = "lock_problem" if reason == "lock_failed" else "not_configured"
    return Finding("fail", f"Could not refresh: {exc}.", facts=before.facts(), cause=cause)


class _Refusal:
    """Intuit's refusal of this run's refresh, with what this computer knew before it."""

    def __init__(self, ctx: Context, exc: IntuitError, before: _ChainState) -> None:
        self.ctx = ctx
        self.exc = exc
        self.before = before
        self.facts = {
            **before.facts(),
            "error_kind": exc.kind,
            "http_status": exc.status,
            "error_code": exc.code,
            "intuit_tid": exc.intuit_tid,
        }
        self.details = [f"Intuit's answer: {exc}."]
        skew = clock_skew_line(exc.server_date, ctx.now())
        if skew:
            self.details.append(skew)

    @property
    def grant_refused(self) -> bool:
        return self.exc.kind == "invalid_grant"


def _intuit_failure(ctx: Context, exc: IntuitError, before: _ChainState) -> Finding:
    return first_finding(REFUSALS, _Refusal(ctx, exc, before))


# -- Intuit said invalid_grant: which of the situations that give it this most likely is


def minted_for_other_environment(r: _Refusal) -> Finding | None:
    before = r.before
    if not (r.grant_refused and before.token_environment and before.environment):
        return None
    if before.token_environment == before.environment:
        return None
    return Finding(
        "fail",
        f"Intuit refused the saved connection: it was made for a {before.token_environment} company, "
        f"but QB_ENVIRONMENT says {before.environment}.",
        details=r.details
        + [
            f"Either set QB_ENVIRONMENT={before.token_environment} in .env again, or connect your "
            f"{before.environment} company with `{reauth_in(before.environment)}`.",
        ],
        facts={**r.facts, "refused_because": "environment_mismatch"},
        cause="environment_mismatch",
        remediation=environment_remediation(before.token_environment, before.environment),
    )


def minted_for_other_company(r: _Refusal) -> Finding | None:
    before = r.before
    if not (r.grant_refused and before.token_realm_id and before.realm_id):
        return None
    if before.token_realm_id == before.realm_id:
        return None
    return Finding(
        "fail",
        f"Intuit refused the saved connection, which was made for company {before.token_realm_id} while "
        f"QB_REALM_ID says {before.realm_id}: the token and the company ID come from different connections.",
        details=r.details,
        facts={**r.facts, "refused_because": "realm_mismatch"},
        cause="realm_mismatch",
        remediation=reauth_remediation(),
    )


def past_a_deadline(r: _Refusal) -> Finding | None:
    expiry = r.before.expiry
    limit = expiry.expired_limit() if r.grant_refused else None
    if limit is None:
        return None
    estimate = (
        " (estimated from the date of .env, which this older connector setup does not record)"
        if expiry.estimated
        else ""
    )
    return Finding(
        "fail",
        f"Intuit refused the saved connection because it expired on {expiry.expired_on(limit):%Y-%m-%d}{estimate}: "
        f"{describe_limit(limit)} has passed.",
        details=r.details,
        facts={**r.facts, "refused_because": "hard_cap" if limit == LIMIT_HARD else "idle_limit"},
        cause="refresh_token_expired",
        remediation=reauth_remediation(),
    )


def clock_off(r: _Refusal) -> Finding | None:
    # Nothing recorded explains the refusal, and Intuit's Date header says this computer's clock
    # is more than 5 minutes off: a wrong clock is one known cause of invalid_grant (INTUIT.md §10.2)
    # and the one fix that costs nothing, so it is named before reconnecting is suggested.
    skew = clock_skew(r.exc.server_date, r.ctx.now()) if r.grant_refused else None
    if skew is None:
        return None
    likely, why = _disconnected_or_superseded(r.before)
    return Finding(
        "fail",
        f"QuickBooks refused SideQuest's saved connection, and this computer's clock is {skew_words(skew)} "
        "Intuit's: the wrong clock is the likely reason, so set the clock right first.",
        details=[
            r.details[0],
            "Nothing this computer recorded explains the refusal otherwise (the environment, the company and "
            "the connection's deadlines all fit), and a clock this far off is one known reason Intuit refuses.",
            "If Intuit still refuses once the clock is right, the connection was disconnected in QuickBooks or "
            f"replaced by a newer token that was not saved here ({likely} is likelier). {why}",
        ],
        facts={
            **r.facts,
            "refused_because": "clock_skew",
            "skew_seconds": int(skew.total_seconds()),
            "intuit_date": format_timestamp(r.exc.server_date),
        },
        cause="app_disconnected",
        remediation=Remediation(f"{SET_CLOCK}, then run `{DOCTOR}` again. {CLOCK_THEN_REAUTH}"),
    )


def disconnected_or_superseded(r: _Refusal) -> Finding | None:
    if not r.grant_refused:
        return None
    likely, why = _disconnected_or_superseded(r.before)
    return Finding(
        "fail",
        "Intuit no longer accepts the saved connection: it was disconnected in QuickBooks or replaced by a "
        f"newer token that was not saved here ({likely} is likelier).",
        details=r.details + [why],
        facts={**r.facts, "refused_because": "disconnected" if likely.startswith("disconnected") else "superseded"},
        cause="app_disconnected",
        remediation=reauth_remediation(),
    )


# -- Intuit refused for another reason


def app_keys_refused(r: _Refusal) -> Finding | None:
    if r.exc.kind != "invalid_client":
        return None
    environment = r.before.environment or "the configured environment"
    return Finding(
        "fail",
        "Intuit does not accept the app keys in .env (QB_CLIENT_ID / QB_CLIENT_SECRET), so it refused to refresh.",
        details=r.details
        + [
            "Development keys only work with QB_ENVIRONMENT=sandbox and production keys only with "
            f"QB_ENVIRONMENT=production; this .env says {environment}.",
            "A stray space or a missing character in the secret gives the same answer.",
        ],
        facts=r.facts,
        cause="invalid_client",
        remediation=Remediation(
            "Copy QB_CLIENT_ID and QB_CLIENT_SECRET again from the SideQuest setup email into .env.",
        ),
    )


def refusal_with_a_name(r: _Refusal) -> Finding | None:
    # Lost access, a lapsed subscription, a rate limit (429 from the token endpoint), an untrusted certificate.
    named = named_refusal(r.ctx, r.exc, "the company", r.before.facts())
    if named is not None:
        named = named._replace(details=tuple(named.details) + tuple(r.details[1:]))
    return named


def intuit_unreachable(r: _Refusal) -> Finding | None:
    if r.exc.kind not in ("network", "timeout"):
        return None
    return Finding(
        "fail",
        "Could not reach Intuit to refresh the connection"
        + (" (no answer in time)." if r.exc.kind == "timeout" else "."),
        details=r.details + ["Nothing was changed; the saved connection is as it was."],
        facts=r.facts,
        cause="network_unreachable",
        remediation=Remediation(f"Check the internet connection, then run `{DOCTOR}` again."),
    )


def intuit_in_trouble(r: _Refusal) -> Finding | None:
    exc = r.exc
    if exc.kind not in ("server_error", "bad_response") and exc.status != 429:
        return None
    details = r.details + ["This is on Intuit's side; nothing on this computer needs changing."]
    if exc.kind == "bad_response":
        details.append(
            "If the answer was cut off after Intuit issued a new token, the saved one may have gone stale: "
            f"if the next run says the connection was disconnected, run `{REAUTH}`."
        )
    return Finding(
        "fail",
        f"Intuit's sign-in service answered with {what_arrived(exc)} instead of a token, so the connection could "
        "not be checked.",
        details=details,
        facts=r.facts,
        cause="intuit_unavailable",
        remediation=Remediation(f"Wait a few minutes and run `{DOCTOR}` again."),
    )


def what_arrived(exc: IntuitError) -> str:
    """What Intuit sent instead of a token, in words: the status and the kind of body (never the body)."""
    status = f"HTTP {exc.status}" if exc.status is not None else "an answer"
    detail = (exc.detail or "").strip()
    if detail.startswith("an HTML page"):
        return f"an error page ({status}{detail[len('an HTML page') :]})"
    if "truncated" in detail:
        return f"a cut-off answer ({status}, {detail})"
    if exc.kind == "server_error" and exc.code:
        return f"a server error ({status}, error code {exc.code})"
    if detail == "empty body":
        return f"an empty answer ({status})"
    if detail:
        return f"a server error ({status}, {detail})" if exc.kind == "server_error" else f"{status} with {detail}"
    return f"a server error ({status})" if exc.kind == "server_error" else f"an answer it could not read ({status})"


def insecure_token_url(r: _Refusal) -> Finding | None:
    if r.exc.kind != "insecure_url":
        return None
    return Finding(
        "fail",
        f"Refused to send the connection to Intuit: {r.exc}.",
        details=["Remove or correct the SIDEQUEST_OAUTH_TOKEN_URL setting in your environment."],
        facts=r.facts,
        cause="not_configured",
    )


def other_refusal(r: _Refusal) -> Finding:
    return Finding("fail", f"Intuit refused the refresh: {r.exc}.", details=r.details, facts=r.facts, cause="unknown")


# Tried in order; the first finding is the verdict (doctor/situations.py).
REFUSALS = (
    minted_for_other_environment,
    minted_for_other_company,
    past_a_deadline,
    clock_off,
    disconnected_or_superseded,
    app_keys_refused,
    refusal_with_a_name,
    intuit_unreachable,
    intuit_in_trouble,
    insecure_token_url,
    other_refusal,
)


def _disconnected_or_superseded(before: _ChainState) -> tuple[str, str]:
    if before.refreshed_at is not None and before.now - before.refreshed_at <= ROTATION_WINDOW:
        hours = max(0, int((before.now - before.refreshed_at).total_seconds() // 3600))
        return (
            "a newer token that was not saved",
            f"This computer refreshed successfully {hours} h ago, so the connection was alive then. Intuit "
            "replaces the token every 24-26 h; if another program holding a copy (Claude Desktop's own settings, "
            "an older connector, another computer) refreshed since and kept the new token to itself, the one "
            "saved here stopped working.",
        )
    if before.refreshed_at is not None:
        return (
            "disconnected in QuickBooks",
            f"The last refresh recorded here was on {before.refreshed_at:%Y-%m-%d}, before Intuit's 100-day limit "
            "ran out, so the connection did not expire; the usual reason is that someone clicked Disconnect on "
            "the SideQuest app in QuickBooks (Settings → Apps).",
        )
    return (
        "disconnected in QuickBooks",
        "This older .env does not record refreshes, so the two cannot be told apart for certain; nothing here "
        "shows a recent refresh that another program could have overtaken, so a Disconnect in QuickBooks "
        "(Settings → Apps) is the likelier reason.",
    )


PROBE = Probe(
    id="refresh-chain",
    title="QuickBooks connection refresh",
    category="token",
    run=check,
    depends_on=("env-file", "lock-health"),
    needs_network=True,
    side_effects="mutating",
    # Long enough for the store's one retry of a read timeout (2 x 8 s + 0.5 s) to report
    # itself; the run's budget still caps it.
    timeout=18.0,
)


@hookimpl
def sidequest_probes():
    return [PROBE]
