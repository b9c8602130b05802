"""UTC timestamps as `.env`'s metadata keys and the lock's owner record store them (DESIGN.md §9a).

Every offline doctor run reads them, so this module imports nothing beyond `datetime`.
"""

from __future__ import annotations

from datetime import datetime, timezone


def format_timestamp(moment: datetime) -> str:
    """UTC ISO-8601, seconds precision, `Z` suffix (DESIGN.md §9a)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str | None) -> datetime | None:
    """A stored timestamp as an aware UTC datetime; None when absent or not a timestamp."""
    if not text:
        return None
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        return None
