"""One rotation of the chain: ask Intuit (one retry of a blip), then turn the answer into `.env` updates.

Intuit rotates the refresh token and invalidates the old one (INTUIT.md §2.3), so the answer of a
refresh must reach `.env` before the lock is let go. This module holds what a rotation decides;
the token store holds the lock around it.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from doctor.redaction import redacted_form
from doctor.store.timestamps import format_timestamp
from doctor.values import Value

if TYPE_CHECKING:  # pragma: no cover
    from doctor.intuit.client import IntuitClient
    from doctor.intuit.responses import TokenResponse

# One retry of a transient failure, after a pause long enough for a blip to pass but short
# enough that the connector's tool call still answers promptly.
RETRY_BACKOFF_SECONDS = 0.5
# Errors that mean "this token or app is dead": retrying only burns the user's time.
NEVER_RETRY = frozenset({"invalid_grant", "invalid_client"})
# A retry is only worth starting with at least this much of the budget left after the pause.
MIN_ATTEMPT_SECONDS = 1.0
# Durations in a token answer are metadata: one outside these bounds (say 10^12 s, which would
# overflow a date) is ignored rather than allowed to stop the new token from being saved.
ACCESS_SECONDS = 3600  # Intuit's access tokens live an hour (INTUIT.md §2.2)
MAX_ACCESS_SECONDS = 24 * 3600
MAX_LIFETIME_SECONDS = 20 * 365 * 24 * 3600  # the hard cap is 5 years; 20 leaves room and stays far from overflow


class RefreshResult(Value):
    __slots__ = (
        "access_token",
        "refresh_token",
        "rotated",
        "previous_refresh_token",
        "refreshed_at",
        "expires_at",
        "hard_expires_at",
        "intuit_tid",
        "attempts",
    )

    def __init__(
        self,
        access_token: str,
        refresh_token: str,
        rotated: bool,
        previous_refresh_token: str,
        refreshed_at: datetime,
        expires_at: datetime | None,
        hard_expires_at: datetime | None,
        intuit_tid: str | None,
        attempts: int,
    ) -> None:
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.rotated = rotated
        self.previous_refresh_token = previous_refresh_token
        self.refreshed_at = refreshed_at
        self.expires_at = expires_at
        self.hard_expires_at = hard_expires_at
        self.intuit_tid = intuit_tid
        self.attempts = attempts

    def __repr__(self) -> str:
        return (
            f"RefreshResult(access_token={redacted_form('access_token', self.access_token)!r}, "
            f"refresh_token={redacted_form('refresh_token', self.refresh_token)!r}, rotated={self.rotated}, "
            f"previous_refresh_token={redacted_form('refresh_token', self.previous_refresh_token)!r}, "
            f"refreshed_at={self.refreshed_at!r}, expires_at={self.expires_at!r}, "
            f"hard_expires_at={self.hard_expires_at!r}, intuit_tid={self.intuit_tid!r}, attempts={self.attempts})"
        )

    __str__ = __repr__


def ask_intuit(
    client: IntuitClient, client_id: str, client_secret: str, refresh_token: str, *, deadline: float | None = None
) -> tuple[TokenResponse, int]:
    """The token response and the number of calls it took: a transient failure is retried once.

    `deadline` (time.monotonic()) bounds every call on the wall clock, and a retry starts only when
    enough of it is left, so a stalled Intuit can never keep the caller (and the .env lock) for long.
    """
    from doctor.intuit.errors import IntuitError

    attempts = 0
    while True:
        attempts += 1
        try:
            return client.refresh(client_id, client_secret, refresh_token, deadline=deadline), attempts
        except IntuitError as exc:
            time_left = deadline is None or deadline - time.monotonic() > RETRY_BACKOFF_SECONDS + MIN_ATTEMPT_SECONDS
            if attempts == 1 and exc.retryable and exc.kind not in NEVER_RETRY and time_left:
                time.sleep(RETRY_BACKOFF_SECONDS)
                continue
            raise


def _seconds(value: object, longest: int) -> int | None:
    """A duration Intuit reported, when it is a sane one; None for a missing or absurd value."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= longest:
        return None
    return value


def _after(now: datetime, seconds: int | None) -> str | None:
    if seconds is None:
        return None
    try:
        return format_timestamp(now + timedelta(seconds=seconds))
    except (OverflowError, ValueError):
        return None


def access_expiry(token: TokenResponse, now: datetime) -> datetime:
    """When the access token dies; an absurd `expires_in` counts as Intuit's usual hour."""
    seconds = _seconds(token.expires_in, MAX_ACCESS_SECONDS)
    return now + timedelta(seconds=ACCESS_SECONDS if seconds is None else seconds)


def metadata(token: TokenResponse, now: datetime, *, drop_missing_hard: bool) -> dict[str, str | None]:
    """The metadata keys (§6) a token response sets. Never raises: they are only metadata."""
    updates: dict[str, str | None] = {"QB_TOKEN_REFRESHED_AT": format_timestamp(now)}
    expires = _after(now, _seconds(token.refresh_expires_in, MAX_LIFETIME_SECONDS))
    if expires is not None:
        updates["QB_REFRESH_TOKEN_EXPIRES_AT"] = expires
    hard = _after(now, _seconds(token.hard_expires_in, MAX_LIFETIME_SECONDS))
    if hard is not None:
        updates["QB_REFRESH_TOKEN_HARD_EXPIRES_AT"] = hard
    elif drop_missing_hard:
        # A new consent starts a new chain: an old chain's hard cap no longer applies.
        updates["QB_REFRESH_TOKEN_HARD_EXPIRES_AT"] = None
    return updates
