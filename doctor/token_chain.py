"""What the token-chain probes share: the chain's deadlines, Intuit's clock, the company lookups.

token-age, refresh-chain, realm-match, environment-match and clock-skew each judge one side
of the same chain, and several of them need the same readings: the deadlines recorded in (or
estimated from) `.env` (INTUIT.md §2.3, §2.4), the access token of this run's one refresh,
Intuit's `Date` header next to this computer's clock, and QuickBooks' CompanyInfo per
environment. Those readings live here, on top of the run's typed facts (`ctx.run_facts`), so
no probe imports another and disabling one probe module never takes another's logic with it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Iterable, Union

from doctor.advice import DOCTOR, REAUTH, REPORT_FOR_SUPPORT, reauth_remediation
from doctor.context import Context
from doctor.intuit.endpoints import ENVIRONMENTS
from doctor.model import Finding, Remediation
from doctor.store.timestamps import format_timestamp, parse_timestamp
from doctor.values import Value

if TYPE_CHECKING:  # pragma: no cover
    from doctor.intuit.errors import IntuitError
    from doctor.intuit.responses import CompanyInfo

    Lookup = Union[CompanyInfo, IntuitError]

IDLE_LIMIT = timedelta(days=100)

# Where the rolling deadline came from, best first.
BASIS_RECORDED = "recorded_expiry"  # QB_REFRESH_TOKEN_EXPIRES_AT, from Intuit's own answer
BASIS_LAST_REFRESH = "last_refresh"  # QB_TOKEN_REFRESHED_AT + 100 days
BASIS_FILE_DATE = "file_date_estimate"  # legacy .env: its modification time + 100 days
BASIS_THIS_RUN = "refreshed_in_this_run"  # refresh-chain just refreshed: Intuit's fresh numbers
BASIS_UNKNOWN = "unknown"

LIMIT_IDLE = "idle"  # the 100-day rolling limit
LIMIT_HARD = "hard"  # the five-year cap

# The company lookup's error kinds that mean "this connection lives in the other environment".
ENV_KINDS = frozenset({"wrong_environment", "wrong_cluster"})
CLOCK_SKEW_LIMIT = timedelta(minutes=5)


# ------------------------------------------------------------------------------ deadlines


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
        return whole_days(first[1] - self.now)

    def expired_limit(self) -> str | None:
        """Which limit has passed (the hard cap wins when both have), or None."""
        if self.hard_expires_at is not None and self.hard_expires_at <= self.now:
            return LIMIT_HARD
        if self.rolling_expires_at is not None and self.rolling_expires_at <= self.now:
            return LIMIT_IDLE
        return None

    def expired_on(self, limit: str) -> datetime | None:
        return self.hard_expires_at if limit == LIMIT_HARD else self.rolling_expires_at

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
    result = ctx.run_facts.refresh
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


def whole_days(delta: timedelta) -> int:
    # Round toward "less time left": a deadline 13.5 days away is reported as 13 days.
    return int(delta.total_seconds() // 86400)


def _iso(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment is not None else None


# ------------------------------------------------------------------------------ Intuit's clock


def record_server_date(ctx: Context, server_date: datetime | None, where: str) -> None:
    """Remember Intuit's clock (from a `Date` header) next to ours, for the clock-skew probe."""
    if server_date is not None:
        ctx.run_facts.record_server_date(where, server_date, ctx.now())


def clock_skew(server_date: datetime | None, local: datetime) -> timedelta | None:
    """How far this computer's clock is ahead of Intuit's (negative: behind), when past the 5-minute limit."""
    if server_date is None:
        return None
    skew = local - server_date
    return skew if abs(skew) > CLOCK_SKEW_LIMIT else None


def skew_words(skew: timedelta) -> str:
    """A clock difference in words: "6 hours behind" (this computer's clock, next to Intuit's)."""
    direction = "ahead of" if skew > timedelta(0) else "behind"
    return f"{_duration(abs(skew).total_seconds())} {direction}"


def clock_skew_line(server_date: datetime | None, local: datetime) -> str | None:
    """One sentence when Intuit's clock and this computer's differ by more than 5 minutes."""
    skew = clock_skew(server_date, local)
    if skew is None:
        return None
    return (
        f"This computer's clock is {skew_words(skew)} Intuit's; expiry dates "
        "computed here are off by as much. Turn on automatic date and time in the system settings."
    )


def _duration(seconds: float) -> str:
    """A clock difference in words, rounded to the nearest unit (a skew of 5 h 59 min 59 s is "6 hours")."""
    minutes = round(seconds / 60)
    if minutes >= 2 * 24 * 60:
        return f"{round(seconds / 86400)} days"
    if minutes >= 120:
        return f"{round(seconds / 3600)} hours"
    return f"{minutes} minutes"


# ------------------------------------------------------------------------------ company lookups


def fresh_access_token(ctx: Context) -> str | None:
    """The access token this run's refresh produced, or None when there was no refresh."""
    return ctx.run_facts.access_token


