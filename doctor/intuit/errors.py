"""How a failure talking to Intuit is named: the error kinds, IntuitError, and the classifier.

Every failure becomes an `IntuitError` whose `kind` names the situation the doctor diagnoses
(refused refresh token, wrong company, wrong environment, Intuit down, ...). Intuit answers
errors in at least five shapes (INTUIT.md §3); `classify_error_response` is the pure parser
that maps all of them, so it can be tested against the real captures in the corpus without a
server. `HEADLINES` is the one table that turns a kind into words.

No secret value ever reaches a message, a repr or a detail: known values are scrubbed, long
token-like ids that Intuit echoes in error details are masked, and bodies are never quoted raw.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Mapping

from doctor.intuit.wire import clean_text, decode_body, header_lookup, intuit_tid, parse_server_date

if TYPE_CHECKING:  # pragma: no cover
    import xml.etree.ElementTree as ElementTree

KINDS: tuple[str, ...] = (
    "invalid_grant",
    "invalid_client",
    "invalid_request",
    "token_rejected",
    "wrong_realm",
    "access_lost",
    "wrong_cluster",
    "wrong_environment",
    "subscription_lapsed",
    "rate_limited",
    "monthly_limit",
    "http_error",
    "server_error",
    "bad_response",
    "network",
    "timeout",
    "certificate",
    "insecure_url",
)

# The one table that turns an error kind into words (the headline of str(IntuitError)).
HEADLINES: dict[str, str] = {
    "invalid_grant": "Intuit refused the grant (refresh token or authorization code)",
    "invalid_client": "Intuit rejected the app's client ID or client secret",
    "invalid_request": "Intuit rejected the token request as malformed",
    "token_rejected": "QuickBooks rejected the access token (expired, revoked or malformed)",
    "wrong_realm": "QuickBooks says the access token does not belong to this company (realm ID)",
    "access_lost": "QuickBooks says the user who connected the app no longer has access to this company",
    "wrong_cluster": "QuickBooks says the request reached the wrong cluster "
    "(a production token on sandbox, or the reverse)",
    "wrong_environment": "QuickBooks refused the token for this environment "
    "(sandbox vs production) or for missing scope",
    "subscription_lapsed": "QuickBooks says this company's subscription has ended, was cancelled, "
    "or has a billing problem",
    "rate_limited": "Intuit is rate-limiting requests (too many in a short time)",
    "monthly_limit": "Intuit has blocked this app's QuickBooks requests until next month "
    "(the app's monthly request allowance is used up)",
    "http_error": "Intuit answered with an error",
    "server_error": "Intuit had a server-side problem",
    "bad_response": "Intuit's answer could not be understood",
    "network": "Could not reach Intuit",
    "timeout": "Intuit did not answer in time",
    "certificate": "Could not verify the secure connection to Intuit: this is a certificate problem, not the "
    "internet connection (often a company proxy or antivirus that inspects secure traffic)",
    "insecure_url": "Refusing an insecure Intuit URL",
}
# invalid_grant says which grant was refused when the caller knows it.
_GRANT_HEADLINES = {
    "refresh_token": "Intuit refused the refresh token",
    "authorization_code": "Intuit refused the authorization code",
}
# A Retry-After longer than this is not advice anyone can act on; it is dropped.
MAX_RETRY_AFTER_SECONDS = 31 * 24 * 3600

Grant = Literal["refresh_token", "authorization_code"]


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
        retry_after: float | None = None,
        issuer: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown IntuitError kind {kind!r}")
        self.kind = kind
        self.status = status
        self.code = code
        self.detail = detail
        self.intuit_tid = intuit_tid
        self.server_date = server_date
        # Seconds Intuit asked us to wait (its Retry-After header), when it said.
        self.retry_after = retry_after
        # Kind `certificate`: who issued the certificate the server presented, when it could be read.
        self.issuer = issuer
        if retryable is None:
            # A monthly allowance that is used up does not come back by trying again.
            retryable = kind in ("network", "timeout", "server_error") or (status == 429 and kind != "monthly_limit")
        self.retryable = retryable
        self.message = message or compose_message(
            kind, status, code, detail, intuit_tid, retry_after=retry_after, issuer=issuer
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def compose_message(
    kind: str,
    status: int | None,
    code: str | None,
    detail: str | None,
    intuit_tid: str | None,
    headline: str | None = None,
    *,
    retry_after: float | None = None,
    issuer: str | None = None,
) -> str:
    """The one line str(IntuitError) shows: headline, then (HTTP status, code: detail, wait, issuer), then the tid."""
    headline = headline or HEADLINES.get(kind, "Intuit call failed")
    facts: list[str] = []
    if status is not None:
        facts.append(f"HTTP {status}")
    if code and detail:
        facts.append(f"{code}: {detail}")
    elif code or detail:
        facts.append(code or detail or "")
    if retry_after is not None:
        facts.append(f"Intuit asks to wait {retry_after:.0f} s before trying again")
    if issuer:
        facts.append(f"the certificate presented was issued by “{issuer}”")
    text = headline + (f" ({', '.join(facts)})" if facts else "")
    if intuit_tid:
        text += f" [intuit_tid {intuit_tid}]"
    return text


# ---------------------------------------------------------------------------------------------
# Classifying Intuit's error answers (pure: status + bytes + headers in, IntuitError out)

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
    "6190": "subscription_lapsed",
    # ThrottleExceeded: the app's monthly allowance (INTUIT.md §10.1), whatever status it comes with.
    "3001": "monthly_limit",
}
# The monthly cap's 429 names itself; a per-minute throttle does not (INTUIT.md §10.1).
_MONTHLY_CAP = re.compile(rb"ThrottleExceeded|errorCode=0*3001\b|[\"']code[\"']\s*[:=]\s*[\"']0*3001[\"']")
_ERROR_CODE_IN_MESSAGE = re.compile(r"errorCode=0*(\d+)")
_MESSAGE_NAME = re.compile(r"message=([A-Za-z]+)")
_XML_ERROR_CODE = re.compile(rb"<(?:\w+:)?Error\s+code=[\"'](\d+)[\"']")
_XML_MESSAGE = re.compile(r"<(?:\w+:)?Message>([^<]{0,300})</(?:\w+:)?Message>")
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)

# (code, message, detail, fault type) of an Intuit Fault.
Fault = tuple[str | None, str | None, str | None, str | None]


class _Answer:
    """One error answer being classified: the facts every resulting IntuitError carries."""

    def __init__(self, status: int, headers: Mapping[str, str], secrets: tuple[str, ...], grant: Grant | None) -> None:
        self.status = status
        self.secrets = secrets
        self.grant = grant
        self.tid = intuit_tid(headers, secrets)
        self.server_date = parse_server_date(header_lookup(headers, "Date"))
        self.retry_after = parse_retry_after(header_lookup(headers, "Retry-After"), self.server_date)

    def error(
        self, kind: str, code: str | None = None, detail: str | None = None, headline: str | None = None
    ) -> IntuitError:
        detail = clean_text(detail, self.secrets)
        code = clean_text(code, self.secrets)
        if kind == "invalid_grant" and headline is None:
            headline = _GRANT_HEADLINES.get(self.grant or "")
        message = None
        if headline:
            message = compose_message(kind, self.status, code, detail, self.tid, headline, retry_after=self.retry_after)
        return IntuitError(
            kind,
            message,
            status=self.status,
            code=code,
            detail=detail,
            intuit_tid=self.tid,
            server_date=self.server_date,
            retry_after=self.retry_after,
        )

    def unreadable(self, what: str) -> IntuitError:
        """A body that says nothing usable: the status alone decides."""
        if self.status >= 500:
            return self.error("server_error", detail=what)
        return self.error("bad_response", detail=what)

    def fault(self, fault: Fault) -> IntuitError:
        code, message, detail, _fault_type = fault
        if code is None and message:
            found = _ERROR_CODE_IN_MESSAGE.search(message)
            code = found.group(1) if found else None
        return self.error(_fault_kind(self.status, code), code, _fault_detail(message, detail))


def classify_error_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    api: Literal["token", "qbo"],
    secrets: Iterable[str] = (),
    grant: Grant | None = None,
) -> IntuitError:
    """Turn any non-success answer of Intuit into an IntuitError (never raises).

    `api` says which service answered ("token" for the OAuth token/revoke endpoints, "qbo"
    for the Accounting API). `secrets` are the values sent with the request; they are
    scrubbed from anything echoed back. `grant` only sharpens the wording of invalid_grant.
    """
    secrets = tuple(s for s in secrets if s)
    answer = _Answer(status, headers, secrets, grant)
    raw = decode_body(body)
    if status == 429:
        return _classify_rate_limit(answer, raw)
    if not raw:
        return answer.unreadable("empty body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if text[:1] in '{["':
        return _classify_json_text(answer, text, headers, api)
    if text.startswith("<"):
        return _classify_html(answer, text) if _looks_like_html(text) else _classify_xml(answer, raw, text)
    if status >= 500:
        return answer.error("server_error", detail="plain-text body")
    return answer.unreadable("a body that is neither JSON nor XML")


def _classify_rate_limit(answer: _Answer, raw: bytes) -> IntuitError:
    """HTTP 429, from the API or the token endpoint: the monthly cap when the body says so, else a throttle."""
    code = "3001" if _MONTHLY_CAP.search(raw) else None
    if code is not None:
        return answer.error("monthly_limit", code, "ThrottleExceeded")
    return answer.error("rate_limited")


def parse_retry_after(value: str | None, server_date: datetime | None = None) -> float | None:
    """Retry-After as seconds to wait: delta-seconds, or an HTTP date (measured from the answer's Date).

    None when absent, unreadable or absurd (negative waits count as 0).
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        moment = parse_server_date(value)
        if moment is None:
            return None
        start = server_date or datetime.now(moment.tzinfo)
        seconds = max(0.0, (moment - start).total_seconds())
    return seconds if seconds <= MAX_RETRY_AFTER_SECONDS else None


def carries_fault(body: bytes) -> bool:
    """Whether a success answer's body is really a Fault or an OAuth error (Intuit sends those with 200 too)."""
    raw = decode_body(body)
    if raw[:1] == b"<":
        try:
            return _fault_from_xml(raw) is not None
        except ValueError:
            return _XML_ERROR_CODE.search(raw) is not None
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return False
    return _fault_from_json(data) is not None or (isinstance(data, dict) and isinstance(data.get("error"), str))


def _classify_json_text(answer: _Answer, text: str, headers: Mapping[str, str], api: str) -> IntuitError:
    try:
        data = json.loads(text)
    except ValueError:
        return answer.unreadable("JSON body that is truncated or malformed")
    # Some proxies and logs wrap the body in a JSON string literal; look inside once.
    if isinstance(data, str) and data.strip()[:1] in ("{", "<"):
        return classify_error_response(
            answer.status,
            data.strip().encode("utf-8"),
            headers,
            api=api,  # type: ignore[arg-type]
            secrets=answer.secrets,
            grant=answer.grant,
        )
    return _classify_json(answer, data, api)


def _classify_json(answer: _Answer, data: Any, api: str) -> IntuitError:
    status, error = answer.status, answer.error
    fault = _fault_from_json(data)
    if fault is not None:
        return answer.fault(fault)
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        oauth_code = data["error"].strip()
        description = data.get("error_description")
        description = str(description) if description not in (None, "") else None
        if status >= 500:
            return error("server_error", oauth_code, description)
        return error(_TOKEN_ERROR_KINDS.get(oauth_code, "http_error"), oauth_code, description)
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
        return answer.unreadable("JSON without an error description")
    if 400 <= status < 500:
        return error("http_error", detail="JSON without an error description")
    return answer.unreadable("JSON without the expected fields")


def _classify_html(answer: _Answer, text: str) -> IntuitError:
    title = _HTML_TITLE.search(text[:20000])
    title_text = (title.group(1) if title else "") or "HTML page"
    what = f"an HTML page: {title_text}" if title else "an HTML page"
    if answer.status >= 500:
        return answer.error("server_error", detail=what)
    return answer.unreadable(what)


def _classify_xml(answer: _Answer, raw: bytes, text: str) -> IntuitError:
    try:
        fault = _fault_from_xml(raw)
    except ValueError:
        return _salvage_xml(answer, raw, text)
    if fault is None:
        return answer.unreadable("XML without a Fault element")
    return answer.fault(fault)


def _salvage_xml(answer: _Answer, raw: bytes, text: str) -> IntuitError:
    """Hand-redacted captures (`<COMPANY_ID>` inside a Detail) and cut-off bodies are not
    well-formed, yet the Error code near the top still says what happened."""
    salvaged = _XML_ERROR_CODE.search(raw)
    if salvaged is None:
        return answer.unreadable("malformed or truncated XML")
    code = salvaged.group(1).decode()
    message_match = _XML_MESSAGE.search(text)
    message = message_match.group(1) if message_match else None
    return answer.error(_fault_kind(answer.status, code), code, _fault_detail(message, None))


def _looks_like_html(text: str) -> bool:
    head = text[:1024].lower()
    return head.startswith(("<!doctype html", "<html", "<head", "<body")) or "<html" in head


def _fault_from_json(data: Any) -> Fault | None:
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
    pick = _picker(first)
    fault_type = fault.get("type")
    return (
        pick("code", "Code"),
        pick("message", "Message"),
        pick("detail", "Detail"),
        str(fault_type) if fault_type else None,
    )


def _picker(first: Mapping[str, Any]) -> Callable[..., str | None]:
    def pick(*names: str) -> str | None:
        for name in names:
            value = first.get(name)
            if value not in (None, ""):
                return str(value)
        return None

    return pick


def _fault_from_xml(body: bytes) -> Fault | None:
    """(code, message, detail, fault type) from an XML <Fault>; None when there is no fault.

    Raises ValueError for XML that cannot be parsed safely (malformed, or carrying a DOCTYPE,
    which no Intuit answer has and which is how entity-expansion attacks start).
    """
    root = parse_xml(body)
    fault = next((element for element in root.iter() if local_name(element.tag) == "Fault"), None)
    if fault is None:
        return None
    code = message = detail = None
    for element in fault.iter():
        name = local_name(element.tag)
        if name == "Error" and code is None:
            code = element.get("code")
        elif name == "Message" and message is None:
            message = (element.text or "").strip() or None
        elif name == "Detail" and detail is None:
            detail = (element.text or "").strip() or None
    return code, message, detail, fault.get("type")


def parse_xml(body: bytes) -> ElementTree.Element:
    """Parse an XML answer safely; ValueError when malformed or carrying a DOCTYPE/ENTITY."""
    # Imported here: the offline doctor reads ENVIRONMENTS through this package and never parses XML.
    import xml.etree.ElementTree as ElementTree

    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise ValueError("XML with a DOCTYPE")
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ValueError(str(exc)) from None


def local_name(tag: Any) -> str:
    """An XML tag without its {namespace}."""
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
