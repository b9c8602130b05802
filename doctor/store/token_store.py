"""The locked token store: the one way the connector and sidequest read and rotate the chain.

Intuit rotates the refresh token and invalidates the old one (INTUIT.md §2.3). Two processes
refreshing at once — Claude Desktop's connector, a cron `sidequest refresh-qb`, the doctor —
would each get a new token and one of them would be written over the other, breaking the
chain for good. So every refresh happens under a cross-process lock on `HOME/.env.lock`,
re-reads `.env` after taking it (another holder may just have rotated), and writes the new
token back before letting go.

This module is the facade the connector and the commands use; the parts live beside it, one
reason to change each: `credentials` (what `.env` and the environment say), `env_lock` (the
lock and its owner record), `rotation` (asking Intuit and turning the answer into `.env`
updates), `lineage` (a keyed hash of every token saved, so a copy can be traced to its chain),
`errors`, `keys`, `timestamps`. Its names stay importable from here.

No secret value ever appears in a message or repr produced here.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from doctor.store import lineage, recovery

# Re-exported: these names were this module's API before it was split.
from doctor.store.credentials import DEFAULT_REDIRECT_URI, Credentials, read_credentials  # noqa: F401
from doctor.store.env_lock import (  # noqa: F401
    DEFAULT_LOCK_WAIT,
    LOCK_POLL_SECONDS,
    LOCK_WAIT_ENV,
    EnvLock,
    lock_wait_from,
)
from doctor.store.errors import LockTimeout, StoreError, scrub
from doctor.store.home import resolve_home
from doctor.store.keys import REFRESH_KEYS, REQUIRED_KEYS  # noqa: F401
from doctor.store.lock_records import LOCK_NAME, OWNER_NAME, OwnerRecord, this_host  # noqa: F401
from doctor.store.rotation import (  # noqa: F401
    NEVER_RETRY,
    RETRY_BACKOFF_SECONDS,
    RefreshResult,
    access_expiry,
    ask_intuit,
    metadata,
)
from doctor.store.saving import error_text, prove_writable, save, save_token_answer, unstorable
from doctor.store.timestamps import format_timestamp, parse_timestamp  # noqa: F401

if TYPE_CHECKING:  # pragma: no cover
    from doctor.intuit.client import IntuitClient
    from doctor.intuit.responses import TokenResponse


# An access token is reused until this close to its expiry, so a tool call never starts
# with a token that dies mid-request.
ACCESS_TOKEN_MARGIN = timedelta(minutes=5)
DIAGNOSE_COMMAND = "sidequest doctor --format prompt"
# A refresh ends within this many seconds, lock wait and Intuit's answer included, so a stalled
# Intuit can never keep the .env lock for minutes (issue 9 §1). SIDEQUEST_REFRESH_BUDGET overrides it.
REFRESH_BUDGET_SECONDS = 30.0
REFRESH_BUDGET_ENV = "SIDEQUEST_REFRESH_BUDGET"


def refresh_budget(environ: Mapping[str, str]) -> float:
    """Seconds one refresh may take: $SIDEQUEST_REFRESH_BUDGET when a positive number, else 30."""
    try:
        value = float((environ.get(REFRESH_BUDGET_ENV) or "").strip())
    except ValueError:
        return REFRESH_BUDGET_SECONDS
    return value if 0 < value < float("inf") else REFRESH_BUDGET_SECONDS


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _scrubbed(method: Callable) -> Callable:
    """A public method whose StoreError or LockTimeout never holds a secret the store knows (issue 9 §5)."""

    @functools.wraps(method)
    def wrapper(self: TokenStore, *args: object, **kwargs: object) -> object:
        try:
            return method(self, *args, **kwargs)
        except (StoreError, LockTimeout) as exc:
            self._scrub(exc)
            raise

    return wrapper


class TokenStore:
    """Locked reads and rotations of the chain in `HOME/.env`; safe across processes and threads."""

    def __init__(
        self,
        home: Path,
        *,
        intuit: IntuitClient | None = None,
        clock: Callable[[], datetime] | None = None,
        environ: Mapping[str, str] | None = None,
        command: str = "sidequest",
    ) -> None:
        self.home = Path(home).expanduser()
        self.env_path = self.home / ".env"
        self.command = command
        self._intuit = intuit
        self._owns_intuit = False
        self._clock = clock or _utc_now
        self._environ: Mapping[str, str] = environ if environ is not None else {}
        self._lock = EnvLock(self.home, command, self._clock)
        self.lock_path = self._lock.lock_path
        self.owner_path = self._lock.owner_path
        self._state = threading.Lock()  # guards the in-memory caches below
        self._refresh_gate = threading.Lock()  # one refresh at a time within this process
        self._access_token: str | None = None
        self._access_expires_at: datetime | None = None
        self._seen: list[tuple[str, str]] = []
        self._client_id: str | None = None

    def __repr__(self) -> str:
        return f"TokenStore(home={str(self.home)!r}, command={self.command!r})"

    def close(self) -> None:
        """Close the Intuit client this store created itself (a client passed in is the caller's)."""
        if self._owns_intuit and self._intuit is not None:
            close = getattr(self._intuit, "close", None)
            if close is not None:
                close()
            self._intuit = None
            self._owns_intuit = False

    # -- reading -----------------------------------------------------------------------------

    @_scrubbed
    def credentials(self) -> Credentials:
        """A fresh read of `.env`, falling back to the process environment key by key."""
        credentials = read_credentials(self.env_path, self._environ)
        if credentials.refresh_token:
            self._remember("refresh_token", credentials.refresh_token)
        if credentials.client_secret:
            self._remember("client_secret", credentials.client_secret)
        self._client_id = credentials.client_id
        return credentials

    def _scrub(self, error: Exception) -> None:
        try:  # learn the secrets, if the error came before anything was read (not self.credentials: no loop)
            credentials = read_credentials(self.env_path, self._environ)
        except Exception:  # noqa: BLE001 - best effort: scrub with what is known
            credentials = None
        if credentials is not None:
            for kind, value in (
                ("refresh_token", credentials.refresh_token),
                ("client_secret", credentials.client_secret),
            ):
                if value:
                    self._remember(kind, value)
            self._client_id = self._client_id or credentials.client_id
        scrub(error, self.known_secrets(), self._client_id)

    def owner(self) -> OwnerRecord | None:
        """The owner record beside the lock, or None when absent or garbled."""
        return self._lock.owner()

    @contextmanager
    def locked(self, wait: float) -> Iterator[None]:
        """Hold the cross-process `.env` lock; waits at most `wait` seconds, else LockTimeout."""
        try:
            with self._lock.held(wait):
                yield
        except LockTimeout as exc:
            self._scrub(exc)
            raise

    # -- rotating ----------------------------------------------------------------------------

    def _client(self) -> IntuitClient:
        """The Intuit client, its HTTP side already built, so none of that happens under the lock.

        Importing httpx and loading the CA certificates takes about 240 ms: done inside the lock,
        every other process waited for it (issue 14). IntuitClient.prepare() builds its httpx
        client now; a stand-in client passed in by a test has nothing to build.
        """
        if self._intuit is None:
            from doctor.intuit.client import IntuitClient

            self._intuit = IntuitClient(environ=self._environ)
            self._owns_intuit = True
        build = getattr(self._intuit, "prepare", None)
        if callable(build):
            build()
        return self._intuit

    def _remember(self, kind: str, value: str) -> None:
        with self._state:
            if (kind, value) not in self._seen:
                self._seen.append((kind, value))

    def _cache_access_token(self, token: TokenResponse, now: datetime) -> None:
        self._remember("access_token", token.access_token)
        self._remember("refresh_token", token.refresh_token)
        with self._state:
            self._access_token = token.access_token
            self._access_expires_at = access_expiry(token, now)

    def _configured(self) -> Credentials:
        credentials = self.credentials()
        needed = credentials.missing(REFRESH_KEYS)
        if needed:
            raise StoreError(
                "not_configured",
                f"cannot refresh: {', '.join(needed)} missing from {self.env_path} and the environment",
                tuple(needed),
            )
        return credentials

    @_scrubbed
    def refresh(self, *, wait: float = 10.0, budget: float | None = None) -> RefreshResult:
        """One locked refresh of the chain; `.env` holds the new token before the lock is released.

        The whole refresh (lock wait, Intuit's answer, a retry) ends within `budget` seconds
        (default: refresh_budget() of the store's environment). Raises LockTimeout, StoreError
        (not configured, unreadable, not writable, write failed) or the IntuitError of the refresh
        call (then `.env` is untouched). Once Intuit has answered,
        the only error is a StoreError saying where the new token is (`kept_in`) or that it is lost.
        """
        budget = refresh_budget(self._environ) if budget is None else budget
        deadline = time.monotonic() + budget
        client = self._client()
        if self.home.is_dir():
            # A read-only home, full disk or size limit is found now, while nothing is at stake, not after
            # Intuit has killed the old token; before the lock, so its fsync does not keep others waiting.
            prove_writable(self.env_path)
        with self.locked(max(0.0, min(wait, deadline - time.monotonic()))):
            self._finish_recovery()
            credentials = self._configured()
            token, attempts = ask_intuit(
                client, credentials.client_id, credentials.client_secret, credentials.refresh_token, deadline=deadline
            )
            return self._keep(token, credentials, attempts)

    def _keep(self, token: TokenResponse, credentials: Credentials, attempts: int) -> RefreshResult:
        """Save a token answer. From here on nothing may drop the new refresh token silently."""
        self._remember("refresh_token", token.refresh_token)  # first: every output must redact it
        rotated = token.refresh_token != credentials.refresh_token
        updates: dict[str, str | None] = {}
        if rotated or credentials.refresh_token_source != ".env":
            # A token that only lived in the process environment moves into .env, the source of truth.
            updates["QB_REFRESH_TOKEN"] = token.refresh_token
        now = self._clock()
        try:
            updates.update(metadata(token, now, drop_missing_hard=False))
            self._cache_access_token(token, now)
            save_token_answer(self.env_path, updates)
        except Exception as exc:  # noqa: BLE001 - whatever it was, the new token must not be lost
            raise self._kept_for_later(updates, credentials.refresh_token, exc) from None
        if "QB_REFRESH_TOKEN" in updates:
            kind = lineage.ROTATION if rotated else lineage.FOUND  # FOUND: moved in from the environment
            self._record_lineage(token.refresh_token, kind, replaces=credentials.refresh_token)
        return RefreshResult(
            access_token=token.access_token,
            refresh_token=token.refresh_token,
            rotated=rotated,
            previous_refresh_token=credentials.refresh_token,
            refreshed_at=now,
            expires_at=parse_timestamp(updates.get("QB_REFRESH_TOKEN_EXPIRES_AT")),
            hard_expires_at=parse_timestamp(updates.get("QB_REFRESH_TOKEN_HARD_EXPIRES_AT")),
            intuit_tid=token.intuit_tid,
            attempts=attempts,
        )

    def _kept_for_later(self, updates: dict[str, str | None], replaces: str | None, exc: Exception) -> StoreError:
        """The one-line StoreError after a failed save: where the new token is and what to run."""
        why = error_text(exc)
        if "QB_REFRESH_TOKEN" not in updates:
            return StoreError(
                "write_failed",
                f"could not save the refresh's dates to {self.env_path} ({why}); "
                "the saved connection did not change and still works",
            )
        if unstorable(updates["QB_REFRESH_TOKEN"] or "") is None:
            try:
                kept_in = recovery.keep(self.home, updates, replaces)
            except OSError as second:
                why = f"{why}; keeping it aside failed too: {error_text(second)}"
            else:
                return StoreError(
                    "write_failed",
                    f"Intuit issued a new refresh token but it could not be saved to {self.env_path} ({why}); "
                    f"it is kept in {kept_in}: fix that, then run `sidequest refresh-qb` to finish saving it",
                    kept_in=kept_in,
                )
        return StoreError(
            "write_failed",
            f"Intuit issued a new refresh token but it could not be saved ({why}), so the connection saved in "
            f"{self.env_path} no longer works: run `sidequest reauth-qb` to reconnect",
        )

    def _finish_recovery(self) -> None:
        """Save a rotation an earlier run could not (the caller holds the lock)."""
        kept = recovery.load(self.home)
        if kept is None or unstorable(kept.refresh_token) is not None:
            return
        current = self.credentials().refresh_token
        if current == kept.refresh_token:
            recovery.discard(self.home)  # saved meanwhile
            return
        if not kept.applies_to(current):
            return  # .env changed since (a new consent): the kept token belongs to an older chain
        self._remember("refresh_token", kept.refresh_token)
        try:
            save(self.env_path, kept.updates)
        except StoreError as exc:
            raise StoreError(
                "write_failed", f"{exc}; the new token is still kept in {self.home / recovery.RECOVERY_NAME}"
            ) from None
        recovery.discard(self.home)
        self._record_lineage(kept.refresh_token, lineage.ROTATION, replaces=current)

    def _record_lineage(self, token: str, kind: str, *, replaces: str | None = None) -> None:
        """Add a token just saved to `.env` to the chain's lineage (the caller holds the lock; never raises)."""
        lineage.record(
            self.home, token, kind, program=lineage.program_name(self.command), replaces=replaces, now=self._clock()
        )

    @_scrubbed
    def prove_writable(self) -> None:
        """StoreError unless a new `.env` can be written now: call it before asking Intuit for tokens."""
        prove_writable(self.env_path)

    @_scrubbed
    def save_consent(self, token: TokenResponse, *, realm_id: str, environment: str, wait: float = 10.0) -> None:
        """Store the first tokens of a new chain (after reauth-qb's code exchange)."""
        realm_id = str(realm_id).strip()
        environment = str(environment).strip()
        with self.locked(wait):
            now = self._clock()
            updates: dict[str, str | None] = {
                "QB_REFRESH_TOKEN": token.refresh_token,
                "QB_REALM_ID": realm_id,
                "QB_ENVIRONMENT": environment,
                "QB_TOKEN_ENVIRONMENT": environment,
                "QB_TOKEN_REALM_ID": realm_id,
            }
            self._cache_access_token(token, now)
            updates.update(metadata(token, now, drop_missing_hard=True))
            save(self.env_path, updates)
            recovery.discard(self.home)  # a new chain: a token kept from the old one is dead
            self._record_lineage(token.refresh_token, lineage.CONSENT)

    def access_token(self, *, wait: float = 10.0) -> str:
        """A valid access token: the cached one until 5 minutes before it expires, else a refresh."""
        cached = self._cached_access_token()
        if cached is not None:
            return cached
        # The gate keeps two threads of this process from both rotating; the second finds the
        # first one's token in the cache. Other processes are kept apart by the file lock.
        with self._refresh_gate:
            cached = self._cached_access_token()
            if cached is not None:
                return cached
            return self.refresh(wait=wait).access_token

    def _cached_access_token(self) -> str | None:
        with self._state:
            if self._access_token and self._access_expires_at:
                if self._clock() < self._access_expires_at - ACCESS_TOKEN_MARGIN:
                    return self._access_token
        return None

    def known_secrets(self) -> list[tuple[str, str]]:
        """Every token value this object has seen, so outputs can redact them."""
        with self._state:
            return list(self._seen)


# ---------------------------------------------------------------------------- connector API


def connector_hint(error: BaseException | None = None) -> str:
    """One secret-free line for the connector's failed tool call, pointing at the diagnose prompt."""
    what = "QuickBooks connection problem"
    if isinstance(error, LockTimeout):
        what = "QuickBooks token store is busy (another sidequest process holds the lock)"
    elif isinstance(error, StoreError):
        what = {
            "not_configured": "QuickBooks is not set up yet",
            "env_unreadable": "QuickBooks settings file (.env) cannot be read",
            "write_failed": "QuickBooks settings file (.env) could not be saved",
        }.get(error.reason, what)
    elif error is not None and getattr(error, "kind", None) is not None:
        what = {
            "invalid_grant": "QuickBooks sign-in has expired or was replaced",
            "invalid_client": "QuickBooks app keys were rejected",
            "network": "QuickBooks could not be reached",
            "timeout": "QuickBooks did not answer in time",
            "server_error": "QuickBooks is having trouble right now",
        }.get(getattr(error, "kind"), what)
    return f"{what} — run `{DIAGNOSE_COMMAND}` and paste the result into Claude."


_stores: dict[Path, TokenStore] = {}
_stores_lock = threading.Lock()


def get_access_token(home: Path | None = None) -> str:
    """The connector's one call: a valid access token, refreshed under the lock when needed.

    `home` defaults to $SIDEQUEST_HOME, else ~/.qb-distributor-mcp. One store per home is
    kept for the life of the process so the access token is cached between tool calls.
    """
    home = resolve_home(home, os.environ)
    with _stores_lock:
        store = _stores.get(home)
        if store is None:
            store = _stores[home] = TokenStore(home, environ=os.environ, command="sidequest connector")
    return store.access_token()
