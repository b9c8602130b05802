"""Probe `keepalive`: is a scheduled refresh keeping the 100-day clock from running out?

Why: Intuit ends a connection unused for 100 days (INTUIT.md §2.3), and `sidequest keepalive on`
prevents that by letting the platform's scheduler run `refresh-qb`. This probe says, without the
network and without starting any program, whether one is installed (the record `keepalive on`
leaves in the home, and the files it names) and how the last refresh-qb runs ended (the run log
refresh-qb keeps). It only ever warns: a missing keep-alive is a risk, not a breakage.

The situations, in order: a record whose files are gone; the last run failed (and that failure
was not followed by a good refresh); the last run is older than twice the interval; no
keep-alive while the connection ends within 30 days.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from doctor.advice import DOCTOR, KEEPALIVE_ON, KEEPALIVE_STATUS, REAUTH, REFRESH
from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe, Remediation
from doctor.store.keepalive_record import KeepaliveRecord, read_record
from doctor.store.run_log import CHAIN_DEAD, RefreshRun, failure_outlived, read_runs
from doctor.store.timestamps import format_timestamp, parse_timestamp

STATUS = KEEPALIVE_STATUS
WARN_WITHIN = timedelta(days=30)
IDLE_LIMIT = timedelta(days=100)

# Why a refresh failed, for a person; the kinds are refresh-qb's outcomes (doctor/store/run_log.py).
WHY = {
    "invalid_grant": "Intuit no longer accepts the connection (expired, disconnected or made with other app keys)",
    "invalid_client": "Intuit does not accept the app keys in .env",
    "network": "Intuit could not be reached (no internet at that moment?)",
    "timeout": "Intuit did not answer in time",
    "server_error": "Intuit's sign-in service had an error",
    "bad_response": "Intuit answered with something that is not a token response",
    "lock_timeout": "another program held the .env lock the whole time",
    "not_configured": ".env was missing keys SideQuest needs",
    "env_unreadable": ".env could not be read",
    "write_failed": "the new token could not be saved to .env",
    "interrupted": "the run was stopped before it finished",
}


def _day(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _facts(record: KeepaliveRecord | None, runs: list[RefreshRun]) -> dict[str, object]:
    last = runs[-1] if runs else None
    return {
        "installed": record is not None,
        "scheduler": record.scheduler if record else None,
        "where": record.where if record else None,
        "every_days": record.every_days if record else None,
        "last_run_at": format_timestamp(last.at) if last else None,
        "last_outcome": last.outcome if last else None,
        "runs_recorded": len(runs),
    }


def rolling_expiry(ctx: Context) -> datetime | None:
    """The 100-day deadline `.env` records (QB_REFRESH_TOKEN_EXPIRES_AT, else the last refresh + 100 days)."""
    recorded = parse_timestamp(ctx.env("QB_REFRESH_TOKEN_EXPIRES_AT"))
    if recorded is not None:
        return recorded
    refreshed = parse_timestamp(ctx.env("QB_TOKEN_REFRESHED_AT"))
    return refreshed + IDLE_LIMIT if refreshed is not None else None


def files_gone(record: KeepaliveRecord | None) -> Finding | None:
    if record is None:
        return None
    missing = record.missing_files()
    if not missing:
        return None
    return Finding(
        "warn",
        f"The keep-alive installed on {record.installed_at:%Y-%m-%d} is gone: {', '.join(missing)} no longer exists.",
        remediation=Remediation(f"Run `{KEEPALIVE_ON}` to install it again.", (KEEPALIVE_ON,)),
    )


def last_run_failed(ctx: Context, record: KeepaliveRecord | None, runs: list[RefreshRun]) -> Finding | None:
    if not runs or runs[-1].ok:
        return None
    last = runs[-1]
    if failure_outlived(last, parse_timestamp(ctx.env("QB_TOKEN_REFRESHED_AT"))):
        return None
    why = WHY.get(last.outcome, f"see `{REFRESH}` for the reason")
    if last.outcome in CHAIN_DEAD:
        remediation = Remediation(
            f"Run `{DOCTOR}` (online) to see why, then `{REAUTH}` to connect again.",
            (DOCTOR, REAUTH),
        )
    else:
        remediation = Remediation(
            f"Run `{REFRESH}` now to see the whole message; the keep-alive tries again on schedule.",
            (REFRESH,),
        )
    # The log holds every refresh-qb run, scheduled or typed: say "refresh-qb run", not "scheduled".
    summary = f"The last refresh-qb run, on {_day(last.at)}, failed: {why} ({last.outcome})."
    return Finding("warn", summary, remediation=remediation)


def overdue(ctx: Context, record: KeepaliveRecord | None, runs: list[RefreshRun]) -> Finding | None:
    if record is None:
        return None
    allowed = timedelta(days=2 * record.every_days)
    now = ctx.now()
    since = runs[-1].at if runs else record.installed_at
    if now - since <= allowed:
        return None
    days = int((now - since).total_seconds() // 86400)
    what = (
        f"The last refresh-qb run was on {_day(since)}"
        if runs
        else "No refresh-qb run is recorded since the keep-alive was installed on " + _day(since)
    )
    return Finding(
        "warn",
        f"{what}, {days} days ago, though the keep-alive should run every {record.every_days} days: the computer "
        "may have been off or asleep at those times, or the job no longer runs.",
        remediation=Remediation(
            f"Run `{STATUS}` to check the job, and `{KEEPALIVE_ON}` to reinstall it if it is not active.",
            (STATUS, KEEPALIVE_ON),
        ),
    )


def none_installed_and_expiry_near(ctx: Context, record: KeepaliveRecord | None) -> Finding | None:
    if record is not None:
        return None
    expiry = rolling_expiry(ctx)
    if expiry is None or expiry - ctx.now() > WARN_WITHIN or expiry <= ctx.now():
        return None
    days = int((expiry - ctx.now()).total_seconds() // 86400)
    return Finding(
        "warn",
        f"No keep-alive is installed and the QuickBooks connection ends on {expiry:%Y-%m-%d} (in {days} days) "
        "unless it is used before then.",
        remediation=Remediation(
            f"Run `{KEEPALIVE_ON}`: this computer then refreshes the connection every 7 days by itself.",
            (KEEPALIVE_ON,),
        ),
    )


def check(ctx: Context) -> Finding:
    record = read_record(ctx.home)
    runs = read_runs(ctx.home)
    facts = _facts(record, runs)
    details: list[str] = []
    if record is not None:
        details.append(
            f"Installed in {record.where} on {record.installed_at:%Y-%m-%d}, every {record.every_days} days."
        )
    if runs:
        details.append("Recent refresh-qb runs: " + ", ".join(f"{r.at:%Y-%m-%d} {r.outcome}" for r in reversed(runs)))
    for situation in (
        files_gone(record),
        last_run_failed(ctx, record, runs),
        overdue(ctx, record, runs),
        none_installed_and_expiry_near(ctx, record),
    ):
        if situation is not None:
            return situation._replace(details=tuple(details), facts=facts)
    if record is None:
        return Finding(
            "ok",
            f"No keep-alive is installed (optional: `{KEEPALIVE_ON}` refreshes the connection on a schedule).",
            details=details,
            facts=facts,
        )
    last = f"; last run {_day(runs[-1].at)}: {runs[-1].outcome}" if runs else "; no run yet"
    return Finding(
        "ok",
        f"A keep-alive refreshes the connection every {record.every_days} days ({record.scheduler}){last}.",
        details=details,
        facts=facts,
    )


PROBE = Probe(
    id="keepalive",
    title="Scheduled keep-alive",
    category="token",
    run=check,
    depends_on=("env-file",),
    timeout=5.0,
)


@hookimpl
def sidequest_probes():
    return [PROBE]
