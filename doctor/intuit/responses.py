"""Reading Intuit's successful answers: the token response and the companyinfo read.

Pure functions (bytes + headers in, a value or an IntuitError of kind `bad_response` out), so
every real capture in the corpus can be checked without a server. The header and date readers
live in `wire`, shared with the error classifier, and are re-exported here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

from doctor.intuit.errors import IntuitError, carries_fault, classify_error_response, local_name, parse_xml
from doctor.intuit.wire import decode_body, header_lookup, intuit_tid, parse_server_date
from doctor.redaction import redacted_form

__all__ = [
    "CompanyInfo",
    "TokenResponse",
    "header_lookup",
    "parse_company_info",
    "parse_server_date",
    "parse_token_response",
]


@dataclass(frozen=True, repr=False)
class TokenResponse:
    """A successful answer of the token endpoint (exchange or refresh)."""

    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int | None
    hard_expires_in: int | None
    intuit_tid: str | None
    server_date: datetime | None

    def __repr__(self) -> str:
        return (
            f"TokenResponse(access_token={redacted_form('access_token', self.access_token)!r}, "
            f"refresh_token={redacted_form('refresh_token', self.refresh_token)!r}, "
            f"expires_in={self.expires_in}, refresh_expires_in={self.refresh_expires_in}, "
            f"hard_expires_in={self.hard_expires_in}, intuit_tid={self.intuit_tid!r}, "
            f"server_date={self.server_date!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class CompanyInfo:
    """What the companyinfo read tells the doctor: the token works for this company."""

    company_name: str | None
    realm_id: str
    country: str | None
    intuit_tid: str | None
    server_date: datetime | None


class _Reply:
    """The facts of one 200 answer, and the bad_response error it turns into when unusable."""

    def __init__(self, headers: Mapping[str, str], secrets: Iterable[str]) -> None:
        self.headers = headers
        self.secrets = tuple(secrets)
        self.tid = intuit_tid(headers, self.secrets)
        self.server_date = parse_server_date(header_lookup(headers, "Date"))

    def bad(self, what: str) -> IntuitError:
        return IntuitError("bad_response", status=200, detail=what, intuit_tid=self.tid, server_date=self.server_date)

    def refusal(self, raw: bytes, api: str) -> IntuitError | None:
        """The error a 200 answer really carries (a Fault, an OAuth error), classified as if its status said so."""
        if not carries_fault(raw):
            return None
        return classify_error_response(200, raw, self.headers, api=api, secrets=self.secrets)  # type: ignore[arg-type]


# Durations are metadata: a number longer than this many digits (10^18 s is far past any real
# lifetime) is unusable, and Python refuses to turn more than 4300 digits into an int at all (a
# ValueError that, after a rotation, would have cost the user the new token: issue 9 §2).
_MAX_DIGITS = 18
# Intuit's access tokens live an hour (INTUIT.md §2.2): what an unusable expires_in stands for.
DEFAULT_ACCESS_SECONDS = 3600


def _bounded_int(text: str) -> int | None:
    """json's parse_int: an integer literal, or None when it is too long to be a duration."""
    digits = text.lstrip("-")
    return int(text) if len(digits) <= _MAX_DIGITS else None


def _as_seconds(value: Any) -> int | None:
    """expires_in arrives as 3600 or "3600" (corpus/intuit/03); anything else is unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 10**_MAX_DIGITS:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= _MAX_DIGITS:
        return int(value.strip())
    return None


def parse_token_response(body: bytes, headers: Mapping[str, str], secrets: Iterable[str] = ()) -> TokenResponse:
    """A 200 answer of the token endpoint; IntuitError(bad_response) when it is not one.

    `secrets` (the values sent) keep an intuit_tid that echoes one of them out of the answer.
    """
    reply = _Reply(headers, secrets)
    raw = decode_body(body)
    if not raw:
        raise reply.bad("empty body where the tokens were expected")
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"), parse_int=_bounded_int)
    except ValueError:
        raise reply.bad("token answer is not valid JSON (truncated or an HTML page)") from None
    if not isinstance(data, dict):
        raise reply.bad("token answer is not a JSON object")
    if "access_token" not in data:
        raise reply.refusal(raw, "token") or reply.bad("token answer has no access_token")
    access_token = data.get("access_token")
    refresh_token = data.get("refresh_token")
    expires_in = _as_seconds(data.get("expires_in"))
    if not isinstance(access_token, str) or not access_token.strip():
        raise reply.bad("token answer has no access_token")
    if not isinstance(refresh_token, str) or not refresh_token.strip():
        raise reply.bad("token answer has no refresh_token")
    if expires_in is None:
        # The tokens are what matters once Intuit has rotated: an unusable lifetime is metadata.
        expires_in = DEFAULT_ACCESS_SECONDS
    return TokenResponse(
        access_token=access_token.strip(),
        refresh_token=refresh_token.strip(),
        expires_in=expires_in,
        refresh_expires_in=_as_seconds(data.get("x_refresh_token_expires_in")),
        hard_expires_in=_as_seconds(data.get("x_refresh_token_hard_expires_in")),
        intuit_tid=reply.tid,
        server_date=reply.server_date,
    )


def parse_company_info(
    body: bytes, headers: Mapping[str, str], realm_id: str, secrets: Iterable[str] = ()
) -> CompanyInfo:
    """A 200 companyinfo answer (JSON, or XML when Accept was ignored); bad_response otherwise."""
    reply = _Reply(headers, secrets)
    raw = decode_body(body)
    if not raw:
        raise reply.bad("empty body where the company was expected")
    if raw[:1] == b"<":
        name, country = _company_from_xml(reply, raw)
    else:
        name, country = _company_from_json(reply, raw)
    return CompanyInfo(name, realm_id, country, reply.tid, reply.server_date)


def _company_from_xml(reply: _Reply, raw: bytes) -> tuple[str | None, str | None]:
    """(CompanyName, Country) from an XML companyinfo answer."""
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise reply.bad("company answer is an HTML page or carries a DOCTYPE")
    try:
        root = parse_xml(raw)
    except ValueError:
        raise reply.bad("company answer is malformed XML") from None
    info = next((e for e in root.iter() if local_name(e.tag) == "CompanyInfo"), None)
    if info is None:
        raise reply.refusal(raw, "qbo") or reply.bad("XML answer without CompanyInfo")
    name = country = None
    for child in info:
        if local_name(child.tag) == "CompanyName":
            name = (child.text or "").strip() or None
        elif local_name(child.tag) == "Country":
            country = (child.text or "").strip() or None
    return name, country


def _company_from_json(reply: _Reply, raw: bytes) -> tuple[str | None, str | None]:
    """(CompanyName, Country) from a JSON companyinfo answer, or a one-row CompanyInfo query."""
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"), parse_int=_bounded_int)
    except ValueError:
        raise reply.bad("company answer is not valid JSON (truncated or an HTML page)") from None
    info = data.get("CompanyInfo") if isinstance(data, dict) else None
    if info is None and isinstance(data, dict):
        query = data.get("QueryResponse")
        rows = query.get("CompanyInfo") if isinstance(query, dict) else None
        info = rows[0] if isinstance(rows, list) and rows else None
    if not isinstance(info, dict):
        raise reply.refusal(raw, "qbo") or reply.bad("JSON answer without CompanyInfo")
    name = info.get("CompanyName")
    country = info.get("Country")
    return (
        str(name) if name not in (None, "") else None,
        str(country) if country not in (None, "") else None,
    )
