"""What arrives on the wire, before it is read as an answer or an error: headers, dates, bodies.

Both the answer parsers (`responses`) and the error classifier (`errors`) start from the same
raw pieces, so the small readers they share live here, below both: a case-insensitive header
lookup, the HTTP Date, the `intuit_tid` id people quote to Intuit support, a bounded body, and
the one-line masked text that may be shown from a body.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Iterable, Mapping

# Intuit's answers are a few hundred bytes; anything near this is not an Intuit answer.
MAX_BODY_BYTES = 1_000_000
# A detail is one short line for a person, not a dump.
MAX_DETAIL_CHARS = 200
# Long runs of token alphabet with both letters and digits are ids Intuit echoes back
# ("Token expired: <id>", "Refresh token not found: AB115x..."): never show them whole.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9._~+/=\-]{24,}")
_NOT_PRINTABLE = re.compile(r"[^\x21-\x7e]")


def header_lookup(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header read that works for plain dicts as well as httpx.Headers."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                value = candidate
                break
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def parse_server_date(value: str | None) -> datetime | None:
    """The HTTP Date header as an aware UTC datetime, or None when absent or unreadable."""
    if not value:
        return None
    from email.utils import parsedate_to_datetime  # only live answers carry a Date

    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def intuit_tid(headers: Mapping[str, str]) -> str | None:
    """The `intuit_tid` header: only an id, but echoed to people, so one short printable line."""
    tid = header_lookup(headers, "intuit_tid")
    if tid is None:
        return None
    tid = _NOT_PRINTABLE.sub("", tid)[:80]
    return tid or None


def decode_body(body: bytes) -> bytes:
    """The body, bounded, without a UTF-8 byte-order mark and surrounding whitespace."""
    body = bytes(body[:MAX_BODY_BYTES])
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    return body.strip()


def clean_text(text: str | None, secrets: Iterable[str] = ()) -> str | None:
    """One short, masked line from a piece of Intuit's body text."""
    if text is None:
        return None
    text = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "…")
    text = " ".join(text.split())
    text = _TOKEN_LIKE.sub(_mask_token_like, text)
    if len(text) > MAX_DETAIL_CHARS:
        text = text[: MAX_DETAIL_CHARS - 1].rstrip() + "…"
    return text or None


def _mask_token_like(match: re.Match[str]) -> str:
    run = match.group(0)
    if any(c.isdigit() for c in run) and any(c.isalpha() for c in run):
        return "…" + run[-4:]
    return run
