"""The recovery file: where a rotated refresh token waits when `.env` could not take it.

If saving fails after Intuit has rotated the token, the new token is the only live one. It is
kept in `HOME/.env.recovery` (JSON, mode 0600, written like `.env`: temp file, fsync, replace),
with the `.env` updates it belongs to and a fingerprint of the token it replaces. The next
refresh (refresh-qb, the doctor's, the connector's get_access_token) finds it under the lock and
finishes the save — but only while `.env` still holds the token it replaces, so a file left from
an older chain (say, before a reauth-qb) is never written over a newer one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from doctor.store.atomic_file import replace_atomically
from doctor.values import Value

RECOVERY_NAME = ".env.recovery"
RECOVERY_MODE = 0o600
MAX_RECOVERY_BYTES = 64 * 1024


def fingerprint(token: str | None) -> str:
    return hashlib.sha256((token or "").encode("utf-8", "surrogatepass")).hexdigest()


class Kept(Value):
    """A saved-for-later rotation: the `.env` updates (the new token first) and whom they replace."""

    __slots__ = ("updates", "replaces")

    def __init__(self, updates: dict[str, str | None], replaces: str) -> None:
        self.updates = updates  # holds the new refresh token: never in the repr
        self.replaces = replaces

    def __repr__(self) -> str:
        return f"Kept(keys={list(self.updates)!r})"

    @property
    def refresh_token(self) -> str:
        return self.updates.get("QB_REFRESH_TOKEN") or ""

    def applies_to(self, current_token: str | None) -> bool:
        """Does `.env` still hold the token this rotation replaced?"""
        return fingerprint(current_token) == self.replaces


def keep(home: Path, updates: Mapping[str, str | None], replaces: str | None) -> Path:
    """Write the recovery file; OSError when even that is impossible."""
    path = home / RECOVERY_NAME
    text = json.dumps({"updates": dict(updates), "replaces_sha256": fingerprint(replaces)})
    replace_atomically(path, text.encode("ascii"), RECOVERY_MODE, prefix=RECOVERY_NAME + ".tmp-")
    return path


def load(home: Path) -> Kept | None:
    """The waiting rotation, or None when there is none (or the file is not one of ours)."""
    try:
        with open(home / RECOVERY_NAME, "rb") as handle:
            data = json.loads(handle.read(MAX_RECOVERY_BYTES).decode("ascii"))
        updates, replaces = data["updates"], data["replaces_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(updates, dict) or not isinstance(replaces, str) or not updates.get("QB_REFRESH_TOKEN"):
        return None
    if not all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in updates.items()):
        return None
    return Kept(updates, replaces)


def discard(home: Path) -> None:
    try:
        os.unlink(home / RECOVERY_NAME)
    except OSError:
        pass
