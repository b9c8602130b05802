"""The one place SideQuest talks HTTP to Intuit: OAuth token calls and the QBO companyinfo read.

Why a module of its own: DESIGN.md keeps HTTP in one swappable module, and the offline doctor
must start without importing httpx, so httpx is imported lazily inside the calls that need it.
Every failure becomes an `IntuitError` whose `kind` names the situation the doctor diagnoses
(refused refresh token, wrong company, wrong environment, Intuit down, ...). Intuit answers
errors in at least five shapes (INTUIT.md §3); `classify_error_response` is the pure parser
that maps all of them, so it can be tested against the real captures in the corpus without a
server. Nothing here retries: the retry policy belongs to the token store, which knows whether
a second attempt could lose a rotated refresh token.

No secret value ever reaches a message, a repr or a detail: known values are scrubbed, long
token-like ids that Intuit echoes in error details are masked, and bodies are never quoted raw.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import threading
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping
from urllib.parse import quote, urlencode, urlsplit

from doctor.redaction import redacted_form

if TYPE_CHECKING:  # pragma: no cover
    import httpx

ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
MINOR_VERSION = 75
# Intuit's answers are a few hundred bytes; anything near this is not an Intuit answer.
MAX_BODY_BYTES = 1_000_000
# A detail is one short line for a person, not a dump.
MAX_DETAIL_CHARS = 200
HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"

KINDS: tuple[str, ...] = (
    "invalid_grant",
    "invalid_client",
    "invalid_request",
    "token_rejected",
    "wrong_realm",
    "access_lost",
    "wrong_cluster",
    "wrong_environment",
    "http_error",
    "server_error",
    "bad_response",
    "network",
    "timeout",
    "insecure_url",
)
ENVIRONMENTS: tuple[str, ...] = ("production", "sandbox")

_DEFAULT_URLS = {
    "authorize": "https://appcenter.intuit.com/connect/oauth2",
    "token": "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
    "revoke": "https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
    "qbo_production": "https://quickbooks.api.intuit.com",
    "qbo_sandbox": "https://sandbox-quickbooks.api.intuit.com",
}
_ENV_VARS = {
    "authorize": "SIDEQUEST_OAUTH_AUTHORIZE_URL",
    "token": "SIDEQUEST_OAUTH_TOKEN_URL",
    "revoke": "SIDEQUEST_OAUTH_REVOKE_URL",
    "qbo_production": "SIDEQUEST_QBO_URL_PRODUCTION",
    "qbo_sandbox": "SIDEQUEST_QBO_URL_SANDBOX",
}


@dataclass(frozen=True)
class Endpoints:
    """Where Intuit lives; every URL can be overridden from the environment (DESIGN.md §7)."""

    authorize: str = _DEFAULT_URLS["authorize"]
    token: str = _DEFAULT_URLS["token"]
    revoke: str = _DEFAULT_URLS["revoke"]
    qbo_production: str = _DEFAULT_URLS["qbo_production"]
    qbo_sandbox: str = _DEFAULT_URLS["qbo_sandbox"]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Endpoints:
        """Intuit's real URLs unless a SIDEQUEST_* variable says otherwise (blank = unset)."""
        source = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for field_name, var in _ENV_VARS.items():
            value = (source.get(var) or "").strip()
            values[field_name] = value or _DEFAULT_URLS[field_name]
        # A trailing slash would produce "//v3/company" paths that some proxies reject.
        values["qbo_production"] = values["qbo_production"].rstrip("/")
        values["qbo_sandbox"] = values["qbo_sandbox"].rstrip("/")
        return cls(**values)

    def qbo_base(self, environment: str) -> str:
        """The QBO API base URL for "production" or "sandbox" (ValueError for anything else)."""
        normalised = normalise_environment(environment)
        return self.qbo_production if normalised == "production" else self.qbo_sandbox


