"""The two ways the token store says no: StoreError (cannot do its job) and LockTimeout (busy).

Both messages are for a person and hold no secret: they name files, keys and processes, never values.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from doctor.store.lock_records import OwnerRecord


class LockTimeout(Exception):
    """The `.env` lock stayed taken for the whole bounded wait."""

    def __init__(self, holder: OwnerRecord | None, waited: float, now: datetime | None = None) -> None:
        self.holder = holder
        self.waited = waited
        if holder is not None:
            who = holder.describe(now or datetime.now(timezone.utc))
        else:
            who = "holder unknown (no owner record)"
        super().__init__(f"the .env lock is held by another process — {who}; gave up after waiting {waited:.1f} s")


def scrub(error: Exception, secrets: Iterable[tuple[str, str]], client_id: str | None = None) -> None:
    """Replace every known secret in `error`'s message with its redacted form, in place.

    The messages are built from paths, file names, OS errors and the owner record beside the lock,
    which another process wrote: none should hold a secret, and this makes sure none does.
    """
    from doctor.redaction import Redactor

    redactor = Redactor(secrets, client_id)
    error.args = tuple(redactor.redact_text(a) if isinstance(a, str) else a for a in error.args)


class StoreError(Exception):
    """The store cannot do its job; the message is for a person and holds no secret.

    `reason`: not_configured, env_unreadable, lock_failed, write_failed. After a rotation that
    could not be saved, `kept_in` is the recovery file holding the new token (None when even that
    failed and the user must reconnect, or when no new token was at stake).
    """

    def __init__(
        self, reason: str, message: str, missing: tuple[str, ...] = (), *, kept_in: Path | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.missing = missing
        self.kept_in = kept_in
