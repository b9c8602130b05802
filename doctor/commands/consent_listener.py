"""Catching Intuit's consent reply on this machine: a one-shot loopback listener and the paste fallback.

Why it exists: after the user clicks "Connect" on Intuit's consent page, the browser is sent
to the app's redirect URI with `code`, `state` and `realmId`. `sidequest reauth-qb` must get
those three values into this process, safely, in three situations:

* **Loopback redirect URI** (sandbox keys may register `http://localhost:<port>/<path>`):
  the listener binds 127.0.0.1 at that port and path, and the browser lands on it directly.
* **Hosted callback** (production keys need HTTPS; the default
  `https://sidequestautomation.com/qb/callback`): the listener binds 127.0.0.1 on an
  ephemeral port and `reauth-qb` sends `state = "<nonce>.<port>"`. The hosted page's whole
  contract is: read `code`, `state`, `realmId` (or `error`, `error_description`) from its
  query, take the port after the last "." of `state`, and send the browser on to
  `http://127.0.0.1:<port>/callback?<the same parameters>` (a redirect, so the code travels
  from the user's browser to the user's machine only). It stores and logs nothing.
* **Paste**: anything else, or a browser on another machine. The user pastes the address
  the browser ended on (or the code and the company ID) into the terminal
  (`doctor.commands.terminal_input`).

Rules the listener keeps, because anything on this machine or any web page the user visits
can send requests to a loopback port: it binds 127.0.0.1 only; it accepts one reply and only
with the exact `state` of this attempt (compared in constant time); a wrong state, a wrong
path or a reply without a code is refused with a short page and the wait goes on; it never
logs a request line (the query holds the authorization code); its pages carry no secret, no
external resources, and `no-store` / `no-referrer` so the address does not travel further.
"""

from __future__ import annotations

import hmac
import queue
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping
from urllib.parse import parse_qs, urlsplit

from doctor.commands import consent_pages

HOSTED_CALLBACK_PATH = "/callback"
# How long the browser's request is held open waiting for the outcome, so the page can say
# "connected" rather than "received"; past this the page points at the terminal.
PAGE_WAIT_SECONDS = 30.0
# A connection that sends nothing must not hold a handler thread for the whole wait.
REQUEST_TIMEOUT_SECONDS = 10.0
FAVICON = "/favicon.ico"


@dataclass(frozen=True, repr=False)
class ConsentReply:
    """Intuit's answer, as delivered by the browser or pasted: a code and company, or an error."""

    source: str  # "browser" or "paste"
    code: str | None = None
    realm_id: str | None = None
    error: str | None = None
    error_description: str | None = None
    # A pasted address that carried no `state`: nothing ties it to this attempt, so reauth-qb
    # uses it only once the person confirms (or --yes).
    state_missing: bool = False

    def __repr__(self) -> str:
        # The code is a secret: say only whether there is one.
        return (
            f"ConsentReply(source={self.source!r}, code={'<set>' if self.code else None}, "
            f"realm_id={self.realm_id!r}, error={self.error!r}, state_missing={self.state_missing!r})"
        )


@dataclass(frozen=True)
class Refused:
    """A reply that was turned away (the wait goes on). `reason`: wrong_state, incomplete, bad_realm."""

    source: str
    reason: str


def split_state(state: str) -> tuple[str, int | None]:
    """(nonce, port) from a `<nonce>.<port>` state; port None when the state carries none."""
    nonce, dot, port = state.rpartition(".")
    if dot and port.isdigit() and 0 < int(port) < 65536:
        return nonce, int(port)
    return state, None


# QuickBooks company ids (realmId) are decimal numbers, about 16-19 digits today.
MAX_REALM_DIGITS = 32


def is_realm_id(text: str) -> bool:
    """Whether `text` can be a QuickBooks company id: ASCII digits only (str.isdigit alone takes "١٢٣")."""
    return 0 < len(text) <= MAX_REALM_DIGITS and text.isascii() and text.isdigit()


def judge_reply(
    params: Mapping[str, str], expected_state: str, source: str, *, require_state: bool
) -> ConsentReply | Refused:
    """Turn redirect parameters into a ConsentReply, or a Refused when they must be ignored.

    A pasted reply may lack `state` (then the reply says `state_missing`, and the caller asks
    before using it); a reply reaching the listener never may, because any web page could send
    one there. A realmId that is not a number is refused: it would be saved into `.env` and
    Claude Desktop's config and used in every QuickBooks address.
    """
    state = params.get("state")
    if state is not None or require_state:
        if not hmac.compare_digest((state or "").encode("utf-8"), expected_state.encode("utf-8")):
            return Refused(source, "wrong_state")
    error = (params.get("error") or "").strip()
    if error:
        description = (params.get("error_description") or "").strip() or None
        return ConsentReply(source, error=error, error_description=description)
    code = (params.get("code") or "").strip()
    realm_id = (params.get("realmId") or "").strip()
    if not code or not realm_id:
        return Refused(source, "incomplete")
    if not is_realm_id(realm_id):
        return Refused(source, "bad_realm")
    return ConsentReply(source, code=code, realm_id=realm_id, state_missing=state is None)


