"""`sidequest refresh-qb`: one locked refresh of the token chain, for people and for cron.

It keeps Intuit's 100-day idle clock from running out. The refresh goes through the same
locked token store the connector uses, so it is safe to run while Claude Desktop works.
Output names the token only in redacted form.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from doctor.advice import AFTER_REFRESH_REFUSAL, DIAGNOSIS_PLEASE
from doctor.console import Console
from doctor.store.home import resolve_home
from doctor.store.keys import APP_KEYS, CHAIN_KEYS


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "not reported by Intuit"


def refresh_once(console: Console, home_option: Path | None) -> int:
    """Run one locked refresh; print the outcome through `console`; record it in the home's run log;
    return the exit code."""
    from doctor.store.run_log import record_run

    home = resolve_home(home_option, os.environ)
    outcome = ["error"]  # the kind of refusal, or "ok"; an unexpected exception leaves "error"
    try:
        return _refresh(console, home, outcome)
    except KeyboardInterrupt:
        outcome[0] = "interrupted"
        raise
    finally:
        record_run(home, outcome[0])


def _refresh(console: Console, home: Path, outcome: list[str]) -> int:
    from doctor.intuit.errors import IntuitError
    from doctor.store.env_file import EnvFileError
    from doctor.store.env_lock import lock_wait_from
    from doctor.store.token_store import LockTimeout, StoreError, TokenStore

    store = TokenStore(home, environ=os.environ, command="sidequest refresh-qb")

    def say(text: str, err: bool = False) -> None:
        _say(console, store, text, err)

    try:
        creds = store.credentials()
    except (StoreError, EnvFileError) as exc:
        outcome[0] = getattr(exc, "reason", "env_unreadable")
        say(f"Cannot refresh: {exc}", err=True)
        return 1
    missing = creds.missing(APP_KEYS + CHAIN_KEYS)
    if missing:
        outcome[0] = "not_configured"
        say(
            f"Cannot refresh: {home / '.env'} is missing {', '.join(missing)}. "
            "Run `sidequest doctor` to see what to do.",
            err=True,
        )
        return 1
    try:
        result = store.refresh(wait=lock_wait_from(os.environ))
    except LockTimeout as exc:
        outcome[0] = "lock_timeout"
        say(f"Cannot refresh: {exc}", err=True)
        return 1
    except IntuitError as exc:
        outcome[0] = exc.kind
        explanation = AFTER_REFRESH_REFUSAL.get(exc.kind, DIAGNOSIS_PLEASE)
        say(f"Refresh failed: {exc}\n{explanation}", err=True)
        return 1
    except (StoreError, EnvFileError) as exc:
        outcome[0] = getattr(exc, "reason", "write_failed")
        say(f"Refresh failed: {exc}", err=True)
        return 1
    outcome[0] = "ok"
    say(_refreshed(result))
    return 0


def _say(console: Console, store: Any, text: str, err: bool = False) -> None:
    """Say `text` once the console knows every secret the store has seen or `.env` now holds."""
    secrets = list(store.known_secrets())
    creds = None
    try:
        creds = store.credentials()
    except Exception:
        pass
    if creds is not None:
        secrets += [("refresh_token", creds.refresh_token or ""), ("client_secret", creds.client_secret or "")]
    console.know_all(secrets, creds.client_id if creds else None)
    console.say(text, err=err)


def _refreshed(result: Any) -> str:
    """What a refresh that worked did, with the token redacted."""
    from doctor.redaction import redacted_form

    token = redacted_form("refresh_token", result.refresh_token)
    rotated = "Intuit issued a new token; .env now holds it" if result.rotated else "Intuit kept the same token"
    lines = [
        f"Refreshed the QuickBooks connection ({rotated}).",
        f"  refresh token:   {token}",
        f"  rolling expiry:  {_day(result.expires_at)} (extends with every use)",
        f"  hard expiry:     {_day(result.hard_expires_at)} (the five-year limit; reconnect before then)",
    ]
    if result.intuit_tid:
        lines.append(f"  intuit_tid:      {result.intuit_tid}")
    return "\n".join(lines)
