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

# Loading the CA bundle is most of the cost of building a client (tens of ms); every client in
# the process verifies against the same roots, so the context is built once and shared.
_ssl_contexts: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_ssl_lock = threading.Lock()


def _ssl_context() -> ssl.SSLContext:
    """The verifying SSL context for every request: SSL_CERT_FILE / SSL_CERT_DIR, else certifi's roots."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = None if cafile else (os.environ.get("SSL_CERT_DIR") or None)
    key = (cafile, capath)
    with _ssl_lock:
        context = _ssl_contexts.get(key)
        if context is None:
            import ssl

            if cafile is None and capath is None:
                import certifi

                cafile = certifi.where()
            context = _ssl_contexts[key] = ssl.create_default_context(cafile=cafile, capath=capath)
        return context


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
            context = _ssl_context()
            self._http = httpx.Client(
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
                follow_redirects=False,
                verify=context,
                # Plain http is only ever allowed to loopback; an HTTP_PROXY from the
                # environment must not carry those credentials off the machine. The same
                # context is handed over so no second CA bundle is loaded.
                mounts={"http://": httpx.HTTPTransport(verify=context)},
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
                body = _read_body(response, deadline)
                return response.status_code, body, response.headers
        except IntuitError:
            raise
        except httpx.TimeoutException as exc:
            phase = "connect to" if isinstance(exc, httpx.ConnectTimeout) else "get an answer from"
            limit = self.connect_timeout if isinstance(exc, httpx.ConnectTimeout) else self.timeout
            raise IntuitError("timeout", f"Could not {phase} {host} within {limit:g} s (timeout)") from None
        except httpx.HTTPError as exc:
            reason = clean_text(f"{type(exc).__name__}: {exc}", secrets) or type(exc).__name__
            raise IntuitError("network", f"Could not reach {host}: {reason}", detail=reason) from None


def _read_body(response: httpx.Response, deadline: float) -> bytes:
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
                intuit_tid=intuit_tid(response.headers),
            )
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("answer arrived too slowly")
    return b"".join(chunks)


def _basic_auth(client_id: str, client_secret: str) -> str:
    pair = f"{client_id}:{client_secret}".encode("utf-8")
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _user_agent() -> str:
    try:
        from doctor import __version__
    except ImportError:  # pragma: no cover - only when the package is half-installed
        __version__ = "unknown"
    return f"sidequest/{__version__}"
