"""Probe `token-age`: how long the saved QuickBooks connection has left, without the network.

Intuit ends a connection in two ways (INTUIT.md §2.3, §2.4): after 100 days without a refresh
(the rolling idle limit) and five years after the consent (the hard cap). sidequest records
both deadlines in `.env` when it refreshes; a legacy `.env` (connector <= 0.15.12) records
neither, so the file's own date is the best estimate left — and an estimate must never be
reported as a certainty. `expiry_status` is the pure reading other probes reuse: refresh-chain
needs it to tell "expired" from "disconnected" when Intuit answers invalid_grant.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe, Remediation
from doctor.store.timestamps import format_timestamp, parse_timestamp
from doctor.values import Value

IDLE_LIMIT = timedelta(days=100)
WARN_WITHIN = timedelta(days=14)
REAUTH = "sidequest reauth-qb"
REFRESH = "sidequest refresh-qb"

# Where the rolling deadline came from, best first.
BASIS_RECORDED = "recorded_expiry"  # QB_REFRESH_TOKEN_EXPIRES_AT, from Intuit's own answer
BASIS_LAST_REFRESH = "last_refresh"  # QB_TOKEN_REFRESHED_AT + 100 days
BASIS_FILE_DATE = "file_date_estimate"  # legacy .env: its modification time + 100 days
BASIS_THIS_RUN = "refreshed_in_this_run"  # refresh-chain just refreshed: Intuit's fresh numbers
BASIS_UNKNOWN = "unknown"

LIMIT_IDLE = "idle"  # the 100-day rolling limit
LIMIT_HARD = "hard"  # the five-year cap


class ExpiryStatus(Value):
    """The chain's deadlines as far as this computer knows them (UTC, aware)."""

    __slots__ = ("now", "rolling_expires_at", "hard_expires_at", "basis", "notes")

    def __init__(
        self,
        now: datetime,
        rolling_expires_at: datetime | None,
        hard_expires_at: datetime | None,
        basis: str,
        notes: tuple[str, ...] = (),
    ) -> None:
        self.now = now
        self.rolling_expires_at = rolling_expires_at
        self.hard_expires_at = hard_expires_at
        self.basis = basis
        self.notes = notes

    @property
    def estimated(self) -> bool:
        return self.basis in (BASIS_FILE_DATE, BASIS_UNKNOWN)

    def first_deadline(self) -> tuple[str, datetime] | None:
        """The deadline that comes first: (LIMIT_IDLE or LIMIT_HARD, when)."""
        known = [(LIMIT_IDLE, self.rolling_expires_at), (LIMIT_HARD, self.hard_expires_at)]
        known = [(limit, when) for limit, when in known if when is not None]
        if not known:
            return None
        return min(known, key=lambda pair: pair[1])

    @property
    def days_left(self) -> int | None:
        first = self.first_deadline()
        if first is None:
            return None
        return _whole_days(first[1] - self.now)

    def expired_limit(self) -> str | None:
        """Which limit has passed (the hard cap wins when both have), or None."""
        if self.hard_expires_at is not None and self.hard_expires_at <= self.now:
            return LIMIT_HARD
        if self.rolling_expires_at is not None and self.rolling_expires_at <= self.now:
            return LIMIT_IDLE
        return None

    def facts(self) -> dict[str, object]:
        return {
            "rolling_expires_at": _iso(self.rolling_expires_at),
            "hard_expires_at": _iso(self.hard_expires_at),
            "basis": self.basis,
            "estimated": self.estimated,
            "days_left": self.days_left,
        }


def expiry_status(ctx: Context) -> ExpiryStatus:
    """The deadlines recorded in (or estimated from) `.env` as loaded at the start of this run.

    Pure: it reads the context's cached `.env` snapshot, so a refresh that rewrites the file
    during the run does not change the answer other probes base their verdicts on.
    """
    now = ctx.now()
    env = ctx.env_file
    if env is None:
        return ExpiryStatus(now, None, None, BASIS_UNKNOWN)
    notes: list[str] = []

    def stamp(key: str) -> datetime | None:
        raw = env.get(key)
        parsed = parse_timestamp(raw)
        if raw and parsed is None:
            notes.append(f"{key} in .env is not a date sidequest can read; it was ignored.")
        return parsed

    hard = stamp("QB_REFRESH_TOKEN_HARD_EXPIRES_AT")
    recorded = stamp("QB_REFRESH_TOKEN_EXPIRES_AT")
    if recorded is not None:
        return ExpiryStatus(now, recorded, hard, BASIS_RECORDED, tuple(notes))
    refreshed = stamp("QB_TOKEN_REFRESHED_AT")
    if refreshed is not None:
        return ExpiryStatus(now, refreshed + IDLE_LIMIT, hard, BASIS_LAST_REFRESH, tuple(notes))
    modified = datetime.fromtimestamp(env.mtime, tz=timezone.utc)
    return ExpiryStatus(now, modified + IDLE_LIMIT, hard, BASIS_FILE_DATE, tuple(notes))


def status_after_refresh(ctx: Context) -> ExpiryStatus | None:
    """The deadlines Intuit gave in this run's refresh (refresh-chain), when there was one."""
    result = ctx.shared.get("refresh_chain.result")
    if result is None:
        return None
    rolling = result.expires_at or (result.refreshed_at + IDLE_LIMIT)
    hard = result.hard_expires_at
    if hard is None:
        # Intuit did not report the cap this time; the one recorded earlier still holds.
        hard = expiry_status(ctx).hard_expires_at
    return ExpiryStatus(ctx.now(), rolling, hard, BASIS_THIS_RUN)


def describe_limit(limit: str) -> str:
    if limit == LIMIT_HARD:
        return "Intuit's five-year limit on every QuickBooks connection"
    return "Intuit's 100-day limit (a connection unused for 100 days ends)"


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
                f"Run `{REFRESH}` now (it renews the 100-day limit), then `sidequest keepalive on` to automate it.",
                (REFRESH, "sidequest keepalive on"),
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
        f"(in {_whole_days(rolling - status.now)} days), and each use extends it.",
        details=details,
        facts=facts,
    )


def _whole_days(delta: timedelta) -> int:
    # Round toward "less time left": a deadline 13.5 days away is reported as 13 days.
    return int(delta.total_seconds() // 86400)


def _iso(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment is not None else None


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
