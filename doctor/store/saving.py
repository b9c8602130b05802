"""Getting a token response into `.env` without ever dropping the new refresh token.

Intuit kills the old refresh token when it issues a new one (INTUIT.md §2.3), so once a token
response has arrived, failing to save it costs the user a reconnect. Three defences live here:
`prove_writable` (before calling Intuit, write and fsync a file as large as the new `.env` beside
it, so a read-only folder, a full disk or a file-size limit is found while nothing is at stake),
`unstorable` (a token `.env` cannot hold is known before anything is written), and `save` (the
one write, whose failure the store answers with a recovery file, see `recovery`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from doctor.store.atomic_file import ForeignTarget, remove_quietly, resolve_for_write, write_temp
from doctor.store.env_file import TEMP_PREFIX, EnvFileError, update_env_file
from doctor.store.errors import StoreError

# Room for the new token and the metadata keys on top of today's `.env` (a token is ~90 characters).
WRITE_MARGIN_BYTES = 4096
# Intuit's tokens are a few hundred characters at most; anything longer is not a token, and a
# `.env` that large would be refused on the next read.
MAX_TOKEN_CHARS = 4096


class Unstorable(Exception):
    """Intuit sent a refresh token `.env` cannot hold; the message says why, never the token."""


def error_text(exc: BaseException) -> str:
    """What went wrong, for a person, without quoting any value (OSError's filename is dropped)."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, (EnvFileError, StoreError, Unstorable)):
        return str(exc)
    return type(exc).__name__


def prove_writable(env_path: Path) -> None:
    """Write, fsync and remove a file of the new `.env`'s size beside it; StoreError when that fails."""
    try:
        target = resolve_for_write(env_path)
    except ForeignTarget as exc:
        raise StoreError("write_failed", f"{exc}; nothing was sent to Intuit") from None
    try:
        size = os.stat(target).st_size
    except OSError:
        size = 0
    try:
        temp = write_temp(target, bytes(size + WRITE_MARGIN_BYTES), 0o600, prefix=TEMP_PREFIX)
    except OSError as exc:
        raise StoreError(
            "write_failed",
            f"cannot write in {target.parent} ({error_text(exc)}), so a new token could not be saved; "
            "nothing was sent to Intuit and the saved connection is unchanged",
        ) from None
    remove_quietly(temp)


def unstorable(token: str) -> str | None:
    """Why `.env` cannot hold `token` (python-dotenv has no escape for NUL), or None when it can."""
    if "\x00" in token:
        return "it contains a NUL character"
    if len(token) > MAX_TOKEN_CHARS:
        return f"it is longer than {MAX_TOKEN_CHARS} characters"
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid text"
    return None


def save_token_answer(env_path: Path, updates: Mapping[str, str | None]) -> None:
    """The save right after a token answer; raises the cause itself so the caller can keep the token."""
    token = updates.get("QB_REFRESH_TOKEN")
    problem = unstorable(token) if token is not None else None
    if problem is not None:
        raise Unstorable(f".env cannot hold it: {problem}")
    update_env_file(env_path, updates)


def save(env_path: Path, updates: Mapping[str, str | None]) -> None:
    """Write `updates` into `.env` (the caller holds the lock); StoreError(write_failed) when it cannot."""
    try:
        update_env_file(env_path, updates)
    except EnvFileError as exc:
        raise StoreError("write_failed", f"could not save the new token to .env: {exc}") from None
    except (OSError, ValueError, UnicodeError) as exc:
        raise StoreError("write_failed", f"could not save the new token to {env_path}: {error_text(exc)}") from None
