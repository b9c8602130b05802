"""Test helpers for the local probes (lock-health, claude-config-sync) and `doctor --fix`.

They build what a real computer has: a configured home whose `.env` carries fresh chain
metadata (so token-age is quiet), a Claude Desktop config with the connector entry, a real
process holding the real token lock, and a snapshot of every file to prove "nothing changed".
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from tests.support.homes import CLIENT_SECRET, REPO, configured_values

CLAUDE_TOKEN = "RT1-17-H3-1780000000olderchaintokenabcdwxyz"  # Claude's older copy of the chain


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def fresh_values(**overrides: str) -> dict[str, str]:
    """A configured `.env` with metadata of a chain refreshed an hour ago."""
    now = datetime.now(timezone.utc)
    values = configured_values()
    values.update(
        {
            "QB_TOKEN_REFRESHED_AT": _stamp(now - timedelta(hours=1)),
            "QB_REFRESH_TOKEN_EXPIRES_AT": _stamp(now + timedelta(days=99)),
            "QB_TOKEN_ENVIRONMENT": values["QB_ENVIRONMENT"],
            "QB_TOKEN_REALM_ID": values["QB_REALM_ID"],
        }
    )
    values.update(overrides)
    return values


def connector_entry(env: dict[str, str] | None = None, command: str | None = None) -> dict[str, Any]:
    return {
        "command": command or sys.executable,
        "args": ["-m", "qb_distributor_mcp"],
        "env": dict(env) if env is not None else {},
    }


def synced_env(values: dict[str, str]) -> dict[str, str]:
    return {k: values[k] for k in ("QB_REFRESH_TOKEN", "QB_REALM_ID", "QB_ENVIRONMENT")}


def write_claude_config(path: Path, data: Any | None = None, *, raw: bytes | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if raw is None:
        raw = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    path.write_bytes(raw)
    return path


def rich_config(entry_env: dict[str, str]) -> dict[str, Any]:
    """A config like a real user's: other servers, Windows paths, unicode, extra top-level keys."""
    return {
        "globalShortcut": "Ctrl+Space",
        "mcpServers": {
            "filesystem": {
                "command": "C:\\Program Files\\nodejs\\npx.cmd",
                "args": ["-y", "@modelcontextprotocol/server-filesystem", "C:\\Users\\Zoë\\Documents\\Factures"],
            },
            "qb-distributor": connector_entry(entry_env),
            "météo": {"command": "uvx", "args": ["weather-mcp"], "env": {"CITY": "Zürich — 東京"}},
        },
        "preferences": {"theme": "dark", "ratio": 0.75, "flags": [True, None, 3]},
    }


def secrets_of(values: dict[str, str]) -> list[str]:
    found = [values.get("QB_REFRESH_TOKEN", ""), values.get("QB_CLIENT_SECRET", CLIENT_SECRET), CLAUDE_TOKEN]
    return [s for s in found if s]


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, "a secret value leaked into the output"
        assert secret[-12:] not in text, "a long piece of a secret leaked into the output"


def snapshot(*folders: Path) -> dict[str, tuple[bytes | None, int, int]]:
    """Every file under the folders: bytes (None for folders), mtime_ns and mode."""
    state: dict[str, tuple[bytes | None, int, int]] = {}
    for folder in folders:
        if not folder.exists():
            continue
        for path in sorted([folder, *folder.rglob("*")]):
            info = path.lstat()
            content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
            state[str(path)] = (content, info.st_mtime_ns, info.st_mode)
    return state


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_owner_record(
    home: Path,
    pid: int,
    *,
    host: str | None = None,
    command: str = "sidequest connector",
    started_at: str = "2026-11-01T08:00:00Z",
) -> Path:
    path = home / ".env.lock.owner"
    path.write_text(
        json.dumps({"pid": pid, "host": host or socket.gethostname(), "started_at": started_at, "command": command}),
        encoding="utf-8",
    )
    return path


def make_old(path: Path, seconds: float = 7200) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from doctor.store.token_store import TokenStore
    home, command, record = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "record"
    if record:
        with TokenStore(home, command=command).locked(5):
            print("held", flush=True)
            time.sleep(60)
    else:
        from filelock import FileLock
        with FileLock(str(home / ".env.lock")):
            print("held", flush=True)
            time.sleep(60)
    """
)


@contextmanager
def lock_held(home: Path, command: str = "sidequest refresh-qb", *, record: bool = True) -> Iterator[subprocess.Popen]:
    """A real separate process holding the real `.env` lock until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(home), command, "record" if record else "bare"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "held", (
            f"lock holder did not start: {proc.stderr.read() if proc.poll() is not None else ''}"
        )
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)
