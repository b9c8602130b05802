"""Probe `token-age`: how long the saved QuickBooks connection has left, without the network.

Intuit ends a connection in two ways (INTUIT.md §2.3, §2.4): after 100 days without a refresh
(the rolling idle limit) and five years after the consent (the hard cap). sidequest records
both deadlines in `.env` when it refreshes; a legacy `.env` (connector <= 0.15.12) records
neither, so the file's own date is the best estimate left — and an estimate must never be
reported as a certainty. The reading of those dates (`expiry_status`) lives in
doctor/token_chain.py, because refresh-chain needs it too, to tell "expired" from
"disconnected" when Intuit answers invalid_grant.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe, Remediation
from doctor.token_chain import (
    BASIS_FILE_DATE,
    BASIS_LAST_REFRESH,
    BASIS_THIS_RUN,
    LIMIT_HARD,
    describe_limit,
    expiry_status,
    status_after_refresh,
    whole_days,
)

WARN_WITHIN = timedelta(days=14)
REAUTH = "sidequest reauth-qb"
REFRESH = "sidequest refresh-qb"


def check(ctx: Context) -> Finding:
    status = status_after_refresh(ctx) or expiry_status(ctx)
    facts = status.facts()
    details = list(status.notes)
    rolling, hard = status.rolling_expires_at, status.hard_expires_at

    if status.basis == BASIS_THIS_RUN:
        details.append("These dates come from Intuit's answer to the refresh the doctor just made.")
    elif status.basis == BASIS_LAST_REFRESH:
        details.append("Estimated from the last refresh recorded in .env (QB_TOKEN_REFRESHED_AT) plus 100 days.")
    elif status.basis == BASIS_FILE_DATE:
        details.append(
            "This .env was written by an older connector that does not record dates, so the deadline is an "
            "ESTIMATE from the file's last change plus 100 days; the next refresh records the real one."
        )
    if hard is None:
        details.append("The five-year limit is unknown until the next refresh records it.")
    else:
        details.append(f"Five-year limit: {_day(hard)}.")

    limit = status.expired_limit()
    if limit is not None:
        when = hard if limit == LIMIT_HARD else rolling
        if status.estimated:
            # An estimate never fails on its own: the live refresh (refresh-chain) gives the verdict.
            refresh = ctx.results.get("refresh-chain")
            if refresh is not None and refresh.cause == "refresh_token_expired":
                confirm, remediation = (
                    "Intuit confirmed it (see refresh-chain).",
                    Remediation(f"Run `{REAUTH}` to connect QuickBooks again.", (REAUTH,)),
                )
            elif ctx.offline or refresh is None:
                confirm, remediation = (
                    "Run the doctor online to confirm.",
                    Remediation(
                        f"Run `sidequest doctor` without --offline to confirm; if it is expired, run `{REAUTH}`.",
                        ("sidequest doctor",),
                    ),
                )
            else:
                confirm, remediation = "The live check (refresh-chain) gives the verdict.", None
            return Finding(
                "warn",
                f"The QuickBooks connection has probably expired: by this estimate it ended on {_day(when)}. "
                + confirm,
                details=details,
                facts=facts,
                remediation=remediation,
            )
        return Finding(
            "fail",
            f"The QuickBooks connection expired on {_day(when)}: {describe_limit(limit)} has passed.",
            details=details,
            facts=facts,
            cause="refresh_token_expired",
            remediation=Remediation(f"Run `{REAUTH}` to connect QuickBooks again.", (REAUTH,)),
        )

    first = status.first_deadline()
    if first is not None and first[1] - status.now <= WARN_WITHIN:
        first_limit, when = first
        days = status.days_left
        if first_limit == LIMIT_HARD:
            summary = (
                f"The QuickBooks connection reaches Intuit's five-year limit on {_day(when)} (in {days} days); "
                "after that you must connect again."
            )
            remediation = Remediation(f"Before {_day(when)}, run `{REAUTH}` to start a new connection.", (REAUTH,))
        else:
            estimate = " (estimated)" if status.estimated else ""
            summary = (
                f"The QuickBooks connection ends on {_day(when)}{estimate} (in {days} days) unless it is used "
                "before then."
            )
            remediation = Remediation(
                f"Run `{REFRESH}` now (it renews the 100-day limit), and let it run regularly from cron or launchd.",
                (REFRESH,),
                safe_to_automate=False,
            )
        return Finding("warn", summary, details=details, facts=facts, remediation=remediation)

    if rolling is None:
        return Finding("ok", "No expiry date is known for the QuickBooks connection.", details=details, facts=facts)
    estimate = " (estimated)" if status.estimated else ""
    refresh = ctx.results.get("refresh-chain")
    # Dates cannot vouch for a chain Intuit just refused for another reason: say what they cover.
    lead = "By its dates, the" if refresh is not None and refresh.is_problem else "The"
    return Finding(
        "ok",
        f"{lead} QuickBooks connection is good until {_day(rolling)}{estimate} "
        f"(in {whole_days(rolling - status.now)} days), and each use extends it.",
        details=details,
        facts=facts,
    )


def _day(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d") if moment is not None else "an unknown date"


PROBE = Probe(
    id="token-age",
    title="Connection age and expiry",
    category="token",
    run=check,
    depends_on=("env-file",),
    # After a live refresh, Intuit's fresh deadlines replace the ones .env held before it.
    runs_after=("refresh-chain",),
    timeout=5.0,
)


@hookimpl
def sidequest_probes():
    return [PROBE]
