"""Probe `token-age`: how long the saved QuickBooks connection has left, without the network.

Intuit ends a connection in two ways (INTUIT.md §2.3, §2.4): after 100 days without a refresh
(the rolling idle limit) and five years after the consent (the hard cap). sidequest records
both deadlines in `.env` when it refreshes; a legacy `.env` (connector <= 0.15.12) records
neither, so the file's own date is the best estimate left — and an estimate must never be
reported as a certainty. The reading of those dates (`expiry_status`) lives in
doctor/token_chain.py, because refresh-chain needs it too, to tell "expired" from
"disconnected" when Intuit answers invalid_grant.

For support, the facts also carry the chain's rotation history from its lineage
(doctor/store/lineage.py), offline and redacted: the newest entries (when, which program and
pid, `RT…` tail, consent or rotation) and where `.env`'s token stands. `.env` holding the newest
token SideQuest saved, yet refused by Intuit, points at a Disconnect click or an expiry; `.env`
holding an older one points at a lost rotation (the newer token was saved, then `.env` set back).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from doctor.advice import DOCTOR, KEEPALIVE_ON, REAUTH, REAUTH_AGAIN, REFRESH
from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe, Remediation
from doctor.situations import first_finding
from doctor.store.timestamps import format_timestamp
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
HISTORY_SHOWN = 10  # the newest lineage entries the facts show; the file keeps a few hundred


class _Reading:
    """The deadlines token-age judges (Intuit's fresh ones after a refresh, else `.env`'s)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.status = status_after_refresh(ctx) or expiry_status(ctx)
        self.facts = self.status.facts()
        self.facts["rotation_history"] = rotation_history(ctx)
        self.details = list(self.status.notes)


def rotation_history(ctx: Context) -> dict[str, Any] | None:
    """The chain's recent rotations and consents, redacted, and where `.env`'s token stands; None without any."""
    from doctor.store.lineage import read_lineage

    seen = read_lineage(ctx.home)
    if not seen.entries:
        return None
    refresh = ctx.run_facts.refresh  # this run's rotation is in the lineage already; .env's cached copy is not
    token = refresh.refresh_token if refresh is not None else ctx.env("QB_REFRESH_TOKEN")
    chain = seen.chain_of(token) if seen.verifiable else None
    start = chain[1] if chain is not None else None
    return {
        "entries": len(seen.entries),
        "since": format_timestamp(seen.entries[0].at),
        "env_token": seen.env_position(token),
        "chain_start": None if start is None else {"kind": start.kind, "at": format_timestamp(start.at)},
        "chain_rotations": None if chain is None else len(chain[0]) - 1,
        "recent": seen.recent(HISTORY_SHOWN),
    }


def where_the_dates_come_from(r: _Reading) -> None:
    """Notes the source of the deadlines and the five-year limit; never decides."""
    status = r.status
    if status.basis == BASIS_THIS_RUN:
        r.details.append("These dates come from Intuit's answer to the refresh the doctor just made.")
    elif status.basis == BASIS_LAST_REFRESH:
        r.details.append("Estimated from the last refresh recorded in .env (QB_TOKEN_REFRESHED_AT) plus 100 days.")
    elif status.basis == BASIS_FILE_DATE:
        r.details.append(
            "This .env was written by an older connector that does not record dates, so the deadline is an "
            "ESTIMATE from the file's last change plus 100 days; the next refresh records the real one."
        )
    if status.hard_expires_at is None:
        r.details.append("The five-year limit is unknown until the next refresh records it.")
    else:
        r.details.append(f"Five-year limit: {_day(status.hard_expires_at)}.")


def estimate_past_its_date(r: _Reading) -> Finding | None:
    """An estimate never fails on its own: the live refresh (refresh-chain) gives the verdict."""
    limit = r.status.expired_limit()
    if limit is None or not r.status.estimated:
        return None
    refresh = r.ctx.results.get("refresh-chain")
    if refresh is not None and refresh.cause == "refresh_token_expired":
        confirm, remediation = "Intuit confirmed it (see refresh-chain).", Remediation(REAUTH_AGAIN, (REAUTH,))
    elif r.ctx.offline or refresh is None:
        confirm, remediation = (
            "Run the doctor online to confirm.",
            Remediation(
                f"Run `{DOCTOR}` without --offline to confirm; if it is expired, run `{REAUTH}`.",
                (DOCTOR,),
            ),
        )
    else:
        confirm, remediation = "The live check (refresh-chain) gives the verdict.", None
    return Finding(
        "warn",
        f"The QuickBooks connection has probably expired: by this estimate it ended on "
        f"{_day(r.status.expired_on(limit))}. " + confirm,
        details=r.details,
        facts=r.facts,
        remediation=remediation,
    )


def expired(r: _Reading) -> Finding | None:
    limit = r.status.expired_limit()
    if limit is None:
        return None
    return Finding(
        "fail",
        f"The QuickBooks connection expired on {_day(r.status.expired_on(limit))}: {describe_limit(limit)} has passed.",
        details=r.details,
        facts=r.facts,
        cause="refresh_token_expired",
        remediation=Remediation(REAUTH_AGAIN, (REAUTH,)),
    )


def ends_within_two_weeks(r: _Reading) -> Finding | None:
    status = r.status
    first = status.first_deadline()
    if first is None or first[1] - status.now > WARN_WITHIN:
        return None
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
            f"The QuickBooks connection ends on {_day(when)}{estimate} (in {days} days) unless it is used before then."
        )
        remediation = Remediation(
            f"Run `{REFRESH}` now (it renews the 100-day limit), then `{KEEPALIVE_ON}` to automate it.",
            (REFRESH, KEEPALIVE_ON),
            safe_to_automate=False,
        )
    return Finding("warn", summary, details=r.details, facts=r.facts, remediation=remediation)


def no_deadline_known(r: _Reading) -> Finding | None:
    if r.status.rolling_expires_at is not None:
        return None
    return Finding("ok", "No expiry date is known for the QuickBooks connection.", details=r.details, facts=r.facts)


def good_until(r: _Reading) -> Finding:
    rolling = r.status.rolling_expires_at
    estimate = " (estimated)" if r.status.estimated else ""
    refresh = r.ctx.results.get("refresh-chain")
    # Dates cannot vouch for a chain Intuit just refused for another reason: say what they cover.
    lead = "By its dates, the" if refresh is not None and refresh.is_problem else "The"
    return Finding(
        "ok",
        f"{lead} QuickBooks connection is good until {_day(rolling)}{estimate} "
        f"(in {whole_days(rolling - r.status.now)} days), and each use extends it.",
        details=r.details,
        facts=r.facts,
    )


# Tried in order; the first finding is the verdict (doctor/situations.py).
SITUATIONS = (
    where_the_dates_come_from,
    estimate_past_its_date,
    expired,
    ends_within_two_weeks,
    no_deadline_known,
    good_until,
)


def check(ctx: Context) -> Finding:
    return first_finding(SITUATIONS, _Reading(ctx))


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
