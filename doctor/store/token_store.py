"""The locked token store: the one way the connector and sidequest read and rotate the chain.

Intuit rotates the refresh token and invalidates the old one (INTUIT.md §2.3). Two processes
refreshing at once — Claude Desktop's connector, a cron `sidequest refresh-qb`, the doctor —
would each get a new token and one of them would be written over the other, breaking the
chain for good. So every refresh happens under a cross-process lock on `HOME/.env.lock`,
re-reads `.env` after taking it (another holder may just have rotated), and writes the new
token back before letting go. `.env` wins over the process environment for every QB_* key:
Claude Desktop's `env` block holds a copy that goes stale after the first rotation.

Beside the lock lives an owner record (`.env.lock.owner`, JSON): who holds the lock, since
when, doing what. filelock truncates the lock file itself, so the record cannot live inside
it. It is advisory: the kernel lock is the truth and dies with its process; a record left by
a killed process is recognised by `OwnerRecord.alive()`.

No secret value ever appears in a message or repr produced here.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from doctor.redaction import redacted_form
from doctor.store.env_file import EnvFileError, read_env_file, update_env_file
from doctor.store.home import resolve_home

# The records and names the lock-health probe reads too live in a module of their own, so the
# offline doctor can read them without importing the store.
from doctor.store.lock_records import (  # noqa: F401 - re-exported: part of this module's API
    LOCK_NAME,
    OWNER_NAME,
    OwnerRecord,
    format_timestamp,
    parse_timestamp,
    this_host,
)
from doctor.values import Value

if TYPE_CHECKING:  # pragma: no cover
    from doctor.intuit.client import IntuitClient
    from doctor.intuit.responses import TokenResponse


DEFAULT_REDIRECT_URI = "https://sidequestautomation.com/qb/callback"
REQUIRED_KEYS = ("QB_CLIENT_ID", "QB_CLIENT_SECRET", "QB_REFRESH_TOKEN", "QB_REALM_ID")
# An access token is reused until this close to its expiry, so a tool call never starts
# with a token that dies mid-request.
ACCESS_TOKEN_MARGIN = timedelta(minutes=5)
# One retry of a transient failure, after a pause long enough for a blip to pass but short
# enough that the connector's tool call still answers promptly.
RETRY_BACKOFF_SECONDS = 0.5
# Errors that mean "this token or app is dead": retrying only burns the user's time.
NEVER_RETRY = frozenset({"invalid_grant", "invalid_client"})
LOCK_POLL_SECONDS = 0.01
# A refresh ends within this many seconds, lock wait and Intuit's answer included, so a stalled
# Intuit can never keep the .env lock for minutes (issue 9 §1). SIDEQUEST_REFRESH_BUDGET overrides it.
REFRESH_BUDGET_SECONDS = 30.0
REFRESH_BUDGET_ENV = "SIDEQUEST_REFRESH_BUDGET"
# A retry is only worth starting with at least this much of the budget left after the pause.
MIN_ATTEMPT_SECONDS = 1.0
DIAGNOSE_COMMAND = "sidequest doctor --format prompt"


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def refresh_budget(environ: Mapping[str, str]) -> float:
    """Seconds one refresh may take: $SIDEQUEST_REFRESH_BUDGET when a positive number, else 30."""
    try:
        value = float((environ.get(REFRESH_BUDGET_ENV) or "").strip())
    except ValueError:
        return REFRESH_BUDGET_SECONDS
    return value if 0 < value < float("inf") else REFRESH_BUDGET_SECONDS


# ---------------------------------------------------------------------------- lock owner


class LockTimeout(Exception):
    """The `.env` lock stayed taken for the whole bounded wait."""

    def __init__(self, holder: OwnerRecord | None, waited: float, now: datetime | None = None) -> None:
        self.holder = holder
        self.waited = waited
        if holder is not None:
            who = holder.describe(now or _utc_now())
        else:
            who = "holder unknown (no owner record)"
        super().__init__(f"the .env lock is held by another process — {who}; gave up after waiting {waited:.1f} s")


class StoreError(Exception):
    """The store cannot do its job; the message is for a person and holds no secret.

    `reason`: not_configured, env_unreadable, lock_failed, write_failed.
    """

    def __init__(self, reason: str, message: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reason = reason
        self.missing = missing


# ---------------------------------------------------------------------------- values


class Credentials(Value):
    """What the chain needs, read from `.env` (preferred) else the process environment, per key."""

    __slots__ = (
        "client_id",
        "client_secret",
        "refresh_token",
        "realm_id",
        "environment",
        "redirect_uri",
        "refresh_token_source",
        "refreshed_at",
        "expires_at",
        "hard_expires_at",
        "token_environment",
        "token_realm_id",
    )

    def __init__(
        self,
        client_id: str | None,
        client_secret: str | None,
        refresh_token: str | None,
        realm_id: str | None,
        environment: str | None,
        redirect_uri: str,
        refresh_token_source: str,
        refreshed_at: datetime | None,
        expires_at: datetime | None,
        hard_expires_at: datetime | None,
        token_environment: str | None,
        token_realm_id: str | None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.realm_id = realm_id
        self.environment = environment
        self.redirect_uri = redirect_uri
        self.refresh_token_source = refresh_token_source
        self.refreshed_at = refreshed_at
        self.expires_at = expires_at
        self.hard_expires_at = hard_expires_at
        self.token_environment = token_environment
        self.token_realm_id = token_realm_id

    def missing(self) -> list[str]:
        present = {
            "QB_CLIENT_ID": self.client_id,
            "QB_CLIENT_SECRET": self.client_secret,
            "QB_REFRESH_TOKEN": self.refresh_token,
            "QB_REALM_ID": self.realm_id,
        }
        return [key for key in REQUIRED_KEYS if not present[key]]

    def __repr__(self) -> str:
        return (
            f"Credentials(client_id={self.client_id!r}, "
            f"client_secret={redacted_form('client_secret', self.client_secret)!r}, "
            f"refresh_token={redacted_form('refresh_token', self.refresh_token)!r}, realm_id={self.realm_id!r}, "
            f"environment={self.environment!r}, refresh_token_source={self.refresh_token_source!r}, "
            f"refreshed_at={self.refreshed_at!r}, expires_at={self.expires_at!r}, "
            f"hard_expires_at={self.hard_expires_at!r})"
        )

    __str__ = __repr__


class RefreshResult(Value):
    __slots__ = (
        "access_token",
        "refresh_token",
        "rotated",
        "previous_refresh_token",
        "refreshed_at",
        "expires_at",
        "hard_expires_at",
        "intuit_tid",
        "attempts",
    )

    def __init__(
        self,
        access_token: str,
        refresh_token: str,
        rotated: bool,
        previous_refresh_token: str,
        refreshed_at: datetime,
        expires_at: datetime | None,
        hard_expires_at: datetime | None,
        intuit_tid: str | None,
        attempts: int,
    ) -> None:
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.rotated = rotated
        self.previous_refresh_token = previous_refresh_token
        self.refreshed_at = refreshed_at
        self.expires_at = expires_at
        self.hard_expires_at = hard_expires_at
        self.intuit_tid = intuit_tid
        self.attempts = attempts

    def __repr__(self) -> str:
        return (
            f"RefreshResult(access_token={redacted_form('access_token', self.access_token)!r}, "
            f"refresh_token={redacted_form('refresh_token', self.refresh_token)!r}, rotated={self.rotated}, "
            f"previous_refresh_token={redacted_form('refresh_token', self.previous_refresh_token)!r}, "
            f"refreshed_at={self.refreshed_at!r}, expires_at={self.expires_at!r}, "
            f"hard_expires_at={self.hard_expires_at!r}, intuit_tid={self.intuit_tid!r}, attempts={self.attempts})"
        )

    __str__ = __repr__


# ---------------------------------------------------------------------------- the store


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
        self.lock_path = self.home / LOCK_NAME
        self.owner_path = self.home / OWNER_NAME
        self.command = command
        self._intuit = intuit
        self._owns_intuit = False
        self._clock = clock or _utc_now
        self._environ: Mapping[str, str] = environ if environ is not None else {}
        self._file_lock = None  # filelock.FileLock, created on first use
        self._held = threading.local()  # per-thread nesting depth of locked()
        self._state = threading.Lock()  # guards the in-memory caches below
        self._refresh_gate = threading.Lock()  # one refresh at a time within this process
        self._access_token: str | None = None
        self._access_expires_at: datetime | None = None
        self._seen: list[tuple[str, str]] = []

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

    def credentials(self) -> Credentials:
        """A fresh read of `.env`, falling back to the process environment key by key."""
        try:
            env_file = read_env_file(self.env_path)
        except EnvFileError as exc:
            if exc.reason != "missing":
                raise StoreError("env_unreadable", str(exc)) from None
            env_file = None

        def pick(key: str) -> tuple[str | None, str | None]:
            if env_file is not None:
                value = env_file.get(key)
                if value is not None:
                    return value, ".env"
            value = (self._environ.get(key) or "").strip()
            return (value, "environment") if value else (None, None)

        refresh_token, source = pick("QB_REFRESH_TOKEN")
        credentials = Credentials(
            client_id=pick("QB_CLIENT_ID")[0],
            client_secret=pick("QB_CLIENT_SECRET")[0],
            refresh_token=refresh_token,
            realm_id=pick("QB_REALM_ID")[0],
            environment=pick("QB_ENVIRONMENT")[0],
            redirect_uri=pick("QB_REDIRECT_URI")[0] or DEFAULT_REDIRECT_URI,
            refresh_token_source=source or ".env",
            refreshed_at=parse_timestamp(pick("QB_TOKEN_REFRESHED_AT")[0]),
            expires_at=parse_timestamp(pick("QB_REFRESH_TOKEN_EXPIRES_AT")[0]),
            hard_expires_at=parse_timestamp(pick("QB_REFRESH_TOKEN_HARD_EXPIRES_AT")[0]),
            token_environment=pick("QB_TOKEN_ENVIRONMENT")[0],
            token_realm_id=pick("QB_TOKEN_REALM_ID")[0],
        )
        if refresh_token:
            self._remember("refresh_token", refresh_token)
        return credentials

    def owner(self) -> OwnerRecord | None:
        """The owner record beside the lock, or None when absent or garbled."""
        try:
            with open(self.owner_path, encoding="utf-8") as handle:
                text = handle.read(4096)
        except (OSError, UnicodeDecodeError):
            return None
        return OwnerRecord.from_json(text)

    # -- the lock ----------------------------------------------------------------------------

    def _lock(self):  # -> filelock.FileLock
        if self._file_lock is None:
            from filelock import FileLock

            # A short poll keeps waiters from starving behind a holder that re-takes the lock
            # at once (flock has no queue); 10 ms of polling costs nothing measurable.
            self._file_lock = FileLock(str(self.lock_path), mode=0o600, poll_interval=LOCK_POLL_SECONDS)
        return self._file_lock

    @contextmanager
    def locked(self, wait: float) -> Iterator[None]:
        """Hold the cross-process `.env` lock; waits at most `wait` seconds, else LockTimeout."""
        depth = getattr(self._held, "depth", 0)
        if depth:
            # Re-entered by the same thread (refresh inside a caller's locked block).
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        from filelock import Timeout

        try:
            self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError("lock_failed", f"cannot create {self.home}: {exc.strerror}") from None
        lock = self._lock()
        started = time.monotonic()
        try:
            lock.acquire(timeout=max(0.0, float(wait)))
        except Timeout:
            raise LockTimeout(self.owner(), time.monotonic() - started, self._clock()) from None
        except OSError as exc:
            raise StoreError("lock_failed", f"cannot take the lock {self.lock_path}: {exc.strerror}") from None
        record = OwnerRecord(os.getpid(), this_host(), self._clock(), self.command)
        self._held.depth = 1
        try:
            self._write_owner(record)
            yield
        finally:
            self._held.depth = 0
            self._remove_owner(record)
            lock.release()

    def _write_owner(self, record: OwnerRecord) -> None:
        # Advisory only, so no fsync; replace() keeps readers from seeing half a record.
        try:
            import tempfile  # only writers need it; keeps the doctor's start-up lean

            fd, temp = tempfile.mkstemp(prefix=OWNER_NAME + ".tmp-", dir=self.home)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(record.to_json())
            os.replace(temp, self.owner_path)
        except OSError:
            pass

    def _remove_owner(self, record: OwnerRecord) -> None:
        current = self.owner()
        # Compare serialised forms: the stored timestamp has seconds precision only.
        if current is not None and current.to_json() == record.to_json():
            try:
                os.unlink(self.owner_path)
            except OSError:
                pass

    # -- rotating ----------------------------------------------------------------------------

    def _client(self) -> IntuitClient:
        if self._intuit is None:
            from doctor.intuit.client import IntuitClient

            self._intuit = IntuitClient(environ=self._environ)
            self._owns_intuit = True
        return self._intuit

    def _remember(self, kind: str, value: str) -> None:
        with self._state:
            if (kind, value) not in self._seen:
                self._seen.append((kind, value))

    def _metadata(self, token: TokenResponse, now: datetime, *, drop_missing_hard: bool) -> dict[str, str | None]:
        updates: dict[str, str | None] = {"QB_TOKEN_REFRESHED_AT": format_timestamp(now)}
        if token.refresh_expires_in is not None:
            updates["QB_REFRESH_TOKEN_EXPIRES_AT"] = format_timestamp(now + timedelta(seconds=token.refresh_expires_in))
        if token.hard_expires_in is not None:
            updates["QB_REFRESH_TOKEN_HARD_EXPIRES_AT"] = format_timestamp(
                now + timedelta(seconds=token.hard_expires_in)
            )
        elif drop_missing_hard:
            # A new consent starts a new chain: an old chain's hard cap no longer applies.
            updates["QB_REFRESH_TOKEN_HARD_EXPIRES_AT"] = None
        return updates

    def _write(self, updates: Mapping[str, str | None]) -> None:
        try:
            update_env_file(self.env_path, updates)
        except EnvFileError as exc:
            raise StoreError("write_failed", f"could not save the new token to .env: {exc}") from None
        except OSError as exc:
            raise StoreError(
                "write_failed", f"could not save the new token to {self.env_path}: {exc.strerror or type(exc).__name__}"
            ) from None

    def _cache_access_token(self, token: TokenResponse, now: datetime) -> None:
        with self._state:
            self._access_token = token.access_token
            self._access_expires_at = now + timedelta(seconds=max(0, int(token.expires_in)))
        self._remember("access_token", token.access_token)
        self._remember("refresh_token", token.refresh_token)

    def refresh(self, *, wait: float = 10.0, budget: float | None = None) -> RefreshResult:
        """One locked refresh of the chain; `.env` holds the new token before the lock is released.

        The whole refresh (lock wait, Intuit's answer, a retry) ends within `budget` seconds
        (default: refresh_budget() of the store's environment). Raises LockTimeout, StoreError
        (not configured, unreadable, write failed) or the IntuitError of the refresh call
        (then `.env` is untouched).
        """
        from doctor.intuit.errors import IntuitError

        budget = refresh_budget(self._environ) if budget is None else budget
        deadline = time.monotonic() + budget
        with self.locked(min(wait, budget)):
            credentials = self.credentials()
            needed = [k for k in ("QB_CLIENT_ID", "QB_CLIENT_SECRET", "QB_REFRESH_TOKEN") if k in credentials.missing()]
            if needed:
                raise StoreError(
                    "not_configured",
                    f"cannot refresh: {', '.join(needed)} missing from {self.env_path} and the environment",
                    tuple(needed),
                )
            assert credentials.client_id and credentials.client_secret and credentials.refresh_token
            client = self._client()
            attempts = 0
            while True:
                attempts += 1
                try:
                    token = client.refresh(
                        credentials.client_id, credentials.client_secret, credentials.refresh_token, deadline=deadline
                    )
                    break
                except IntuitError as exc:
                    time_left = deadline - time.monotonic() > RETRY_BACKOFF_SECONDS + MIN_ATTEMPT_SECONDS
                    if attempts == 1 and exc.retryable and exc.kind not in NEVER_RETRY and time_left:
                        time.sleep(RETRY_BACKOFF_SECONDS)
                        continue
                    raise
            now = self._clock()
            # Remember before writing: if the write fails, the redactor must still know it.
            self._cache_access_token(token, now)
            rotated = token.refresh_token != credentials.refresh_token
            updates: dict[str, str | None] = {}
            if rotated or credentials.refresh_token_source != ".env":
                # A token that only lived in the process environment moves into .env, the source of truth.
                updates["QB_REFRESH_TOKEN"] = token.refresh_token
            updates.update(self._metadata(token, now, drop_missing_hard=False))
            self._write(updates)
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

    def save_consent(self, token: TokenResponse, *, realm_id: str, environment: str, wait: float = 10.0) -> None:
        """Store the first tokens of a new chain (after reauth-qb's code exchange)."""
        realm_id = str(realm_id).strip()
        environment = str(environment).strip()
        with self.locked(wait):
            now = self._clock()
            self._cache_access_token(token, now)
            updates: dict[str, str | None] = {
                "QB_REFRESH_TOKEN": token.refresh_token,
                "QB_REALM_ID": realm_id,
                "QB_ENVIRONMENT": environment,
                "QB_TOKEN_ENVIRONMENT": environment,
                "QB_TOKEN_REALM_ID": realm_id,
            }
            updates.update(self._metadata(token, now, drop_missing_hard=True))
            self._write(updates)

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