def normalise_environment(environment: str) -> str:
    """ "Production " and "SANDBOX" are what people type; anything else is a configuration error."""
    normalised = (environment or "").strip().lower()
    if normalised not in ENVIRONMENTS:
        raise ValueError(f"environment must be 'production' or 'sandbox', not {environment!r}")
    return normalised


def check_url_allowed(url: str) -> None:
    """Refuse to send anything to a URL unless it is https, or plain http to this machine.

    Credentials travel in every Intuit request, so plain http is only acceptable when the
    bytes never leave the loopback interface (the tests' fake Intuit, a local proxy).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        scheme = parts.scheme.lower()
    except ValueError:
        raise IntuitError("insecure_url", "Refusing a malformed Intuit URL") from None
    shown = f"{scheme}://{host}" if scheme else "(no scheme)"
    if scheme == "https" and host:
        return
    if scheme == "http" and host and _is_loopback(host):
        return
    if scheme == "http":
        raise IntuitError(
            "insecure_url",
            f"Refusing to send credentials over plain http to {shown}: "
            "only https, or http to 127.0.0.1/::1/localhost, is allowed",
        )
    raise IntuitError("insecure_url", f"Refusing URL {shown}: only https (or loopback http) is allowed")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


_HEADLINES = {
    "invalid_client": "Intuit rejected the app's client ID or client secret",
    "invalid_request": "Intuit rejected the token request as malformed",
    "token_rejected": "QuickBooks rejected the access token (expired, revoked or malformed)",
    "wrong_realm": "QuickBooks says the access token does not belong to this company (realm ID)",
    "access_lost": "QuickBooks says the user who connected the app no longer has access to this company",
    "wrong_cluster": "QuickBooks says the request reached the wrong cluster "
    "(a production token on sandbox, or the reverse)",
    "wrong_environment": "QuickBooks refused the token for this environment "
    "(sandbox vs production) or for missing scope",
    "http_error": "Intuit answered with an error",
    "server_error": "Intuit had a server-side problem",
    "bad_response": "Intuit's answer could not be understood",
    "network": "Could not reach Intuit",
    "timeout": "Intuit did not answer in time",
    "insecure_url": "Refusing an insecure Intuit URL",
}


class IntuitError(Exception):
    """Any failure talking to Intuit, classified by `kind` (one of KINDS).

    str(err) is one secret-free line for a person; the attributes carry the facts a probe
    needs (status, Intuit's error code, a short masked detail, the intuit_tid to quote to
    Intuit support, and whether trying again later could help).
    """

    def __init__(
        self,
        kind: str,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
        intuit_tid: str | None = None,
        server_date: datetime | None = None,
        retryable: bool | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown IntuitError kind {kind!r}")
        self.kind = kind
        self.status = status
        self.code = code
        self.detail = detail
        self.intuit_tid = intuit_tid
        self.server_date = server_date
        if retryable is None:
            retryable = kind in ("network", "timeout", "server_error") or status == 429
        self.retryable = retryable
        self.message = message or _compose_message(kind, status, code, detail, intuit_tid)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def _compose_message(
    kind: str,
    status: int | None,
    code: str | None,
    detail: str | None,
    intuit_tid: str | None,
    headline: str | None = None,
) -> str:
    headline = headline or _HEADLINES.get(kind, "Intuit call failed")
    facts: list[str] = []
    if status is not None:
        facts.append(f"HTTP {status}")
    if code and detail:
        facts.append(f"{code}: {detail}")
    elif code or detail:
        facts.append(code or detail or "")
    text = headline + (f" ({', '.join(facts)})" if facts else "")
    if intuit_tid:
        text += f" [intuit_tid {intuit_tid}]"
    return text


# ---------------------------------------------------------------------------------------------
# Parsing Intuit's answers (pure: bytes + headers in, TokenResponse / CompanyInfo / IntuitError out)

_TOKEN_ERROR_KINDS = {
    "invalid_grant": "invalid_grant",
    "invalid_client": "invalid_client",
    "invalid_request": "invalid_request",
    "unauthorized_client": "invalid_request",
    "unsupported_grant_type": "invalid_request",
    "invalid_scope": "invalid_request",
}
_FAULT_CODE_KINDS = {
    "3200": "token_rejected",
    "3100": "wrong_environment",
    "100": "wrong_realm",
    "120": "access_lost",
    "130": "wrong_cluster",
}
# Long runs of token alphabet with both letters and digits are ids Intuit echoes back
# ("Token expired: <id>", "Refresh token not found: AB115x..."): never show them whole.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9._~+/=\-]{24,}")
_ERROR_CODE_IN_MESSAGE = re.compile(r"errorCode=0*(\d+)")
_MESSAGE_NAME = re.compile(r"message=([A-Za-z]+)")
_XML_ERROR_CODE = re.compile(rb"<(?:\w+:)?Error\s+code=[\"'](\d+)[\"']")
_XML_MESSAGE = re.compile(r"<(?:\w+:)?Message>([^<]{0,300})</(?:\w+:)?Message>")
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


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
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _intuit_tid(headers: Mapping[str, str]) -> str | None:
    tid = header_lookup(headers, "intuit_tid")
    if tid is None:
        return None
    # It is only an id, but it is echoed to people: keep it one short printable line.
    tid = re.sub(r"[^\x21-\x7e]", "", tid)[:80]
    return tid or None


def _clean_text(text: str | None, secrets: Iterable[str] = ()) -> str | None:
    """One short, masked line from a piece of Intuit's body text."""
    if text is None:
        return None
    text = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "…")
    text = " ".join(text.split())

    def mask(match: re.Match[str]) -> str:
        run = match.group(0)
        if any(c.isdigit() for c in run) and any(c.isalpha() for c in run):
            return "…" + run[-4:]
        return run

    text = _TOKEN_LIKE.sub(mask, text)
    if len(text) > MAX_DETAIL_CHARS:
        text = text[: MAX_DETAIL_CHARS - 1].rstrip() + "…"
    return text or None


