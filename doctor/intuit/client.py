"""The one place SideQuest talks HTTP to Intuit: OAuth token calls and the QBO companyinfo read.

Why a module of its own: DESIGN.md keeps HTTP in one swappable module, and the offline doctor
must start without importing httpx, so httpx is imported lazily inside the calls that need it.
What the answers mean is decided elsewhere in this package (`errors` classifies, `responses`
parses, `endpoints` decides where credentials may go); this module only moves the bytes.
Nothing here retries: the retry policy belongs to the token store, which knows whether a
second attempt could lose a rotated refresh token.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Iterable, Literal, Mapping
from urllib.parse import quote, urlencode, urlsplit

from doctor.intuit.endpoints import ACCOUNTING_SCOPE, MINOR_VERSION, Endpoints, check_url_allowed
from doctor.intuit.errors import IntuitError, classify_error_response
from doctor.intuit.responses import CompanyInfo, TokenResponse, parse_company_info, parse_token_response
from doctor.intuit.wire import MAX_BODY_BYTES, clean_text, intuit_tid

if TYPE_CHECKING:  # pragma: no cover
    import ssl

    import httpx

HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"
# httpcore's trace events that hand over a connection's stream: TCP connected, TLS started
# (directly, through a proxy's CONNECT tunnel or a SOCKS proxy).
_STREAM_EVENTS = (".connect_tcp.complete", ".start_tls.complete")
# Fired before a finished HTTP/1.1 exchange closes its connection: the sockets stop being ours.
_CLOSING_EVENT = "http11.response_closed.started"

# Building the verifying context is most of the cost of building a client (tens of ms: parsing the
# system's CA bundle); every client in the process verifies against the same roots, so the context
# is built once per setting and shared (both of a client's transports use the same one).
_ssl_contexts: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_ssl_lock = threading.Lock()

# Where Linux distributions keep the system's trusted roots when OpenSSL's compiled-in defaults
# hold none (the same list truststore uses on Linux, from certifi-system-store).
_LINUX_CA_FILES = (
    "/etc/ssl/cert.pem",  # Alpine, Arch, Fedora 34-43, RHEL 9-10, BSD
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # Fedora 44+, RHEL 11+
    "/etc/pki/tls/cert.pem",  # older Fedora, RHEL, CentOS
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu
    "/etc/ssl/ca-bundle.pem",  # SUSE
)
_HASHED_CERT_NAME = re.compile(r"^[0-9a-fA-F]{8}\.[0-9]+$")
# Where the system's trust store is not OpenSSL's files, so truststore asks the system itself.
NATIVE_TRUST_PLATFORMS = ("darwin", "win32")


def _ssl_context() -> ssl.SSLContext:
    """The verifying SSL context for every request: the system's trust store, plus SSL_CERT_FILE / SSL_CERT_DIR.

    A setting that names a missing or unreadable file is the user's to fix, so it becomes an
    IntuitError of kind `certificate` that says which setting and what is wrong with it.
    """
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = None if cafile else (os.environ.get("SSL_CERT_DIR") or None)
    key = (cafile, capath)
    with _ssl_lock:
        context = _ssl_contexts.get(key)
        if context is None:
            context = _ssl_contexts[key] = _load_ssl_context(cafile, capath)
        return context


def _load_ssl_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    import ssl

    if cafile is None and capath is None:
        return system_ssl_context()
    setting, path = ("SSL_CERT_FILE", cafile) if cafile else ("SSL_CERT_DIR", capath)
    assert path is not None
    problem = _missing(path, want_file=cafile is not None)
    if problem is None:
        context = system_ssl_context()
        try:
            # In addition to the system's roots, never instead of them: a company root added this
            # way must not make every public certificate untrusted.
            context.load_verify_locations(cafile=cafile, capath=capath)
            return context
        except (OSError, ssl.SSLError, ValueError) as exc:
            problem = f"cannot be used as trusted certificates ({getattr(exc, 'strerror', None) or type(exc).__name__})"
    raise IntuitError(
        "certificate",
        f"{setting} names {path}, which {problem}: point it at the PEM file (or folder) of certificates to "
        f"trust, or remove the {setting} setting to use the system's own",
        retryable=False,
    )


def system_ssl_context() -> ssl.SSLContext:
    """A verifying client context over the operating system's trust store (certificate and host name checked).

    macOS and Windows: truststore, which asks the Keychain / the Windows certificate store, so a
    company root installed there (a TLS-inspecting proxy's) is trusted as in the browser; roots
    loaded into it later (SSL_CERT_FILE) are extra anchors. Linux: the system store *is* OpenSSL's
    default verify paths, which is all truststore does there too, but truststore re-reads them on
    every handshake (about 20 ms each, and the refresh's handshake happens while `.env` is locked),
    and with SSL_CERT_FILE set it reads that file *instead of* the system's bundle. Here they are
    set up once, from the compiled-in paths, so SSL_CERT_FILE adds to the system's roots.
    """
    import ssl

    if sys.platform in NATIVE_TRUST_PLATFORMS:
        import truststore

        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    _load_linux_roots(context)
    return context


def _load_linux_roots(context: ssl.SSLContext) -> None:
    """The system's roots as OpenSSL was built to find them (never SSL_CERT_FILE's: that one is added on top).

    The hashed folder (what update-ca-certificates / c_rehash keep in step with the bundle) is read
    lazily, one file per lookup, so it costs nothing up front; the bundle file is parsed whole
    (about 20 ms), so it is read only where there is no hashed folder (Fedora, RHEL, Arch).
    """
    import ssl

    paths = ssl.get_default_verify_paths()
    if paths.openssl_capath and _holds_hashed_certificates(paths.openssl_capath):
        context.load_verify_locations(capath=paths.openssl_capath)
        return
    if paths.openssl_cafile and os.path.isfile(paths.openssl_cafile):
        context.load_verify_locations(cafile=paths.openssl_cafile)
        return
    cafile = next((path for path in _LINUX_CA_FILES if os.path.isfile(path)), None)
    if cafile is not None:
        context.load_verify_locations(cafile=cafile)
        return
    # A system without a CA store (a bare container): the roots httpx ships, as before.
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return
    context.load_verify_locations(cafile=certifi.where())


def _holds_hashed_certificates(folder: str) -> bool:
    try:
        return any(_HASHED_CERT_NAME.match(name) for name in os.listdir(folder))
    except OSError:
        return False


def _missing(path: str, *, want_file: bool) -> str | None:
    """What is wrong with a certificate setting's path before it is even read, or None."""
    if os.path.isfile(path) if want_file else os.path.isdir(path):
        return None
    if not os.path.exists(path):
        return "does not exist"
    return "is not a file" if want_file else "is not a folder"


class _Watchdog:
    """Ends one exchange at its absolute deadline, even while a read is blocked.

    httpx's timeouts are per operation: a server that sends a byte a second resets the read
    timeout forever, so the wall clock must be enforced from outside the blocked call. The
    watchdog learns the exchange's sockets from httpcore's `trace` extension (a public httpx
    request extension) and, when the deadline passes, shuts them down: the blocked recv()
    returns at once, httpx raises, and the exchange is reported as a timeout. Every exchange
    opens its own connection (no keep-alive), so the sockets it learns are its own alone.
    After the exchange ends (`finish`, or httpcore announcing the response is closing) the
    sockets are never touched again, so a shut-down can never reach a reused descriptor.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._done = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()

    def finish(self) -> None:
        with self._lock:
            self._done = True
            self._sockets.clear()
        self._timer.cancel()

    def trace(self, event: str, info: Mapping[str, object]) -> None:
        """httpcore's trace callback: note each new stream's socket; stop when the response closes."""
        if event == _CLOSING_EVENT:
            with self._lock:
                self._done = True
                self._sockets.clear()
            return
        if not event.endswith(_STREAM_EVENTS):
            return
        stream = info.get("return_value")
        get_extra_info = getattr(stream, "get_extra_info", None)
        sock = get_extra_info("socket") if get_extra_info is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self._done:
                return
            self._sockets.append(sock)
            if self.fired:
                # The deadline passed while connecting: end it before the first read blocks.
                _shut_down(sock)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for sock in self._sockets:
                _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    """Wake every thread blocked on `sock`; the owner closes it as usual afterwards.

    socket.socket.shutdown, not SSLSocket.shutdown: the latter also drops the TLS object
    while another thread may still be inside it. A socket already closed (or detached when
    TLS took it over) raises OSError, which means there is nothing left to wake.
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class IntuitClient:
    """Synchronous Intuit client: one call, one answer, one IntuitError on any failure.

    Holds one httpx.Client, created on first use. Use as a context manager or call close().
    Every exchange (connect, headers, body) ends by an absolute wall-clock deadline: the
    client's own (connect_timeout + 2 x timeout), or the caller's `deadline` (a
    time.monotonic() value) when that comes first.
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

    def prepare(self) -> IntuitClient:
        """Build the HTTP client now (imports httpx, loads the CA roots once per process).

        For callers that must not pay for it later, e.g. the token store before it takes the
        `.env` lock, where every millisecond is one another process waits.
        """
        self._client()
        return self

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

    def exchange_code(
        self, client_id: str, client_secret: str, code: str, redirect_uri: str, *, deadline: float | None = None
    ) -> TokenResponse:
        """Trade a consent's authorization code for the first tokens of a new chain."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        secrets = (client_secret, code, _basic_credentials(client_id, client_secret))
        return self._token_call(client_id, client_secret, form, secrets, "authorization_code", deadline)

    def refresh(
        self, client_id: str, client_secret: str, refresh_token: str, *, deadline: float | None = None
    ) -> TokenResponse:
        """One refresh-token grant; the caller must persist the refresh token that comes back."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        secrets = (client_secret, refresh_token, _basic_credentials(client_id, client_secret))
        return self._token_call(client_id, client_secret, form, secrets, "refresh_token", deadline)

    def revoke(self, client_id: str, client_secret: str, token: str, *, deadline: float | None = None) -> None:
        """Revoke a refresh or access token (Intuit then drops the whole chain)."""
        url = self.endpoints.revoke
        headers = {
            "Authorization": _basic_auth(client_id, client_secret),
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        secrets = (client_secret, token, _basic_credentials(client_id, client_secret))
        content = json.dumps({"token": token}).encode()
        status, body, response_headers = self._send("POST", url, headers, secrets, content=content, deadline=deadline)
        if status != 200:
            raise classify_error_response(status, body, response_headers, api="token", secrets=secrets)

    def company_info(
        self, access_token: str, realm_id: str, environment: str, *, deadline: float | None = None
    ) -> CompanyInfo:
        """Read CompanyInfo: proves the access token, the realm and the environment fit together."""
        realm = quote(str(realm_id).strip(), safe="")
        base = self.endpoints.qbo_base(environment)
        url = f"{base}/v3/company/{realm}/companyinfo/{realm}?minorversion={MINOR_VERSION}"
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        secrets = (access_token,)
        status, body, response_headers = self._send("GET", url, headers, secrets, deadline=deadline)
        if status != 200:
            raise classify_error_response(status, body, response_headers, api="qbo", secrets=secrets)
        return parse_company_info(body, response_headers, str(realm_id).strip(), secrets)

    # -- plumbing -----------------------------------------------------------------------------

    def _token_call(
        self,
        client_id: str,
        client_secret: str,
        form: dict[str, str],
        secrets: tuple[str, ...],
        grant: Literal["refresh_token", "authorization_code"],
        deadline: float | None,
    ) -> TokenResponse:
        headers = {
            "Authorization": _basic_auth(client_id, client_secret),
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            # Opt in to the five-year hard cap (INTUIT.md §2.4); servers that do not know it ignore it.
            HARD_EXPIRY_HEADER: "true",
        }
        status, body, response_headers = self._send(
            "POST", self.endpoints.token, headers, secrets, content=urlencode(form).encode(), deadline=deadline
        )
        if status != 200:
            raise classify_error_response(status, body, response_headers, api="token", secrets=secrets, grant=grant)
        return parse_token_response(body, response_headers, secrets)

    def _client(self) -> httpx.Client:
        import httpx

        with self._http_lock:
            if self._http is not None:
                return self._http
            context = _ssl_context()
            # No keep-alive: the watchdog must see each exchange's connection open (one Intuit
            # request per host per run, so nothing is lost).
            no_keepalive = httpx.Limits(max_keepalive_connections=0)
            self._http = httpx.Client(
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
                follow_redirects=False,
                verify=context,
                # Plain http is only ever allowed to loopback; an HTTP_PROXY from the
                # environment must not carry those credentials off the machine. The same
                # context is handed over so no second CA bundle is loaded.
                mounts={"http://": httpx.HTTPTransport(verify=context, limits=no_keepalive)},
                limits=no_keepalive,
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
        deadline: float | None = None,
    ) -> tuple[int, bytes, Mapping[str, str]]:
        check_url_allowed(url)
        import httpx

        host = urlsplit(url).hostname or "Intuit"
        started = time.monotonic()
        # A server trickling bytes defeats per-read timeouts; the whole exchange has a wall-clock bound.
        own_deadline = started + self.connect_timeout + self.timeout * 2
        deadline = own_deadline if deadline is None else min(deadline, own_deadline)
        remaining = deadline - started
        if remaining <= 0:
            raise IntuitError("timeout", f"No time left to ask {host} (the time budget was used up)")
        timeout = httpx.Timeout(min(self.timeout, remaining), connect=min(self.connect_timeout, remaining))
        client = self._client()
        try:
            with _Watchdog(deadline) as watchdog:
                try:
                    request = client.build_request(
                        method,
                        url,
                        headers=headers,
                        content=content,
                        timeout=timeout,
                        extensions={"trace": watchdog.trace},
                    )
                    response = client.send(request, stream=True)
                    try:
                        body = _read_body(response, deadline, secrets)
                    finally:
                        watchdog.finish()
                        response.close()
                    return response.status_code, body, response.headers
                except httpx.HTTPError:
                    if watchdog.fired:
                        raise _too_slow(host, deadline - started) from None
                    raise
        except IntuitError:
            raise
        except httpx.TimeoutException as exc:
            raise _timed_out(host, exc, timeout) from None
        except httpx.HTTPError as exc:
            untrusted = _certificate_failure(exc, url, deadline)
            if untrusted is not None:
                raise untrusted from None
            reason = clean_text(f"{type(exc).__name__}: {exc}", secrets) or type(exc).__name__
            raise IntuitError("network", f"Could not reach {host}: {reason}", detail=reason) from None


def _certificate_failure(exc: BaseException, url: str, deadline: float) -> IntuitError | None:
    """An IntuitError(certificate) when TLS verification refused the server's certificate, else None.

    It names the issuer of the certificate the server presented when that can be read (a bare
    handshake, see `presented_issuer`), so the user can tell IT which proxy or antivirus it is.
    """
    import ssl

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = clean_text(cause.verify_message or cause.reason or "verification failed") or "verification failed"
            issuer = presented_issuer(url, timeout=min(ISSUER_TIMEOUT, deadline - time.monotonic()))
            return IntuitError("certificate", detail=reason, retryable=False, issuer=issuer)
        cause = cause.__cause__ or cause.__context__
    return None


# The most reading a refused certificate's issuer may cost: it only improves a message (and a
# refresh's failure path holds the `.env` lock meanwhile).
ISSUER_TIMEOUT = 2.0


def presented_issuer(url: str, *, timeout: float, environ: Mapping[str, str] | None = None) -> str | None:
    """Who issued the certificate the server at `url` presents (its issuer's common name), or None.

    Called only after verification refused that certificate, to name it for the user. Reading
    an untrusted certificate needs a handshake without verification, so this is a bare TLS
    handshake and nothing else: no HTTP request, no header and no credential is ever sent over
    it; the connection is closed as soon as the certificate is read. The route is the one the
    request took (the HTTPS proxy from the environment, unless NO_PROXY exempts the host), so
    the certificate read is the one that was refused.
    """
    import ssl

    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme != "https" or not host or timeout <= 0:
        return None
    port = parts.port or 443
    try:
        sock = _open_route(host, port, timeout, os.environ if environ is None else environ)
    except (OSError, ValueError):
        return None
    try:
        unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE  # only to read the certificate; nothing is sent (see above)
        with unverified.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ValueError):
        return None
    finally:
        sock.close()
    if not der:
        return None
    try:
        return clean_text(certificate_issuer_name(der))
    except ValueError:
        return None


def _open_route(host: str, port: int, timeout: float, environ: Mapping[str, str]) -> socket.socket:
    """A TCP connection to host:port, through the environment's HTTPS proxy when the request used one.

    Proxy choice follows the environment as httpx reads it (HTTPS_PROXY / ALL_PROXY, NO_PROXY).
    Only a plain-http proxy is tunnelled through (CONNECT, with the proxy URL's own credentials,
    as httpx sends them); anything else raises ValueError and the issuer stays unnamed.
    """
    proxy = _proxy_for(host, environ)
    if proxy is None:
        return socket.create_connection((host, port), timeout=timeout)
    parts = urlsplit(proxy)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError("only an http:// proxy is tunnelled through")
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
    try:
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if parts.username is not None:
            from urllib.parse import unquote

            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            lines.append("Proxy-Authorization: Basic " + base64.b64encode(pair).decode("ascii"))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk or len(answer) > 16384:
                raise ValueError("the proxy did not answer the tunnel request")
            answer += chunk
        status = answer.split(b"\r\n", 1)[0].split()
        if len(status) < 2 or status[1] != b"200":
            raise ValueError("the proxy refused the tunnel")
        return sock
    except BaseException:
        sock.close()
        raise


def _proxy_for(host: str, environ: Mapping[str, str]) -> str | None:
    """The proxy URL httpx takes from `environ` for https://host, or None (none set, or NO_PROXY)."""
    from urllib.request import proxy_bypass_environment

    def lookup(name: str) -> str | None:
        return environ.get(name.lower()) or environ.get(name.upper()) or None

    proxy = lookup("https_proxy") or lookup("all_proxy")
    if not proxy:
        return None
    no_proxy = lookup("no_proxy")
    if no_proxy and (no_proxy.strip() == "*" or proxy_bypass_environment(host, {"no": no_proxy})):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


# X.509 attribute types a name is shown by, best first: commonName, organizationName, organizationalUnitName.
_NAME_OIDS = (b"\x55\x04\x03", b"\x55\x04\x0a", b"\x55\x04\x0b")
# DER string types: UTF8String, PrintableString, IA5String, T61String, BMPString, UniversalString.
_STRING_CODECS = {
    0x0C: "utf-8",
    0x13: "latin-1",
    0x16: "latin-1",
    0x14: "latin-1",
    0x1E: "utf-16-be",
    0x1C: "utf-32-be",
}


def certificate_issuer_name(der: bytes) -> str | None:
    """The issuer's common name (else organization, else unit) of a DER certificate; stdlib only.

    Walks just enough DER: Certificate → tbsCertificate → [version] serial signature issuer.
    ValueError when the bytes are not a certificate.
    """
    certificate = _der_children(_der_read(der, 0, expect=0x30)[0])
    tbs = _der_children(_der_expect(certificate, 0, 0x30))
    index = 1 if tbs and tbs[0][0] == 0xA0 else 0  # the optional explicit [0] version
    issuer = _der_expect(tbs, index + 2, 0x30)
    found: dict[bytes, str] = {}
    for _tag, rdn in _der_children(issuer):
        for tag, attribute in _der_children(rdn):
            if tag != 0x30:
                continue
            fields = _der_children(attribute)
            if len(fields) < 2 or fields[0][0] != 0x06:
                continue
            oid, (value_tag, value) = fields[0][1], fields[1]
            codec = _STRING_CODECS.get(value_tag)
            if oid in _NAME_OIDS and codec and oid not in found:
                found[oid] = value.decode(codec, errors="replace").strip()
    return next((found[oid] for oid in _NAME_OIDS if found.get(oid)), None)


def _der_read(data: bytes, offset: int, expect: int | None = None) -> tuple[bytes, int, int]:
    """(content, tag, next offset) of the DER element at `offset`."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[offset], data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    if offset + length > len(data) or (expect is not None and tag != expect):
        raise ValueError("not the expected DER element")
    return data[offset : offset + length], tag, offset + length


def _der_children(content: bytes) -> list[tuple[int, bytes]]:
    children = []
    offset = 0
    while offset < len(content):
        value, tag, offset = _der_read(content, offset)
        children.append((tag, value))
    return children


def _der_expect(children: list[tuple[int, bytes]], index: int, tag: int) -> bytes:
    if index >= len(children) or children[index][0] != tag:
        raise ValueError("not the expected DER element")
    return children[index][1]


def _too_slow(host: str, limit: float) -> IntuitError:
    return IntuitError("timeout", f"{host} did not finish answering in time; gave up after {limit:.1f} s (timeout)")


def _timed_out(host: str, exc: Exception, timeout: httpx.Timeout) -> IntuitError:
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        return IntuitError("timeout", f"Could not connect to {host} within {timeout.connect:.3g} s (timeout)")
    return IntuitError("timeout", f"Could not get an answer from {host} within {timeout.read:.3g} s (timeout)")


def _read_body(response: httpx.Response, deadline: float, secrets: Iterable[str]) -> bytes:
    """The whole body, at most MAX_BODY_BYTES, arriving before `deadline`."""
    import httpx

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
                intuit_tid=intuit_tid(response.headers, secrets),
            )
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("answer arrived too slowly")
    return b"".join(chunks)


def _basic_credentials(client_id: str, client_secret: str) -> str:
    """The base64 `id:secret` of the Basic header: a secret of its own, should a server echo it."""
    return base64.b64encode(f"{client_id}:{client_secret}".encode("utf-8")).decode("ascii")


def _basic_auth(client_id: str, client_secret: str) -> str:
    return "Basic " + _basic_credentials(client_id, client_secret)


def _user_agent() -> str:
    try:
        from doctor import __version__
    except ImportError:  # pragma: no cover - only when the package is half-installed
        __version__ = "unknown"
    return f"sidequest/{__version__}"