def why_not_refreshed(ctx: Context) -> str:
    """Why QuickBooks cannot be asked this run: refresh-chain's outcome, in words."""
    refresh = ctx.results.get("refresh-chain")
    return f"refresh-chain did not renew the connection ({refresh.status})" if refresh else "refresh-chain did not run"


def other_environment(environment: str) -> str:
    return "production" if environment == "sandbox" else "sandbox"


def company_lookup(ctx: Context, access_token: str, realm_id: str, environment: str) -> Lookup:
    """QuickBooks' CompanyInfo for (realm, environment), or the IntuitError it answered; asked once per run.

    When nothing recorded at consent vouches for the environment (a legacy `.env` without
    QB_TOKEN_ENVIRONMENT), environment-match will need the other environment's answer as soon
    as this one refuses, and both need only the fresh access token: the other one is asked at
    the same time, so a wrong QB_ENVIRONMENT costs one round trip after the refresh, not two.
    """
    if (ctx.env("QB_TOKEN_ENVIRONMENT") or "").lower() not in ENVIRONMENTS:
        start_company_lookups(ctx, access_token, realm_id, [other_environment(environment)])
    outcome = ctx.run_facts.company_lookup(environment, realm_id, _asker(ctx, access_token, realm_id, environment))
    record_server_date(ctx, outcome.server_date, f"companyinfo ({environment})")
    return outcome


def start_company_lookups(ctx: Context, access_token: str, realm_id: str, environments: Iterable[str]) -> None:
    """Send the lookups for `environments` now, in the background; `company_lookup` collects them."""
    for environment in environments:
        ctx.run_facts.start_company_lookup(environment, realm_id, _asker(ctx, access_token, realm_id, environment))


def _asker(ctx: Context, access_token: str, realm_id: str, environment: str):
    def ask() -> Lookup:
        from doctor.intuit.errors import IntuitError

        try:
            return ctx.intuit.company_info(access_token, realm_id, environment)
        except IntuitError as exc:
            return exc

    return ask


def refusal_facts(exc: IntuitError) -> dict[str, object]:
    """What support needs to trace one Intuit refusal: its kind, HTTP status, Intuit's code and intuit_tid."""
    facts: dict[str, object] = {
        "error_kind": exc.kind,
        "http_status": exc.status,
        "error_code": exc.code,
        "intuit_tid": exc.intuit_tid,
    }
    if exc.retry_after is not None:
        facts["retry_after_seconds"] = int(round(exc.retry_after))
    return facts


def named_refusal(ctx: Context, exc: IntuitError, what: str, known: dict[str, object] | None = None) -> Finding | None:
    """The finding for a refusal with a cause of its own (lost access, lapsed subscription, rate limit,
    untrusted certificate), whichever call met it; None for the others. `known` are the caller's facts."""
    named = _NAMED_REFUSALS.get(exc.kind) or (_rate_limited if exc.status == 429 else None)
    if named is None:
        return None
    return named(ctx, exc, what, {**(known or {}), **refusal_facts(exc)}, [f"Intuit's answer: {exc}."])


def _access_lost(ctx: Context, exc: IntuitError, what: str, facts: dict, details: list[str]) -> Finding:
    return Finding(
        "fail",
        f"QuickBooks says the person who connected SideQuest is no longer an administrator of {what} "
        "(or lost their QuickBooks user), so it refuses SideQuest.",
        details=details
        + ["Only a current administrator of the company can connect an app; the connection itself is fine."],
        facts=facts,
        cause="qbo_access_denied",
        remediation=reauth_remediation(f"Ask a current QuickBooks administrator of {what} to run `{REAUTH}`."),
    )


def _subscription_lapsed(ctx: Context, exc: IntuitError, what: str, facts: dict, details: list[str]) -> Finding:
    return Finding(
        "fail",
        f"QuickBooks refuses SideQuest because the QuickBooks subscription of {what} has ended, was cancelled "
        "or has a billing problem.",
        details=details + ["Nothing on this computer needs changing; the owner settles it in QuickBooks."],
        facts=facts,
        cause="subscription_lapsed",
        remediation=Remediation(
            "The company's owner renews the QuickBooks subscription or fixes the payment method "
            "(QuickBooks → Settings → Subscriptions and billing)."
        ),
    )


def _monthly_limit(ctx: Context, exc: IntuitError, what: str, facts: dict, details: list[str]) -> Finding:
    return Finding(
        "fail",
        "Intuit has blocked the SideQuest app's QuickBooks requests until next month: the app's monthly "
        'allowance is used up (QuickBooks shows the app as "Offline").',
        details=details
        + ["This is a SideQuest support matter, not something to fix on this computer; reconnecting does not help."],
        facts={**facts, "limit": "monthly"},
        cause="rate_limited",
        remediation=Remediation(
            f"Send SideQuest support the report `{REPORT_FOR_SUPPORT}` writes (it contains no secrets)."
        ),
    )