def query_params(text: str) -> dict[str, str]:
    """A query string as a dict of first values (blank values kept)."""
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


@dataclass(frozen=True)
class PageOutcome:
    """What the browser tab should say once the terminal side knows how things ended."""

    success: bool
    headline: str
    detail: str = ""


class ConsentListener:
    """A one-shot HTTP listener on 127.0.0.1 that hands a valid consent reply to `events`.

    Events put on the queue: ConsentReply (once), Refused (for each turned-away reply).
    Bind by constructing it, then `start(state)`. Call `finish(outcome)` when the flow is done
    so the waiting browser tab gets its page, then `close()`.
    """

    def __init__(self, port: int, path: str, events: queue.Queue) -> None:
        # Binding comes first because the hosted-callback state names the port we got.
        self.path = path or "/"
        self.expected_state: str | None = None
        self.events = events
        self._accepted = threading.Event()
        self._outcome: PageOutcome | None = None
        self._outcome_ready = threading.Event()
        self._page_sent = threading.Event()
        self._server = _Server(("127.0.0.1", port), _make_handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="consent-listener", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self, expected_state: str) -> ConsentListener:
        """Start answering; until now connections only waited in the socket's backlog."""
        if not expected_state:
            raise ValueError("the listener needs the state of this attempt")
        self.expected_state = expected_state
        self._thread.start()
        return self

    def finish(self, outcome: PageOutcome) -> None:
        """Give the held browser request its final page (first call wins)."""
        if self._outcome is None:
            self._outcome = outcome
        self._outcome_ready.set()

    def close(self, wait: float = 2.0) -> None:
        """Stop listening; first let an accepted reply's page reach the browser (bounded)."""
        if self._accepted.is_set():
            self._outcome_ready.set()
            self._page_sent.wait(wait)
        if self._thread.is_alive():
            # shutdown() waits for serve_forever to notice; it would wait forever if never started.
            self._server.shutdown()
            self._thread.join(timeout=wait)
        self._server.server_close()

    # -- used by the handler -----------------------------------------------------------------

    def _handle(self, raw_path: str) -> tuple[int, bytes, bool]:
        """(status, page, is_accepted_reply) for one request (pages: doctor.commands.consent_pages)."""
        parts = urlsplit(raw_path)
        if parts.path != self.path:
            return 404, consent_pages.not_found_page(), False
        verdict = judge_reply(query_params(parts.query), self.expected_state or "", "browser", require_state=True)
        if isinstance(verdict, Refused):
            self.events.put(verdict)
            if verdict.reason == "bad_realm":
                return 400, consent_pages.bad_realm_page(), False
            if verdict.reason == "wrong_state":
                return 400, consent_pages.wrong_state_page(), False
            return 400, consent_pages.incomplete_page(), False
        with self._server.accept_lock:
            if self._accepted.is_set():
                return 409, consent_pages.already_received_page(), False
            self._accepted.set()
        self.events.put(verdict)
        return 200, b"", True

    def _final_page(self) -> tuple[int, bytes]:
        self._outcome_ready.wait(PAGE_WAIT_SECONDS)
        outcome = self._outcome
        if outcome is None:
            return 200, consent_pages.received_page()
        page = consent_pages.outcome_page(outcome.success, outcome.headline, outcome.detail)
        return (200 if outcome.success else 400), page


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # On Windows SO_REUSEADDR would let another program bind the same port alongside us.
    allow_reuse_address = sys.platform != "win32"
    request_queue_size = 16

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        self.accept_lock = threading.Lock()
        super().__init__(address, handler)


def _make_handler(listener: ConsentListener) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT_SECONDS
        server_version = "SideQuest"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            """Silent: the request line holds the authorization code."""

        def do_GET(self) -> None:
            if urlsplit(self.path).path == FAVICON:
                self._send(404, b"")
                return
            status, page, accepted = listener._handle(self.path)
            if accepted:
                try:
                    status, page = listener._final_page()
                    self._send(status, page)
                finally:
                    listener._page_sent.set()
                return
            self._send(status, page)

        def do_HEAD(self) -> None:
            self._send(405, b"")

        do_POST = do_PUT = do_DELETE = do_HEAD

        def _send(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for name, value in consent_pages.SECURITY_HEADERS:
                    self.send_header(name, value)
                self.send_header("Connection", "close")
                self.end_headers()
                if body and self.command != "HEAD":
                    self.wfile.write(body)
            except OSError:
                pass  # the browser went away; nothing to tell it
            self.close_connection = True

    return Handler
