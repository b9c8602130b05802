"""What every probe can see: paths, the parsed `.env`, the Claude Desktop config, a clock,
and lazily created network services.

The Context is built once per run by the CLI or `run_doctor`. Expensive or risky things
(reading files, the HTTP client, the token store) are created on first use, so an offline
run never imports httpx and a probe that does not need the Claude config never parses it.
Every secret value the Context loads or that a service obtains is known to it, so the
redactor can hide it from every output.

What one probe learns that another needs (the refresh's result, Intuit's clock, the company
lookups) is a typed attribute of `RunFacts` (`ctx.run_facts`), guarded by that run's own lock,
rather than a string key in a dict: a probe reads a fact, never another probe's module.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Union

from doctor.claude_desktop.paths import resolve_claude_config  # noqa: F401 - re-exported
from doctor.store.home import DEFAULT_HOME_NAME, HOME_ENV, resolve_home  # noqa: F401 - re-exported
from doctor.store.keys import SECRET_ENV_KEYS
from doctor.values import Value

if TYPE_CHECKING:  # pragma: no cover
    from doctor.claude_desktop.config import ClaudeConfig
    from doctor.intuit.client import IntuitClient
    from doctor.intuit.errors import IntuitError
    from doctor.intuit.responses import CompanyInfo
    from doctor.model import ProbeResult
    from doctor.store.env_file import EnvFile
    from doctor.store.token_store import RefreshResult, TokenStore

    CompanyLookup = Union[CompanyInfo, IntuitError]

CLAUDE_CONFIG_ENV = "SIDEQUEST_CLAUDE_CONFIG"


class _NoNetwork:
    """Stands in for the Intuit client in an offline run: any use is refused, nothing is sent."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("offline run: no network access allowed")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Loaded(Value):
    """A lazily loaded input: the value, or the error that prevented loading it."""

    __slots__ = ("value", "error")

    def __init__(self, value: Any = None, error: Exception | None = None) -> None:
        self.value = value
        self.error = error


class ServerDate(Value):
    """Intuit's clock (an answer's `Date` header) next to this computer's at that moment."""

    __slots__ = ("where", "server_date", "local")

    def __init__(self, where: str, server_date: datetime, local: datetime) -> None:
        self.where = where
        self.server_date = server_date
        self.local = local


class _Pending:
    """One company lookup: asked once; every other asker waits for the same answer."""

    __slots__ = ("done", "outcome", "crash")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.outcome: Any = None
        self.crash: BaseException | None = None


class RunFacts:
    """What probes learn during one run that other probes use, as typed attributes.

    One per Context, with its own lock: nothing here outlives the run or is shared between
    runs (two `run_doctor` calls in one process never see each other's facts).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refresh: RefreshResult | None = None
        self._server_dates: list[ServerDate] = []
        self._company: dict[tuple[str, str], _Pending] = {}

    @property
    def refresh(self) -> RefreshResult | None:
        """This run's one refresh through the token store, when it succeeded (refresh-chain)."""
        with self._lock:
            return self._refresh

    @property
    def access_token(self) -> str | None:
        """The fresh access token of this run's refresh, or None when there was no refresh."""
        refresh = self.refresh
        return refresh.access_token if refresh is not None else None

    def record_refresh(self, result: RefreshResult) -> None:
        with self._lock:
            self._refresh = result

    def record_server_date(self, where: str, server_date: datetime, local: datetime) -> None:
        with self._lock:
            self._server_dates.append(ServerDate(where, server_date, local))

    @property
    def server_dates(self) -> tuple[ServerDate, ...]:
        """Every Intuit clock reading of this run, in the order the probes took them."""
        with self._lock:
            return tuple(self._server_dates)

    def company_lookup(self, environment: str, realm_id: str, ask: Callable[[], CompanyLookup]) -> CompanyLookup:
        """The answer for (environment, realm): `ask()` runs once per run; a second asker waits for it."""
        pending, mine = self._claim(environment, realm_id)
        if mine:
            self._settle(pending, ask)
        pending.done.wait()
        if pending.crash is not None:
            raise pending.crash
        return pending.outcome

    def start_company_lookup(self, environment: str, realm_id: str, ask: Callable[[], CompanyLookup]) -> None:
        """Ask for (environment, realm) in the background, unless it was asked already."""
        pending, mine = self._claim(environment, realm_id)
        if mine:
            threading.Thread(
                target=self._settle, args=(pending, ask), name=f"company-lookup-{environment}", daemon=True
            ).start()

    def _claim(self, environment: str, realm_id: str) -> tuple[_Pending, bool]:
        with self._lock:
            key = (environment, realm_id)
            if key in self._company:
                return self._company[key], False
            pending = self._company[key] = _Pending()
            return pending, True

    @staticmethod
    def _settle(pending: _Pending, ask: Callable[[], CompanyLookup]) -> None:
        try:
            pending.outcome = ask()
        except BaseException as exc:  # raised again in each asker, whose probe the runner isolates
            pending.crash = exc
        finally:
            pending.done.set()


