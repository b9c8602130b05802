"""One rotation of the chain: ask Intuit (one retry of a blip), then turn the answer into `.env` updates.

Intuit rotates the refresh token and invalidates the old one (INTUIT.md §2.3), so the answer of a
refresh must reach `.env` before the lock is let go. This module holds what a rotation decides;
the token store holds the lock around it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from doctor.redaction import redacted_form
from doctor.store.env_file import EnvFileError, update_env_file
from doctor.store.errors import StoreError
from doctor.store.timestamps import format_timestamp
from doctor.values import Value

if TYPE_CHECKING:  # pragma: no cover
    from doctor.intuit.client import IntuitClient, TokenResponse

# One retry of a transient failure, after a pause long enough for a blip to pass but short
# enough that the connector's tool call still answers promptly.
RETRY_BACKOFF_SECONDS = 0.5
# Errors that mean "this token or app is dead": retrying only burns the user's time.
NEVER_RETRY = frozenset({"invalid_grant", "invalid_client"})


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
    client: IntuitClient, client_id: str, client_secret: str, refresh_token: str
) -> tuple[TokenResponse, int]:
    """The token response and the number of calls it took: a transient failure is retried once."""
    from doctor.intuit.client import IntuitError

    attempts = 0
    while True:
        attempts += 1
        try:
            return client.refresh(client_id, client_secret, refresh_token), attempts
        except IntuitError as exc:
            if attempts == 1 and exc.retryable and exc.kind not in NEVER_RETRY:
                time.sleep(RETRY_BACKOFF_SECONDS)
                continue
            raise


def metadata(token: TokenResponse, now: datetime, *, drop_missing_hard: bool) -> dict[str, str | None]:
    """The metadata keys (§6) a token response sets."""
    updates: dict[str, str | None] = {"QB_TOKEN_REFRESHED_AT": format_timestamp(now)}
    if token.refresh_expires_in is not None:
        updates["QB_REFRESH_TOKEN_EXPIRES_AT"] = format_timestamp(now + timedelta(seconds=token.refresh_expires_in))
    if token.hard_expires_in is not None:
        updates["QB_REFRESH_TOKEN_HARD_EXPIRES_AT"] = format_timestamp(now + timedelta(seconds=token.hard_expires_in))
    elif drop_missing_hard:
        # A new consent starts a new chain: an old chain's hard cap no longer applies.
        updates["QB_REFRESH_TOKEN_HARD_EXPIRES_AT"] = None
    return updates


def save(env_path: Path, updates: Mapping[str, str | None]) -> None:
    """Write `updates` into `.env` (the caller holds the lock); StoreError(write_failed) when it cannot."""
    try:
        update_env_file(env_path, updates)
    except EnvFileError as exc:
        raise StoreError("write_failed", f"could not save the new token to .env: {exc}") from None
    except OSError as exc:
        raise StoreError(
            "write_failed", f"could not save the new token to {env_path}: {exc.strerror or type(exc).__name__}"
        ) from None
