"""A fake Intuit on 127.0.0.1 that behaves like the real one where SideQuest can tell the difference.

Why it exists: every failure the doctor diagnoses (rotated or superseded refresh tokens, idle
expiry, the five-year cap, a disconnected app, sandbox keys on production, a token used for
the wrong company, Intuit being down or hanging) must be reproducible in tests without the
internet. This is a real HTTP server (ThreadingHTTPServer in a daemon thread, ephemeral port),
so the client under test, and CLI subprocesses pointed at it through `environ()`, go through
real sockets. Behaviour follows INTUIT.md §9; answer bodies copy the real shapes of §3.

Typical use::

    with FakeIntuit() as fake:
        fake.add_app("cid", "secret", "sandbox")
        fake.add_company("9130", "Larry's Bakery", "sandbox")
        rt = fake.mint_chain("cid", "9130")
        env = {**os.environ, **fake.environ()}      # for a subprocess, or
        client = IntuitClient(environ=fake.environ())

The fake keeps its own clock (`now`), so a test can jump 101 days ahead without sleeping.
Its state is guarded by one lock, because CLI subprocesses and threads hit it concurrently.
It never logs: token values appear only in the HTTP answers themselves.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import socket
import ssl
import string
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

ACCESS_TOKEN_SECONDS = 3600
# Intuit answers 8726400 (101 days) for a fresh refresh token; the idle rule is "100 days".
REFRESH_TOKEN_SECONDS = 8726400
IDLE_LIMIT = timedelta(days=100)
HARD_CAP = timedelta(seconds=157680000)  # 5 x 365 days
ROTATION_AGE = timedelta(hours=24)
CODE_LIFETIME = timedelta(minutes=10)

PATH_AUTHORIZE = "/connect/oauth2"
PATH_TOKEN = "/oauth2/v1/tokens/bearer"
PATH_REVOKE = "/v2/oauth2/tokens/revoke"
PATH_DISCOVERY = "/.well-known/openid_configuration"
QBO_PREFIXES = {"/prod": "production", "/sandbox": "sandbox"}

# "drip_headers": the status line, then the headers one byte every drip_seconds, forever;
# "drip_body": complete headers, then the body one byte every drip_seconds (issue 9 §1:
# each byte resets a per-read timeout, so only a wall-clock deadline ends the exchange).
FailMode = Literal[None, "503", "html_502", "slow", "hang", "truncated", "reset", "drip_headers", "drip_body"]
Rotation = Literal["every_call", "daily", "never"]
# A hostile or broken Intuit that echoes what it was sent (issue 9 §5): every answer then is a
# 400 invalid_grant whose intuit_tid header and error_description hold that secret (plain and
# fully percent-encoded in upper and lower case). "basic" is the Authorization header's base64.
EchoSecret = Literal[None, "basic", "refresh_token", "client_secret", "access_token"]
# Refusals of companyinfo for a valid token (INTUIT.md §3.2, §10.1), opt in with `qbo_fault`:
# "120" the user lost access (XML, as captured), "120_json" the same in the capitalised JSON
# envelope, "6190" the subscription ended, "130" wrong cluster (XML, as captured).
# `qbo_fault_status` overrides the HTTP status (200: a Fault inside a success answer);
# `qbo_fault_environments` limits the fault to those environments (None: both), e.g. {"production"}
# for "130" makes production the wrong cluster while sandbox answers as usual.
QboFault = Literal[None, "120", "120_json", "6190", "130"]
# `throttle`: every request answers 429. "per_minute" is a bare 429 (with `Retry-After` when
# `retry_after` is set), "monthly_cap" the ThrottleExceeded / 003001 fault of the app's monthly cap.
Throttle = Literal[None, "per_minute", "monthly_cap"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it, with nothing secret in it.

    `headers` has lower-case names and the Authorization value replaced by "<redacted>";
    `body_keys` / `query_keys` are the parameter names only, never their values.
    """

    method: str
    path: str
    headers: dict[str, str]
    query_keys: tuple[str, ...]
    body_keys: tuple[str, ...]
    status: int


@dataclass
class _App:
    client_id: str
    client_secret: str
    environment: str