class Context:
    """Per-run state shared by probes. Thread-safe: probes run concurrently."""

    def __init__(
        self,
        home: Path,
        claude_config_path: Path | None,
        *,
        environ: Mapping[str, str] | None = None,
        offline: bool = False,
        verbose: bool = False,
        clock: Callable[[], datetime] = utc_now,
        lock_wait: float = 2.0,
        http_timeout: float = 8.0,
    ) -> None:
        self.home = home
        self.env_path = home / ".env"
        self.claude_config_path = claude_config_path
        self.environ: Mapping[str, str] = dict(os.environ if environ is None else environ)
        self.offline = offline
        self.verbose = verbose
        self.clock = clock
        self.lock_wait = lock_wait
        self.http_timeout = http_timeout
        self.results: dict[str, ProbeResult] = {}
        self.run_facts = RunFacts()  # what probes learn in this run that other probes use
        self.notes: list[str] = []  # run-level notes for every output ("refreshed once ...")
        self._lock = threading.RLock()
        self._env: Loaded | None = None
        self._claude: Loaded | None = None
        self._extensions: Loaded | None = None
        self._intuit: IntuitClient | None = None
        self._token_store: TokenStore | None = None
        self._extra_secrets: list[tuple[str, str]] = []

    # -- inputs -------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock()

    def add_note(self, sentence: str) -> None:
        """A run-level note every output shows (for example "refreshed once ...")."""
        with self._lock:
            self.notes.append(sentence)

    def load_env(self) -> Loaded:
        """The parsed `.env` (a `doctor.store.env_file.EnvFile`) or the `EnvFileError` reading it."""
        with self._lock:
            if self._env is None:
                from doctor.store.env_file import EnvFileError, read_env_file

                try:
                    self._env = Loaded(read_env_file(self.env_path))
                except EnvFileError as exc:
                    self._env = Loaded(error=exc)
            return self._env

    @property
    def env_file(self) -> EnvFile | None:
        return self.load_env().value

    def env(self, key: str) -> str | None:
        """A `.env` value, stripped; None when missing, empty or unreadable."""
        env_file = self.env_file
        return env_file.get(key) if env_file is not None else None

    def load_claude_config(self) -> Loaded:
        """The parsed Claude Desktop config or the `ClaudeConfigError` reading it."""
        with self._lock:
            if self._claude is None:
                from doctor.claude_desktop.config import ClaudeConfigError, load_claude_config

                if self.claude_config_path is None:
                    self._claude = Loaded(error=None)
                else:
                    try:
                        self._claude = Loaded(load_claude_config(self.claude_config_path))
                    except ClaudeConfigError as exc:
                        self._claude = Loaded(error=exc)
            return self._claude

    @property
    def claude_config(self) -> ClaudeConfig | None:
        return self.load_claude_config().value

    def load_extensions(self) -> Loaded:
        """The Desktop Extensions installed beside Claude Desktop's config (a list, read once a run
        for every probe that asks), or the `ExtensionsError` reading them."""
        with self._lock:
            if self._extensions is None:
                from doctor.claude_desktop.extensions import ExtensionsError, load_extensions

                if self.claude_config_path is None:
                    self._extensions = Loaded([])
                else:
                    try:
                        self._extensions = Loaded(load_extensions(self.claude_config_path.parent))
                    except ExtensionsError as exc:
                        self._extensions = Loaded(error=exc)
            return self._extensions

    # -- services -----------------------------------------------------------------------

    @property
    def intuit(self) -> IntuitClient:
        """The Intuit client (imports httpx on first use). Refused in offline mode."""
        if self.offline:
            raise RuntimeError("offline run: no network access allowed")
        with self._lock:
            if self._intuit is None:
                from doctor.intuit.client import IntuitClient

                self._intuit = IntuitClient(
                    environ=self.environ, timeout=self.http_timeout, connect_timeout=min(5.0, self.http_timeout)
                )
            return self._intuit

    @property
    def token_store(self) -> TokenStore:
        """The locked token store the connector uses; its network client is created lazily."""
        with self._lock:
            if self._token_store is None:
                from doctor.store.token_store import TokenStore

                intuit = _NoNetwork() if self.offline else self.intuit
                self._token_store = TokenStore(
                    self.home, intuit=intuit, clock=self.clock, environ=self.environ, command="sidequest doctor"
                )
            return self._token_store

    def close(self) -> None:
        with self._lock:
            if self._intuit is not None:
                self._intuit.close()

    # -- secrets ------------------------------------------------------------------------

    def add_secret(self, value: str | None, kind: str = "secret") -> None:
        if value:
            with self._lock:
                self._extra_secrets.append((kind, value))

    def secrets(self) -> list[tuple[str, str]]:
        """Every secret value this run has seen: from `.env`, the Claude config, services."""
        found: list[tuple[str, str]] = []
        env_file = self.env_file
        if env_file is not None:
            for key, kind in SECRET_ENV_KEYS.items():
                value = env_file.values.get(key)
                if value and value.strip():
                    found.append((kind, value))
                    found.append((kind, value.strip()))
        for key, kind in SECRET_ENV_KEYS.items():
            if self.environ.get(key):
                found.append((kind, self.environ[key]))
        claude = self.load_claude_config().value
        if claude is not None:
            entry = claude.connector()
            if entry is not None:
                for key, kind in SECRET_ENV_KEYS.items():
                    value = entry.env.get(key)
                    if isinstance(value, str) and value:
                        found.append((kind, value))
        with self._lock:
            if self._token_store is not None:
                found.extend(self._token_store.known_secrets())
            found.extend(self._extra_secrets)
        return found

    def client_id(self) -> str | None:
        return self.env("QB_CLIENT_ID") or self.environ.get("QB_CLIENT_ID")