def _decode_body(body: bytes) -> bytes:
    body = bytes(body[:MAX_BODY_BYTES])
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    return body.strip()


def _looks_like_html(text: str) -> bool:
    head = text[:1024].lower()
    return head.startswith(("<!doctype html", "<html", "<head", "<body")) or "<html" in head


def _fault_from_json(data: Any) -> tuple[str | None, str | None, str | None, str | None] | None:
    """(code, message, detail, fault type) from a lowercase or capitalised JSON fault."""
    if not isinstance(data, dict):
        return None
    fault = data.get("fault") if isinstance(data.get("fault"), dict) else None
    if fault is None and isinstance(data.get("Fault"), dict):
        fault = data["Fault"]
    if fault is None:
        return None
    errors = fault.get("error", fault.get("Error"))
    first: dict[str, Any] = {}
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
    elif isinstance(errors, dict):
        first = errors

    def pick(*names: str) -> str | None:
        for name in names:
            value = first.get(name)
            if value not in (None, ""):
                return str(value)
        return None

    fault_type = fault.get("type")
    return (
        pick("code", "Code"),
        pick("message", "Message"),
        pick("detail", "Detail"),
        str(fault_type) if fault_type else None,
    )


def _fault_from_xml(body: bytes) -> tuple[str | None, str | None, str | None, str | None] | None:
    """(code, message, detail, fault type) from an XML <Fault>; None when there is no fault.

    Raises ValueError for XML that cannot be parsed safely (malformed, or carrying a DOCTYPE,
    which no Intuit answer has and which is how entity-expansion attacks start).
    """
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise ValueError("XML with a DOCTYPE")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ValueError(str(exc)) from None
    fault = None
    for element in root.iter():
        if _local(element.tag) == "Fault":
            fault = element
            break
    if fault is None:
        return None
    code = message = detail = None
    for element in fault.iter():
        name = _local(element.tag)
        if name == "Error" and code is None:
            code = element.get("code")
        elif name == "Message" and message is None:
            message = (element.text or "").strip() or None
        elif name == "Detail" and detail is None:
            detail = (element.text or "").strip() or None
    return code, message, detail, fault.get("type")


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _fault_kind(status: int, code: str | None) -> str:
    if status >= 500:
        return "server_error"
    return _FAULT_CODE_KINDS.get(code or "", "http_error")


