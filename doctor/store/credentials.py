"""What the chain needs, read from `.env` first and the process environment second, key by key.

`.env` wins for every QB_* key: Claude Desktop's `env` block holds a copy of the refresh token
that goes stale after the first rotation (DESIGN.md §6).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from doctor.redaction import redacted_form
from doctor.store.env_file import EnvFileError, read_env_file
from doctor.store.errors import StoreError
from doctor.store.keys import REQUIRED_KEYS
from doctor.store.timestamps import parse_timestamp
from doctor.values import Value

DEFAULT_REDIRECT_URI = "https://sidequestautomation.com/qb/callback"


class Credentials(Value):
    """What the chain needs, read from `.env` (preferred) else the process environment, per key."""

    __slots__ = (
        "client_id",
        "client_secret",
        "refresh_token",
        "realm_id",
        "environment",
        "redirect_uri",
        "refresh_token_source",
        "refreshed_at",
        "expires_at",
        "hard_expires_at",
        "token_environment",
        "token_realm_id",
    )

    def __init__(
        self,
        client_id: str | None,
        client_secret: str | None,
        refresh_token: str | None,
        realm_id: str | None,
        environment: str | None,
        redirect_uri: str,
        refresh_token_source: str,
        refreshed_at: datetime | None,
        expires_at: datetime | None,
        hard_expires_at: datetime | None,
        token_environment: str | None,
        token_realm_id: str | None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.realm_id = realm_id
        self.environment = environment
        self.redirect_uri = redirect_uri
        self.refresh_token_source = refresh_token_source
        self.refreshed_at = refreshed_at
        self.expires_at = expires_at
        self.hard_expires_at = hard_expires_at
        self.token_environment = token_environment
        self.token_realm_id = token_realm_id

    def missing(self, keys: tuple[str, ...] = REQUIRED_KEYS) -> list[str]:
        """Which of `keys` (default: every key a working connector needs) have no value, in that order."""
        present = {
            "QB_CLIENT_ID": self.client_id,
            "QB_CLIENT_SECRET": self.client_secret,
            "QB_REFRESH_TOKEN": self.refresh_token,
            "QB_REALM_ID": self.realm_id,
            "QB_ENVIRONMENT": self.environment,
        }
        return [key for key in keys if not present[key]]

    def __repr__(self) -> str:
        return (
            f"Credentials(client_id={self.client_id!r}, "
            f"client_secret={redacted_form('client_secret', self.client_secret)!r}, "
            f"refresh_token={redacted_form('refresh_token', self.refresh_token)!r}, realm_id={self.realm_id!r}, "
            f"environment={self.environment!r}, refresh_token_source={self.refresh_token_source!r}, "
            f"refreshed_at={self.refreshed_at!r}, expires_at={self.expires_at!r}, "
            f"hard_expires_at={self.hard_expires_at!r})"
        )

    __str__ = __repr__


def read_credentials(env_path: Path, environ: Mapping[str, str]) -> Credentials:
    """A fresh read of `.env`, falling back to `environ` key by key; StoreError when `.env` is unusable."""
    try:
        env_file = read_env_file(env_path)
    except EnvFileError as exc:
        if exc.reason != "missing":
            raise StoreError("env_unreadable", str(exc)) from None
        env_file = None

    def pick(key: str) -> tuple[str | None, str | None]:
        if env_file is not None:
            value = env_file.get(key)
            if value is not None:
                return value, ".env"
        value = (environ.get(key) or "").strip()
        return (value, "environment") if value else (None, None)

    refresh_token, source = pick("QB_REFRESH_TOKEN")
    return Credentials(
        client_id=pick("QB_CLIENT_ID")[0],
        client_secret=pick("QB_CLIENT_SECRET")[0],
        refresh_token=refresh_token,
        realm_id=pick("QB_REALM_ID")[0],
        environment=pick("QB_ENVIRONMENT")[0],
        redirect_uri=pick("QB_REDIRECT_URI")[0] or DEFAULT_REDIRECT_URI,
        refresh_token_source=source or ".env",
        refreshed_at=parse_timestamp(pick("QB_TOKEN_REFRESHED_AT")[0]),
        expires_at=parse_timestamp(pick("QB_REFRESH_TOKEN_EXPIRES_AT")[0]),
        hard_expires_at=parse_timestamp(pick("QB_REFRESH_TOKEN_HARD_EXPIRES_AT")[0]),
        token_environment=pick("QB_TOKEN_ENVIRONMENT")[0],
        token_realm_id=pick("QB_TOKEN_REALM_ID")[0],
    )