@dataclass
class _Company:
    realm_id: str
    name: str
    environment: str


@dataclass
class _Chain:
    """One consent: the line of refresh tokens descending from one authorization code."""

    chain_id: int
    client_id: str
    realm_id: str
    environment: str
    hard_expires_at: datetime
    last_used_at: datetime
    current_rt: str = ""
    revoked: bool = False


@dataclass
class _RefreshToken:
    chain: _Chain
    issued_at: datetime
    superseded_at: datetime | None = None


@dataclass
class _AccessToken:
    chain: _Chain
    expires_at: datetime
    token_id: str


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    realm_id: str
    issued_at: datetime
    used: bool = False


def _random_text(length: int, alphabet: str = string.ascii_lowercase + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _intuit_tid() -> str:
    return f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"


def _lowercase_fault(code: str, message: str, status: int, fault_type: str, detail: str | None) -> bytes:
    """The gateway's lowercase fault envelope, key for key as captured (INTUIT.md §3.2a)."""
    body = {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [
                {
                    "message": f"message={message}; errorCode={int(code):06d}; statusCode={status}",
                    "detail": detail,
                    "code": code,
                    "element": None,
                }
            ],
            "type": fault_type,
        },
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": int(time.time() * 1000),
        "status": None,
        "cdcresponse": [],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _xml_fault(now: datetime, fault_type: str, code: str, message: str, detail: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{now.isoformat()}">'
        f'<Fault type="{fault_type}"><Error code="{code}"><Message>{message}</Message>'
        f"<Detail>{detail}</Detail></Error></Fault></IntuitResponse>"
    ).encode()


def _capitalised_fault(now: datetime, fault_type: str, code: str, message: str, detail: str) -> bytes:
    """The service's capitalised JSON envelope (INTUIT.md §3.2b)."""
    error = {"Message": message, "Detail": detail, "code": code, "element": ""}
    return json.dumps({"Fault": {"Error": [error], "type": fault_type}, "time": now.isoformat()}).encode()


_ACCESS_DETAIL = "AuthorizationFailure: --11014-You do not have access to use QuickBooks Online., statusCode: 401"
_SUBSCRIPTION_DETAIL = (
    "Subscription period has ended or canceled or there was a billing problem : You can't add data to "
    "QuickBooks Online Plus because your trial or subscription period ended, you canceled your subscription, "
    "or there was a billing problem."
)
_CLUSTER_DETAIL = (
    "WrongClusterError: -11017-You have accessed the wrong server.  You will now be redirected. , statusCode: 401"
)


def _qbo_fault(which: str, now: datetime) -> tuple[int, str, bytes]:
    """(usual HTTP status, content type, body) of one of the QboFault refusals."""
    if which == "120":
        # Intuit's own misspelling of the fault type, as captured.
        return (
            401,
            "application/xml",
            _xml_fault(now, "AuthorizatonFault", "120", "Authorization Failure", _ACCESS_DETAIL),
        )
    if which == "120_json":
        body = _capitalised_fault(now, "AuthorizationFault", "120", "Authorization Failure", _ACCESS_DETAIL)
        return 401, "application/json", body
    if which == "6190":
        body = _capitalised_fault(now, "ValidationFault", "6190", "Invalid Company Status", _SUBSCRIPTION_DETAIL)
        return 400, "application/json", body
    if which == "130":
        return (
            401,
            "application/xml",
            _xml_fault(now, "AuthenticationFault", "130", "Accessing Wrong Cluster", _CLUSTER_DETAIL),
        )
    raise ValueError(f"unknown qbo_fault {which!r}")


def _xml_auth_fault_100(now: datetime) -> bytes:
    """What Intuit staff reproduced for a valid token used on the wrong realm (oauth-jsclient #91)."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{now.isoformat()}">\n'
        '    <Fault type="AuthenticationFault">\n'
        '        <Error code="100">\n'
        "            <Message>General Authentication Error</Message>\n"
        "            <Detail>AuthenticationErrorGeneral: SRV-110-Authentication Failure , statusCode: 401</Detail>\n"
        "        </Error>\n"
        "    </Fault>\n"
        "</IntuitResponse>"
    ).encode()


_HTML_502 = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>intuit-edge</center></body></html>\n"
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # stop() must return even while "hang" handlers are parked.
    block_on_close = False
    allow_reuse_address = True
    # The default backlog of 5 drops SYNs when several probes or subprocesses connect at once.
    request_queue_size = 128
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            # The handshake runs in the handler's thread, on its first read: a client that refuses
            # the certificate (or never speaks) cannot stall the accepting loop.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client refusing the test certificate is what the TLS tests want; anything else is shown.
        if not isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            super().handle_error(request, client_address)


def self_signed_certificate(folder: Path) -> tuple[Path, Path] | None:
    """A certificate for 127.0.0.1 and localhost signed by itself, and its key: (cert.pem, key.pem).

    Made with the `cryptography` package when installed, else the `openssl` command; None when
    neither is available (the caller skips).
    """
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "fake-intuit-cert.pem", folder / "fake-intuit-key.pem"
    try:
        _certificate_with_cryptography(cert, key)
        return cert, key
    except ImportError:
        pass
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Fake Intuit Test Root"]
        + ["-keyout", str(key), "-out", str(cert), "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _certificate_with_cryptography(cert_path: Path, key_path: Path) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake Intuit Test Root")])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


class FakeIntuit:
    """Intuit's OAuth endpoints and the QBO companyinfo read, in-process, on 127.0.0.1.

    Configure with add_app / add_company / mint_chain, steer with the public attributes
    (rotation, grace_seconds, now, fail_mode, slow_seconds, drip_seconds, echo_secret, qbo_fault,
    qbo_fault_status, qbo_fault_environments, throttle, retry_after, consent_realm, consent_deny),
    observe with requests (each recorded once answered) / arrivals (each path as soon as it is read,
    before any fail mode: a test can act while an answer is still pending) / refresh_count /
    current_refresh_token.
    """

    def __init__(self, *, tls: tuple[Path, Path] | None = None) -> None:
        # (cert.pem, key.pem): serve https instead of http (see self_signed_certificate).
        self.tls = tls
        self.rotation: Rotation = "daily"
        self.grace_seconds: float = 0.0
        self.now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self.fail_mode: FailMode = None
        self.slow_seconds: float = 2.0
        self.drip_seconds: float = 0.2
        self.echo_secret: EchoSecret = None
        self.qbo_fault: QboFault = None
        self.qbo_fault_status: int | None = None
        self.qbo_fault_environments: frozenset[str] | None = None
        self.throttle: Throttle = None
        self.retry_after: str | None = None
        self.consent_realm: str | None = None
        self.consent_deny: bool = False
        # True: GET authorize first answers with a page whose Connect / Cancel buttons decide
        # (what a real browser sees); False: it redirects at once (consent_deny decides).
        self.consent_page: bool = False
        self.requests: list[RecordedRequest] = []
        self.arrivals: list[str] = []
        self.url: str = ""
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._apps: dict[str, _App] = {}
        self._companies: dict[str, _Company] = {}
        self._chains: list[_Chain] = []
        self._refresh_tokens: dict[str, _RefreshToken] = {}
        self._access_tokens: dict[str, _AccessToken] = {}
        self._codes: dict[str, _Code] = {}
        self._refresh_count = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeIntuit:
        if self._server is not None:
            return self
        self._stopping.clear()
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        scheme = "http"
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            self._server.tls = context
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-intuit", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # releases "hang" handlers
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeIntuit:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def environ(self) -> dict[str, str]:
        """The five SIDEQUEST_* endpoint variables (DESIGN.md §7) pointing at this fake."""
        if not self.url:
            raise RuntimeError("FakeIntuit.environ() before start()")
        return {
            "SIDEQUEST_OAUTH_AUTHORIZE_URL": self.url + PATH_AUTHORIZE,
            "SIDEQUEST_OAUTH_TOKEN_URL": self.url + PATH_TOKEN,
            "SIDEQUEST_OAUTH_REVOKE_URL": self.url + PATH_REVOKE,
            "SIDEQUEST_QBO_URL_PRODUCTION": self.url + "/prod",
            "SIDEQUEST_QBO_URL_SANDBOX": self.url + "/sandbox",
        }

    # -- world setup --------------------------------------------------------------------------

    def add_app(self, client_id: str, client_secret: str, environment: str) -> None:
        """Register an app's keys: development keys are "sandbox", production keys "production"."""
        _check_environment(environment)
        with self._lock:
            self._apps[client_id] = _App(client_id, client_secret, environment)

    def add_company(self, realm_id: str, name: str, environment: str) -> None:
        _check_environment(environment)
        with self._lock:
            self._companies[realm_id] = _Company(realm_id, name, environment)

    def mint_chain(
        self,
        client_id: str,
        realm_id: str,
        *,
        issued_at: datetime | None = None,
        last_used_at: datetime | None = None,
        hard_expires_at: datetime | None = None,
    ) -> str:
        """Create a consented chain for (app, company) and return its refresh token.

        issued_at: when the current refresh token was issued (drives daily rotation and the
        x_refresh_token_expires_in countdown); last_used_at: last successful use (drives the
        100-day idle expiry); hard_expires_at: the five-year cap (default issued_at + 5 years).
        """
        with self._lock:
            app = self._apps[client_id]
            issued = issued_at or self.now()
            chain = self._new_chain(app, realm_id, issued, hard_expires_at or issued + HARD_CAP)
            chain.last_used_at = last_used_at or issued
            return chain.current_rt

    def disconnect(self, realm_id: str) -> None:
        """The user clicked Disconnect in QuickBooks: every chain of that realm is revoked."""
        with self._lock:
            for chain in self._chains:
                if chain.realm_id == realm_id:
                    chain.revoked = True

    def current_refresh_token(self, client_id: str, realm_id: str) -> str | None:
        """The newest live refresh token of the newest chain for (app, realm), if any."""
        with self._lock:
            for chain in reversed(self._chains):
                if chain.client_id == client_id and chain.realm_id == realm_id and not chain.revoked:
                    return chain.current_rt
            return None

    def issue_access_token(self, client_id: str, realm_id: str) -> str:
        """An access token for the newest live chain, as if a refresh had just happened (for QBO-only tests)."""
        with self._lock:
            rt = self.current_refresh_token(client_id, realm_id)
            if rt is None:
                raise KeyError(f"no live chain for {client_id!r} / {realm_id!r}")
            return self._new_access_token(self._refresh_tokens[rt].chain, self.now())

    @property
    def refresh_count(self) -> int:
        with self._lock:
            return self._refresh_count

    # -- state changes (always under self._lock) ----------------------------------------------

    def _new_chain(self, app: _App, realm_id: str, issued: datetime, hard_expires_at: datetime) -> _Chain:
        chain = _Chain(
            chain_id=len(self._chains) + 1,
            client_id=app.client_id,
            realm_id=realm_id,
            environment=app.environment,
            hard_expires_at=hard_expires_at,
            last_used_at=issued,
        )
        self._chains.append(chain)
        self._issue_refresh_token(chain, issued)
        return chain

    def _issue_refresh_token(self, chain: _Chain, issued: datetime) -> str:
        # Shape of a current Intuit refresh token: RT1-39-H3-<epoch digits><random>.
        token = f"RT1-39-H3-{int(issued.timestamp())}{_random_text(20)}"
        if chain.current_rt:
            self._refresh_tokens[chain.current_rt].superseded_at = issued
        chain.current_rt = token
        self._refresh_tokens[token] = _RefreshToken(chain, issued)
        return token

    def _new_access_token(self, chain: _Chain, now: datetime) -> str:
        token = "eyJ" + _random_text(120, string.ascii_letters + string.digits + "-_")
        token_id = _random_text(50, string.ascii_letters + string.digits)
        self._access_tokens[token] = _AccessToken(chain, now + timedelta(seconds=ACCESS_TOKEN_SECONDS), token_id)
        return token

    # -- endpoint logic: return (status, headers, body) ---------------------------------------

    def _authenticate_app(self, authorization: str | None) -> _App | None:
        if not authorization or not authorization.startswith("Basic "):
            return None
        try:
            pair = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        client_id, _, client_secret = pair.partition(":")
        app = self._apps.get(client_id)
        if app is None or not secrets.compare_digest(app.client_secret, client_secret):
            return None
        return app

    def _token_endpoint(self, authorization: str | None, form: dict[str, str], want_hard: bool) -> tuple[int, bytes]:
        with self._lock:
            app = self._authenticate_app(authorization)
            if app is None:
                return 401, b'{"error":"invalid_client"}'
            grant_type = form.get("grant_type")
            now = self.now()
            if grant_type == "refresh_token":
                if not form.get("refresh_token"):
                    return 400, b'{"error":"invalid_request"}'
                result = self._refresh(app, form["refresh_token"], now)
            elif grant_type == "authorization_code":
                if not form.get("code") or not form.get("redirect_uri"):
                    return 400, b'{"error":"invalid_request"}'
                result = self._exchange(app, form["code"], form["redirect_uri"], now)
            else:
                return 400, b'{"error":"unsupported_grant_type"}'
            if isinstance(result, bytes):
                return 400, result
            chain, rt, access_token = result
            record = self._refresh_tokens[rt]
            age = int((now - record.issued_at).total_seconds())
            hard_left = max(0, int((chain.hard_expires_at - now).total_seconds()))
            answer: dict[str, Any] = {
                "access_token": access_token,
                "token_type": "bearer",
                "expires_in": ACCESS_TOKEN_SECONDS,
                "refresh_token": rt,
                "x_refresh_token_expires_in": max(0, min(REFRESH_TOKEN_SECONDS - age, hard_left)),
            }
            if want_hard:
                answer["x_refresh_token_hard_expires_in"] = hard_left
            return 200, json.dumps(answer).encode()

    def _refresh(self, app: _App, presented: str, now: datetime) -> tuple[_Chain, str, str] | bytes:
        invalid = b'{"error":"invalid_grant","error_description":"Incorrect or invalid refresh token"}'
        record = self._refresh_tokens.get(presented)
        # A chain minted with other keys does not exist for this app (that covers sandbox keys
        # presenting a production chain and the reverse).
        if record is None or record.chain.client_id != app.client_id:
            return invalid
        chain = record.chain
        if chain.revoked or now >= chain.hard_expires_at or now - chain.last_used_at > IDLE_LIMIT:
            return invalid
        if record.superseded_at is not None:
            if self.grace_seconds <= 0 or (now - record.superseded_at).total_seconds() > self.grace_seconds:
                return invalid
            # Within the grace window Intuit answers with the chain's newest token.
            record = self._refresh_tokens[chain.current_rt]
        rotate = self.rotation == "every_call" or (self.rotation == "daily" and now - record.issued_at > ROTATION_AGE)
        rt = self._issue_refresh_token(chain, now) if rotate else chain.current_rt
        chain.last_used_at = now
        self._refresh_count += 1
        return chain, rt, self._new_access_token(chain, now)

    def _exchange(self, app: _App, code: str, redirect_uri: str, now: datetime) -> tuple[_Chain, str, str] | bytes:
        invalid = b'{"error":"invalid_grant","error_description":"Invalid authorization code"}'
        grant = self._codes.get(code)
        if grant is None or grant.client_id != app.client_id:
            return invalid
        was_used, grant.used = grant.used, True  # single use, even when this attempt fails
        if was_used or grant.redirect_uri != redirect_uri or now - grant.issued_at > CODE_LIFETIME:
            return invalid
        chain = self._new_chain(app, grant.realm_id, now, now + HARD_CAP)
        return chain, chain.current_rt, self._new_access_token(chain, now)

    def _revoke_endpoint(self, authorization: str | None, raw: bytes) -> tuple[int, bytes]:
        with self._lock:
            app = self._authenticate_app(authorization)
            if app is None:
                return 401, b'{"error":"invalid_client"}'
            try:
                token = json.loads(raw.decode("utf-8")).get("token")
            except (ValueError, AttributeError, UnicodeDecodeError):
                token = None
            if not isinstance(token, str) or not token:
                return 400, b'{"error":"invalid_request"}'
            chain = None
            if token in self._refresh_tokens:
                chain = self._refresh_tokens[token].chain
            elif token in self._access_tokens:
                chain = self._access_tokens[token].chain
            # Revoking an unknown token is not an error (RFC 7009 §2.2).
            if chain is not None and chain.client_id == app.client_id:
                chain.revoked = True
            return 200, b""

    def _companyinfo(
        self, environment: str, realm_path: str, realm_again: str, authorization: str | None
    ) -> tuple[int, str, bytes]:
        with self._lock:
            now = self.now()
            bearer = authorization[7:].strip() if authorization and authorization.startswith("Bearer ") else ""
            record = self._access_tokens.get(bearer)
            if record is None:
                detail = "Malformed bearer token: too short or too long" if len(bearer) < 20 else None
                return (
                    401,
                    "application/json",
                    _lowercase_fault("3200", "AuthenticationFailed", 401, "AUTHENTICATION", detail),
                )
            if now >= record.expires_at or record.chain.revoked:
                detail = f"Token expired: {record.token_id}"
                return (
                    401,
                    "application/json",
                    _lowercase_fault("3200", "AuthenticationFailed", 401, "AUTHENTICATION", detail),
                )
            faulty = self.qbo_fault_environments is None or environment in self.qbo_fault_environments
            if self.qbo_fault is not None and faulty:
                status, content_type, body = _qbo_fault(self.qbo_fault, now)
                return self.qbo_fault_status or status, content_type, body
            if record.chain.environment != environment:
                return (
                    403,
                    "application/json",
                    _lowercase_fault("3100", "ApplicationAuthorizationFailed", 403, "SERVICE", None),
                )
            if record.chain.realm_id != realm_path or realm_again != realm_path:
                return 401, "application/xml", _xml_auth_fault_100(now)
            company = self._companies.get(realm_path)
            name = company.name if company else f"Sandbox Company_US_{realm_path[-1:] or '1'}"
            body = {
                "CompanyInfo": {
                    "CompanyName": name,
                    "LegalName": name,
                    "Country": "US",
                    "CompanyAddr": {
                        "City": "Mountain View",
                        "Country": "US",
                        "Line1": "2500 Garcia Ave",
                        "PostalCode": "94043",
                        "CountrySubDivisionCode": "CA",
                        "Id": "1",
                    },
                    "SupportedLanguages": "en",
                    "domain": "QBO",
                    "sparse": False,
                    "Id": "1",
                    "SyncToken": "4",
                    "NameValue": [{"Name": "OfferingSku", "Value": "QuickBooks Online Plus"}],
                },
                "time": now.isoformat(),
            }
            return 200, "application/json", json.dumps(body).encode()

    def _consent(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            client_id = query.get("client_id", "")
            redirect_uri = query.get("redirect_uri", "")
            state = query.get("state", "")
            app = self._apps.get(client_id)
            if app is None or not redirect_uri:
                return (
                    400,
                    {"Content-Type": "text/html"},
                    b"<html><body>invalid client_id or redirect_uri</body></html>",
                )

            def back(params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
                separator = "&" if "?" in redirect_uri else "?"
                return 302, {"Location": redirect_uri + separator + urlencode(params)}, b""

            if query.get("response_type") != "code":
                return back({"error": "unsupported_response_type", "state": state})
            if "com.intuit.quickbooks.accounting" not in query.get("scope", "").split():
                return back({"error": "invalid_scope", "state": state})
            decision = query.get("decision")
            if self.consent_page and decision is None:
                return 200, {"Content-Type": "text/html; charset=utf-8"}, _consent_page_html(query, self._companies)
            if self.consent_deny or decision == "cancel":
                return back({"error": "access_denied", "state": state})
            realm = self.consent_realm
            if realm is None:
                realm = next((c.realm_id for c in self._companies.values() if c.environment == app.environment), None)
            if realm is None:
                return 400, {"Content-Type": "text/html"}, b"<html><body>No company to connect</body></html>"
            code = "AB11" + str(int(self.now().timestamp())) + _random_text(30, string.ascii_letters + string.digits)
            self._codes[code] = _Code(client_id, redirect_uri, realm, self.now())
            return back({"code": code, "state": state, "realmId": realm})


def _throttled(throttle: str, retry_after: str | None) -> tuple[dict[str, str], bytes]:
    """Headers and body of a 429: a bare per-minute throttle, or the monthly cap's ThrottleExceeded fault."""
    headers = {"Retry-After": retry_after} if retry_after else {}
    if throttle == "per_minute":
        return {**headers, "Content-Type": "text/plain"}, b"Too Many Requests"
    body = _lowercase_fault("3001", "ThrottleExceeded", 429, "SERVICE", "The request limit for this month was reached")
    return {**headers, "Content-Type": "application/json"}, body


def _consent_page_html(query: dict[str, str], companies: dict[str, _Company]) -> bytes:
    """Intuit's consent page, reduced to what a user does there: Connect or Cancel (a GET form)."""
    import html

    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in query.items()
    )
    names = ", ".join(html.escape(c.name) for c in companies.values()) or "(none)"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Fake Intuit: connect</title></head>'
        f"<body><h1>Connect SideQuest to QuickBooks</h1><p>Companies: {names}</p>"
        f'<form method="get" action="{PATH_AUTHORIZE}">{hidden}'
        '<button type="submit" name="decision" value="connect" id="connect">Connect</button> '
        '<button type="submit" name="decision" value="cancel" id="cancel">Cancel</button>'
        "</form></body></html>"
    ).encode("utf-8")


def _check_environment(environment: str) -> None:
    if environment not in ("sandbox", "production"):
        raise ValueError(f"environment must be 'sandbox' or 'production', not {environment!r}")


class _Handler(BaseHTTPRequestHandler):
    owner: FakeIntuit
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate sends; without TCP_NODELAY, Nagle plus delayed ACKs
    # add about 40 ms to every answer, which made rotation-heavy tests slow for no reason.
    disable_nagle_algorithm = True
    # A client that connects and never sends must not pin a thread forever.
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silent: a request line can carry a consent code, and tests want clean output."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header follows the fake clock, so a test that jumps ahead sees it too.
        return format_datetime(self.owner.now().astimezone(timezone.utc), usegmt=True)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        fake = self.owner
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, 1_000_000)) if length > 0 else b""
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        body_keys: tuple[str, ...] = ()
        form: dict[str, str] = {}
        if raw:
            content_type = self.headers.get("Content-Type", "")
            if "json" in content_type:
                try:
                    parsed = json.loads(raw.decode("utf-8"))
                    body_keys = tuple(parsed) if isinstance(parsed, dict) else ()
                except (ValueError, UnicodeDecodeError):
                    pass
            else:
                form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
                body_keys = tuple(form)

        with fake._lock:
            fake.arrivals.append(parts.path)
        mode = fake.fail_mode
        if mode == "hang":
            self._record(method, parts.path, query, body_keys, 0)
            fake._stopping.wait()
            self.close_connection = True
            return
        if mode == "reset":
            self._record(method, parts.path, query, body_keys, 0)
            # SO_LINGER 0 makes close() send RST: the client sees "connection reset".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if mode in ("drip_headers", "drip_body"):
            self._record(method, parts.path, query, body_keys, 0)
            self._drip(headers_too=mode == "drip_headers")
            return
        if fake.throttle is not None:
            self._answer(method, parts.path, query, body_keys, 429, *_throttled(fake.throttle, fake.retry_after))
            return
        if fake.echo_secret is not None:
            echoed = self._echoed_secret(fake.echo_secret, form)
            every_byte = "".join(f"%{b:02X}" for b in echoed.encode())
            description = f"token {echoed} is bad; sent {every_byte} ({every_byte.lower()})"
            body = json.dumps({"error": "invalid_grant", "error_description": description}).encode()
            headers = {"Content-Type": "application/json"}
            self._answer(method, parts.path, query, body_keys, 400, headers, body, tid=f"1-{echoed}")
            return
        if mode == "503":
            self._answer(
                method, parts.path, query, body_keys, 503, {"Content-Type": "text/plain"}, b"Service Unavailable"
            )
            return
        if mode == "html_502":
            self._answer(method, parts.path, query, body_keys, 502, {"Content-Type": "text/html"}, _HTML_502)
            return
        if mode == "slow":
            fake._stopping.wait(fake.slow_seconds)

        status, headers, body = self._route(method, parts.path, query, form, raw)
        if mode == "truncated":
            # The request WAS processed (a refresh may have rotated the token) but the answer
            # is cut in half: the lost-response hazard of INTUIT.md §2.3.
            self._answer(method, parts.path, query, body_keys, status, headers, body[: len(body) // 2], close=True)
            return
        self._answer(method, parts.path, query, body_keys, status, headers, body)

    def _echoed_secret(self, which: str, form: dict[str, str]) -> str:
        authorization = self.headers.get("Authorization") or ""
        if which == "basic":
            return authorization.removeprefix("Basic ").strip()
        if which == "access_token":
            return authorization.removeprefix("Bearer ").strip()
        if which == "client_secret":
            try:
                pair = base64.b64decode(authorization.removeprefix("Basic ").strip()).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return ""
            return pair.partition(":")[2]
        return form.get("refresh_token", "")

    def _drip(self, *, headers_too: bool) -> None:
        """An answer that never ends: one byte every drip_seconds until the client goes away."""
        fake = self.owner
        self.close_connection = True
        head = b"HTTP/1.1 200 OK\r\n"
        if not headers_too:
            head += b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
        try:
            self.wfile.write(head)
            self.wfile.flush()
            while not fake._stopping.wait(fake.drip_seconds):
                # A header line that never ends, or a body that never completes.
                self.wfile.write(b"x" if headers_too else b" ")
                self.wfile.flush()
        except OSError:
            return  # the client hung up: what a client with a deadline does

    def _route(
        self, method: str, path: str, query: dict[str, str], form: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        fake = self.owner
        json_type = {"Content-Type": "application/json;charset=UTF-8", "Cache-Control": "no-cache, no-store"}
        authorization = self.headers.get("Authorization")
        if method == "POST" and path == PATH_TOKEN:
            want_hard = (self.headers.get("x-include-refresh-token-hard-expires-in") or "").strip().lower() == "true"
            status, body = fake._token_endpoint(authorization, form, want_hard)
            return status, json_type, body
        if method == "POST" and path == PATH_REVOKE:
            status, body = fake._revoke_endpoint(authorization, raw)
            return status, (json_type if body else {}), body
        if method == "GET" and path == PATH_AUTHORIZE:
            return fake._consent(query)
        if method == "GET" and path == PATH_DISCOVERY:
            return 200, json_type, json.dumps(_discovery(fake.url)).encode()
        for prefix, environment in QBO_PREFIXES.items():
            pieces = path[len(prefix) :].split("/") if path.startswith(prefix + "/") else []
            # ["", "v3", "company", realm, "companyinfo", realm]
            if method == "GET" and len(pieces) == 6 and pieces[1:3] == ["v3", "company"] and pieces[4] == "companyinfo":
                status, content_type, body = fake._companyinfo(environment, pieces[3], pieces[5], authorization)
                return status, {"Content-Type": content_type}, body
        return 404, {"Content-Type": "text/html"}, b"<html><head><title>404 Not Found</title></head></html>"

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body_keys: tuple[str, ...],
        status: int,
        headers: dict[str, str],
        body: bytes,
        *,
        close: bool = False,
        tid: str | None = None,
    ) -> None:
        self._record(method, path, query, body_keys, status)
        self.send_response(status)
        self.send_header("intuit_tid", tid or _intuit_tid())
        for name, value in headers.items():
            self.send_header(name, value)
        if close:
            # No Content-Length: the body ends where the connection ends, like a cut stream.
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _record(self, method: str, path: str, query: dict[str, str], body_keys: tuple[str, ...], status: int) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        if "authorization" in headers:
            headers["authorization"] = "<redacted>"
        entry = RecordedRequest(method, path, headers, tuple(query), body_keys, status)
        with self.owner._lock:
            self.owner.requests.append(entry)


def _discovery(base: str) -> dict[str, Any]:
    return {
        "issuer": "https://oauth.platform.intuit.com/op/v1",
        "authorization_endpoint": base + PATH_AUTHORIZE,
        "token_endpoint": base + PATH_TOKEN,
        "userinfo_endpoint": base + "/v1/openid_connect/userinfo",
        "revocation_endpoint": base + PATH_REVOKE,
        "jwks_uri": base + "/op/v1/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile", "address", "phone"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
    }
