"""What arrives on the wire, before it is read as an answer or an error: headers, dates, bodies.

Both the answer parsers (`responses`) and the error classifier (`errors`) start from the same
raw pieces, so the small readers they share live here, below both: a case-insensitive header
lookup, the HTTP Date, the `intuit_tid` id people quote to Intuit support, a bounded body, and
the one-line masked text that may be shown from a body.
"""

from __future__ import annotations

import binascii
import json
import re
from datetime import datetime, timezone
from typing import Iterable, Mapping
from urllib.parse import quote, quote_plus

# Intuit's answers are a few hundred bytes; anything near this is not an Intuit answer.
MAX_BODY_BYTES = 1_000_000
# A detail is one short line for a person, not a dump.
MAX_DETAIL_CHARS = 200
# Intuit's transaction ids are about 40 characters ("1-6904c7a6-4f2a5d1b..."); more is not an id.
MAX_TID_CHARS = 64
# A tid sharing a run this long with a secret we sent is an echo of that secret, not an id.
TID_ECHO_RUN = 8
# Shorter values would match ordinary words.
MIN_SECRET_CHARS = 4
# Long runs of token alphabet with both letters and digits are ids Intuit echoes back
# ("Token expired: <id>", "Refresh token not found: AB115x..."): never show them whole.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9._~+/=\-]{24,}")
_NOT_TID = re.compile(r"[^A-Za-z0-9-]")


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


def intuit_tid(headers: Mapping[str, str], secrets: Iterable[str] = ()) -> str | None:
    """The `intuit_tid` header as the opaque id it is: only [A-Za-z0-9-], at most MAX_TID_CHARS.

    It is shown to people and carried by the exceptions the connector API raises, so a broken
    or hostile server must not be able to put control bytes, a token or the client secret
    there: a value that shares a run of TID_ECHO_RUN characters with any form of a secret sent
    with the request (`secrets`: plain, encoded, base64) is dropped, not shortened.
    """
    tid = header_lookup(headers, "intuit_tid")
    if tid is None:
        return None
    tid = _NOT_TID.sub("", tid)[:MAX_TID_CHARS]
    if not tid or _echoes_a_secret(tid, secrets):
        return None
    return tid


def _echoes_a_secret(tid: str, secrets: Iterable[str]) -> bool:
    forms = [_NOT_TID.sub("", form) for form in secret_forms(secrets)]
    forms = [form for form in forms if len(form) >= TID_ECHO_RUN]
    if not forms:
        return False
    runs = {tid[i : i + TID_ECHO_RUN] for i in range(len(tid) - TID_ECHO_RUN + 1)}
    return any(run in form for form in forms for run in runs)


def secret_forms(secrets: Iterable[str]) -> list[str]:
    """Every way a secret we sent can come back in an answer, longest first.

    Plain, URL-encoded (as sent, and with every byte percent-encoded, upper and lower case),
    JSON-escaped and base64; the caller adds the Basic header's base64 as a secret of its own.
    """
    forms: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < MIN_SECRET_CHARS:
            continue
        raw = secret.encode("utf-8")
        every_byte = "".join(f"%{byte:02X}" for byte in raw)
        forms.update((secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]))
        forms.update((every_byte, every_byte.lower()))
        encoded = binascii.b2a_base64(raw, newline=False).decode("ascii")
        forms.update((encoded, encoded.rstrip("=")))
    return sorted((form for form in forms if form), key=len, reverse=True)


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
    for form in secret_forms(secrets):
        text = text.replace(form, "…")
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