def _fault_detail(message: str | None, detail: str | None) -> str | None:
    """Prefer Intuit's detail; fall back to the name inside "message=X; errorCode=...".

    The name keeps variants apart (AuthorizationFailed vs ApplicationAuthorizationFailed).
    """
    if detail and "SignatureBaseString" in detail:
        # OAuth 1.0a-era faults dump the signed request, tokens included: never echo it.
        detail = None
    if detail:
        return detail
    if message:
        named = _MESSAGE_NAME.search(message)
        return named.group(1) if named else message
    return None


def classify_error_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    api: Literal["token", "qbo"],
    secrets: Iterable[str] = (),
    grant: Literal["refresh_token", "authorization_code"] | None = None,
) -> IntuitError:
    """Turn any non-success answer of Intuit into an IntuitError (never raises).

    `api` says which service answered ("token" for the OAuth token/revoke endpoints, "qbo"
    for the Accounting API). `secrets` are the values sent with the request; they are
    scrubbed from anything echoed back. `grant` only sharpens the wording of invalid_grant.
    """
    secrets = tuple(s for s in secrets if s)
    tid = _intuit_tid(headers)
    server_date = parse_server_date(header_lookup(headers, "Date"))
    raw = _decode_body(body)

    def error(
        kind: str, code: str | None = None, detail: str | None = None, headline: str | None = None
    ) -> IntuitError:
        detail = _clean_text(detail, secrets)
        code = _clean_text(code, secrets)
        message = None
        if headline is not None or kind == "invalid_grant":
            if kind == "invalid_grant" and headline is None:
                headline = {
                    "refresh_token": "Intuit refused the refresh token",
                    "authorization_code": "Intuit refused the authorization code",
                }.get(grant or "", "Intuit refused the grant (refresh token or authorization code)")
            message = _compose_message(kind, status, code, detail, tid, headline)
        return IntuitError(
            kind, message, status=status, code=code, detail=detail, intuit_tid=tid, server_date=server_date
        )

    def unreadable(what: str) -> IntuitError:
        if status >= 500:
            return error("server_error", detail=what)
        if status == 429:
            return error("http_error", detail=what, headline="Intuit is rate-limiting requests")
        return error("bad_response", detail=what)

    if not raw:
        return unreadable("empty body")

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")

    if text[:1] in '{["':
        try:
            data = json.loads(text)
        except ValueError:
            return unreadable("JSON body that is truncated or malformed")
        # Some proxies and logs wrap the body in a JSON string literal; look inside once.
        if isinstance(data, str) and data.strip()[:1] in ("{", "<"):
            return classify_error_response(
                status, data.strip().encode("utf-8"), headers, api=api, secrets=secrets, grant=grant
            )
        return _classify_json(status, data, api, error, unreadable)

    if text.startswith("<"):
        if _looks_like_html(text):
            title = _HTML_TITLE.search(text[:20000])
            title_text = (title.group(1) if title else "") or "HTML page"
            what = f"an HTML page: {title_text}" if title else "an HTML page"
            if status >= 500:
                return error("server_error", detail=what)
            return unreadable(what)
        try:
            fault = _fault_from_xml(raw)
        except ValueError:
            # Hand-redacted captures (`<COMPANY_ID>` inside a Detail) and cut-off bodies are
            # not well-formed, yet the Error code near the top still says what happened.
            salvaged = _XML_ERROR_CODE.search(raw)
            if salvaged is None:
                return unreadable("malformed or truncated XML")
            code = salvaged.group(1).decode()
            message_match = _XML_MESSAGE.search(text)
            message = message_match.group(1) if message_match else None
            return error(_fault_kind(status, code), code, _fault_detail(message, None))
        if fault is None:
            return unreadable("XML without a Fault element")
        code, message, detail, _fault_type = fault
        if code is None and message:
            found = _ERROR_CODE_IN_MESSAGE.search(message)
            code = found.group(1) if found else None
        return error(_fault_kind(status, code), code, _fault_detail(message, detail))

    if status >= 500:
        return error("server_error", detail="plain-text body")
    return unreadable("a body that is neither JSON nor XML")