def _rate_limited(ctx: Context, exc: IntuitError, what: str, facts: dict, details: list[str]) -> Finding:
    when = retry_time(ctx, exc.retry_after)
    return Finding(
        "fail",
        f"QuickBooks is holding back requests for a moment (too many in a short time); try again {when}.",
        details=details + ["The connection itself is fine; reconnecting does not help."],
        facts={**facts, "limit": "per_minute", "retry_at": _iso(_retry_moment(ctx, exc.retry_after))},
        cause="rate_limited",
        remediation=Remediation(f"Wait, then run `{DOCTOR}` again {when}."),
    )


def _untrusted_certificate(ctx: Context, exc: IntuitError, what: str, facts: dict, details: list[str]) -> Finding:
    issuer = certificate_issuer(exc)
    named = f" (the certificate presented was issued by “{issuer}”)" if issuer else ""
    return Finding(
        "fail",
        f"Could not verify the secure connection to Intuit while looking at {what}: a certificate problem"
        f"{named}, not the internet connection.",
        details=details
        + [
            "A company proxy or antivirus that inspects secure traffic is the usual reason. Install its root "
            "certificate in the system, or set SSL_CERT_FILE to a PEM file that holds it.",
            "Certificate checking stays on; it is never turned off.",
        ],
        facts={**facts, "certificate_issuer": issuer, "certificate_problem": exc.detail, **proxy_facts(ctx)},
        cause="tls_untrusted",
        remediation=Remediation(
            "Install the company's root certificate, or set SSL_CERT_FILE to a PEM file of trusted roots "
            f"that includes it, then run `{DOCTOR}` again."
        ),
    )


# A refusal's own kind names its finding; a plain 429 of another kind is the per-minute limit.
_NAMED_REFUSALS = {
    "access_lost": _access_lost,
    "subscription_lapsed": _subscription_lapsed,
    "monthly_limit": _monthly_limit,
    "rate_limited": _rate_limited,
    "certificate": _untrusted_certificate,
}


def _retry_moment(ctx: Context, retry_after: float | None) -> datetime | None:
    return ctx.now() + timedelta(seconds=retry_after) if retry_after is not None else None


def retry_time(ctx: Context, retry_after: float | None) -> str:
    """When to try again, in words: Intuit's Retry-After, else its documented minute."""
    if retry_after is None:
        return "in a minute (Intuit's per-minute limit; it did not say how long)"
    moment = _retry_moment(ctx, retry_after)
    seconds = int(round(retry_after))
    wait = f"{seconds} seconds" if seconds < 120 else f"{(seconds + 59) // 60} minutes"
    return f"in {wait}, after {moment:%H:%M:%S} UTC"


def certificate_issuer(exc: IntuitError) -> str | None:
    """The issuer the server's certificate names, when the error carries it (never a secret)."""
    issuer = getattr(exc, "issuer", None)
    return str(issuer) if issuer else None


def proxy_facts(ctx: Context) -> dict[str, object]:
    """HTTPS_PROXY / NO_PROXY as this run sees them, without credentials in the proxy URL."""
    from urllib.parse import urlsplit

    proxy = ctx.environ.get("HTTPS_PROXY") or ctx.environ.get("https_proxy")
    no_proxy = ctx.environ.get("NO_PROXY") or ctx.environ.get("no_proxy")
    if proxy:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            port = ""
        proxy = f"{parts.scheme}://{parts.hostname or '?'}{port}"
    return {"https_proxy": proxy or None, "no_proxy": no_proxy or None}


def lookup_failure(ctx: Context, exc: IntuitError, what: str, known: dict[str, object] | None = None) -> Finding:
    """A company lookup failure that is neither a wrong company nor a wrong environment."""
    named = named_refusal(ctx, exc, what, known)
    if named is not None:
        return named
    facts = {**(known or {}), **refusal_facts(exc)}
    details = [f"QuickBooks' answer: {exc}."]
    if exc.kind == "token_rejected":
        return Finding(
            "fail",
            f"QuickBooks refused the connection it had just renewed when asked about {what}: it was most likely "
            "disconnected a moment ago.",
            details=details,
            facts=facts,
            cause="app_disconnected",
            remediation=reauth_remediation(f"Run `{REAUTH}` to connect again."),
        )
    if exc.kind in ("network", "timeout"):
        return Finding(
            "fail",
            f"Could not reach QuickBooks to look up {what}.",
            details=details,
            facts=facts,
            cause="network_unreachable",
        )
    if exc.kind in ("server_error", "bad_response"):
        return Finding(
            "fail",
            f"QuickBooks answered with an error while looking up {what}; this is on Intuit's side.",
            details=details,
            facts=facts,
            cause="intuit_unavailable",
        )
    return Finding(
        "fail", f"QuickBooks refused to look up {what}: {exc}.", details=details, facts=facts, cause="unknown"
    )