def _classify_json(status: int, data: Any, api: str, error: Any, unreadable: Any) -> IntuitError:
    fault = _fault_from_json(data)
    if fault is not None:
        code, message, detail, _fault_type = fault
        if code is None and message:
            found = _ERROR_CODE_IN_MESSAGE.search(message)
            code = found.group(1) if found else None
        return error(_fault_kind(status, code), code, _fault_detail(message, detail))
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        oauth_code = data["error"].strip()
        description = data.get("error_description")
        description = str(description) if description not in (None, "") else None
        if status >= 500:
            return error("server_error", oauth_code, description)
        kind = _TOKEN_ERROR_KINDS.get(oauth_code, "http_error")
        return error(kind, oauth_code, description)
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        # The Intuit gateway's other shape: {"code":"AuthenticationFailed","detail":"Malformed ..."}.
        if status >= 500:
            return error("server_error", data["code"], data.get("detail"))
        if status == 401 and api == "qbo":
            return error("token_rejected", data["code"], data.get("detail"))
        return error("http_error", data["code"], data.get("detail"))
    if status >= 500:
        return error("server_error", detail="JSON without an error description")
    if status == 429:
        return unreadable("JSON without an error description")
    if 400 <= status < 500:
        return error("http_error", detail="JSON without an error description")
    return unreadable("JSON without the expected fields")


def _as_seconds(value: Any) -> int | None:
    """expires_in arrives as 3600 or "3600" (corpus/intuit/03); anything else is unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_token_response(body: bytes, headers: Mapping[str, str]) -> TokenResponse:
    """A 200 answer of the token endpoint; IntuitError(bad_response) when it is not one."""
    tid = _intuit_tid(headers)
    server_date = parse_server_date(header_lookup(headers, "Date"))

    def bad(what: str) -> IntuitError:
        return IntuitError("bad_response", status=200, detail=what, intuit_tid=tid, server_date=server_date)

    raw = _decode_body(body)
    if not raw:
        raise bad("empty body where the tokens were expected")
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        raise bad("token answer is not valid JSON (truncated or an HTML page)") from None
    if not isinstance(data, dict):
        raise bad("token answer is not a JSON object")
    access_token = data.get("access_token")
    refresh_token = data.get("refresh_token")
    expires_in = _as_seconds(data.get("expires_in"))
    if not isinstance(access_token, str) or not access_token.strip():
        raise bad("token answer has no access_token")
    if not isinstance(refresh_token, str) or not refresh_token.strip():
        raise bad("token answer has no refresh_token")
    if expires_in is None:
        raise bad("token answer has no usable expires_in")
    return TokenResponse(
        access_token=access_token.strip(),
        refresh_token=refresh_token.strip(),
        expires_in=expires_in,
        refresh_expires_in=_as_seconds(data.get("x_refresh_token_expires_in")),
        hard_expires_in=_as_seconds(data.get("x_refresh_token_hard_expires_in")),
        intuit_tid=tid,
        server_date=server_date,
    )


def parse_company_info(body: bytes, headers: Mapping[str, str], realm_id: str) -> CompanyInfo:
    """A 200 companyinfo answer (JSON, or XML when Accept was ignored); bad_response otherwise."""
    tid = _intuit_tid(headers)
    server_date = parse_server_date(header_lookup(headers, "Date"))

    def bad(what: str) -> IntuitError:
        return IntuitError("bad_response", status=200, detail=what, intuit_tid=tid, server_date=server_date)

    raw = _decode_body(body)
    if not raw:
        raise bad("empty body where the company was expected")
    if raw[:1] == b"<":
        if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
            raise bad("company answer is an HTML page or carries a DOCTYPE")
        try:
            root = ElementTree.fromstring(raw)
        except ElementTree.ParseError:
            raise bad("company answer is malformed XML") from None
        info = next((e for e in root.iter() if _local(e.tag) == "CompanyInfo"), None)
        if info is None:
            raise bad("XML answer without CompanyInfo")
        name = country = None
        for child in info:
            if _local(child.tag) == "CompanyName":
                name = (child.text or "").strip() or None
            elif _local(child.tag) == "Country":
                country = (child.text or "").strip() or None
        return CompanyInfo(name, realm_id, country, tid, server_date)
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        raise bad("company answer is not valid JSON (truncated or an HTML page)") from None
    info = data.get("CompanyInfo") if isinstance(data, dict) else None
    if info is None and isinstance(data, dict):
        query = data.get("QueryResponse")
        rows = query.get("CompanyInfo") if isinstance(query, dict) else None
        info = rows[0] if isinstance(rows, list) and rows else None
    if not isinstance(info, dict):
        raise bad("JSON answer without CompanyInfo")
    name = info.get("CompanyName")
    country = info.get("Country")
    return CompanyInfo(
        str(name) if name not in (None, "") else None,
        realm_id,
        str(country) if country not in (None, "") else None,
        tid,
        server_date,
    )


# ---------------------------------------------------------------------------------------------
# The client


class IntuitClient:
    """Synchronous Intuit client: one call, one answer, one IntuitError on any failure.

    Holds one httpx.Client, created on first use. Use as a context manager or call close().
    """

    def __init__(
        self,
        endpoints: Endpoints | None = None,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.endpoints = endpoints if endpoints is not None else Endpoints.from_environ(environ)
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self._http: httpx.Client | None = None
        # Probes run in threads and share one client; only one httpx.Client may be created.
        self._http_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"IntuitClient(token={self.endpoints.token!r}, timeout={self.timeout})"

    def __enter__(self) -> IntuitClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._http_lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    # -- public calls -------------------------------------------------------------------------

    def authorize_url(self, client_id: str, redirect_uri: str, state: str, scope: str = ACCOUNTING_SCOPE) -> str:
        """The consent URL to open in the browser (exactly INTUIT.md §1.3's five parameters)."""
        check_url_allowed(self.endpoints.authorize)
        query = urlencode(
            {
                "client_id": client_id,
                "response_type": "code",
                "scope": scope,
                "redirect_uri": redirect_uri,
                "state": state,
            }
        )
        separator = "&" if urlsplit(self.endpoints.authorize).query else "?"
        return f"{self.endpoints.authorize}{separator}{query}"

    def exchange_code(self, client_id: str, client_secret: str, code: str, redirect_uri: str) -> TokenResponse:
        """Trade a consent's authorization code for the first tokens of a new chain."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return self._token_call(client_id, client_secret, form, (client_secret, code), "authorization_code")

    def refresh(self, client_id: str, client_secret: str, refresh_token: str) -> TokenResponse:
        """One refresh-token grant; the caller must persist the refresh token that comes back."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._token_call(client_id, client_secret, form, (client_secret, refresh_token), "refresh_token")

    def revoke(self, client_id: str, client_secret: str, token: str) -> None:
        """Revoke a refresh or access token (Intuit then drops the whole chain)."""
        url = self.endpoints.revoke
        headers = {
            "Authorization": _basic_auth(client_id, client_secret),
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        secrets = (client_secret, token)
        content = json.dumps({"token": token}).encode()
        status, body, response_headers = self._send("POST", url, headers, secrets, content=content)
        if status != 200:
            raise classify_error_response(status, body, response_headers, api="token", secrets=secrets)

    def company_info(self, access_token: str, realm_id: str, environment: str) -> CompanyInfo:
        """Read CompanyInfo: proves the access token, the realm and the environment fit together."""
        realm = quote(str(realm_id).strip(), safe="")
        base = self.endpoints.qbo_base(environment)
        url = f"{base}/v3/company/{realm}/companyinfo/{realm}?minorversion={MINOR_VERSION}"
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        secrets = (access_token,)
        status, body, response_headers = self._send("GET", url, headers, secrets)
        if status != 200:
            raise classify_error_response(status, body, response_headers, api="qbo", secrets=secrets)
        return parse_company_info(body, response_headers, str(realm_id).strip())

    # -- plumbing -----------------------------------------------------------------------------

    def _token_call(
        self,
        client_id: str,
        client_secret: str,
        form: dict[str, str],
        secrets: tuple[str, ...],
        grant: Literal["refresh_token", "authorization_code"],
    ) -> TokenResponse:
        headers = {
            "Authorization": _basic_auth(client_id, client_secret),
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            # Opt in to the five-year hard cap (INTUIT.md §2.4); servers that do not know it ignore it.
            HARD_EXPIRY_HEADER: "true",
        }
        status, body, response_headers = self._send(
            "POST", self.endpoints.token, headers, secrets, content=urlencode(form).encode()
        )
        if status != 200:
            raise classify_error_response(status, body, response_headers, api="token", secrets=secrets, grant=grant)
        return parse_token_response(body, response_headers)

    def _client(self) -> httpx.Client:
        import httpx

        with self._http_lock:
            if self._http is not None:
                return self._http
            self._http = httpx.Client(
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
                follow_redirects=False,
                verify=True,
                # Plain http is only ever allowed to loopback; an HTTP_PROXY from the
                # environment must not carry those credentials off the machine.
                mounts={"http://": httpx.HTTPTransport(verify=True)},
                headers={"User-Agent": _user_agent()},
            )
            return self._http

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        secrets: Iterable[str],
        *,
        content: bytes | None = None,
    ) -> tuple[int, bytes, Mapping[str, str]]:
        check_url_allowed(url)
        import httpx

        host = urlsplit(url).hostname or "Intuit"
        # A server trickling bytes could defeat the per-read timeout; bound the whole answer too.
        deadline = time.monotonic() + self.connect_timeout + self.timeout * 2
        try:
            with self._client().stream(method, url, headers=headers, content=content) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise IntuitError(
                            "bad_response",
                            status=response.status_code,
                            detail=f"answer larger than {MAX_BODY_BYTES // 1_000_000} MB",
                            intuit_tid=_intuit_tid(response.headers),
                        )
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("answer arrived too slowly")
                return response.status_code, b"".join(chunks), response.headers
        except IntuitError:
            raise
        except httpx.TimeoutException as exc:
            phase = "connect to" if isinstance(exc, httpx.ConnectTimeout) else "get an answer from"
            limit = self.connect_timeout if isinstance(exc, httpx.ConnectTimeout) else self.timeout
            raise IntuitError("timeout", f"Could not {phase} {host} within {limit:g} s (timeout)") from None
        except httpx.HTTPError as exc:
            reason = _clean_text(f"{type(exc).__name__}: {exc}", secrets) or type(exc).__name__
            raise IntuitError("network", f"Could not reach {host}: {reason}", detail=reason) from None


def _basic_auth(client_id: str, client_secret: str) -> str:
    pair = f"{client_id}:{client_secret}".encode("utf-8")
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _user_agent() -> str:
    try:
        from doctor import __version__
    except ImportError:  # pragma: no cover - only when the package is half-installed
        __version__ = "unknown"
    return f"sidequest/{__version__}"
