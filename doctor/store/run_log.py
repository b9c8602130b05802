"""What the last few `sidequest refresh-qb` runs ended with, kept in `HOME/refresh-runs.json`.

Why: a scheduled refresh (`sidequest keepalive on`) runs where nobody reads its output, so the
doctor's `keepalive` probe and `sidequest keepalive status` learn what happened from here. An
entry is a UTC time and one outcome word, `ok` or the kind of refusal (`invalid_grant`,
`network`, `lock_timeout`, ...), never a token, a key or a message. The file is replaced
atomically and keeps only the newest `MAX_RUNS` entries; a damaged file reads as empty and the
next run writes a good one. Two runs finishing at the same instant may keep only one of their
entries: the log is evidence, not an audit trail, so it takes no lock.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from doctor.store.atomic_file import replace_atomically
from doctor.store.timestamps import format_timestamp, parse_timestamp
from doctor.values import Value

RUN_LOG_NAME = "refresh-runs.json"
MAX_RUNS = 10
MAX_LOG_BYTES = 64 * 1024
OK = "ok"
# Outcomes that mean the chain itself is gone: only a new consent (`reauth-qb`) helps.
CHAIN_DEAD = frozenset({"invalid_grant"})
_MAX_OUTCOME_CHARS = 40


def is_outcome_word(text: object) -> bool:
    """An outcome is a short lower-case word (letters, digits, `_`): nothing secret fits in one."""
    return (
        isinstance(text, str)
        and 0 < len(text) <= _MAX_OUTCOME_CHARS
        and text.isascii()
        and all(ch.isalnum() or ch == "_" for ch in text)
        and text == text.lower()
    )


class RefreshRun(Value):
    """One `refresh-qb` run: when it ended (UTC) and how (`ok` or the refusal kind)."""

    __slots__ = ("at", "outcome")

    def __init__(self, at: datetime, outcome: str) -> None:
        self.at = at
        self.outcome = outcome

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    def to_json(self) -> dict[str, str]:
        return {"at": format_timestamp(self.at), "outcome": self.outcome}


def run_log_path(home: Path) -> Path:
    return Path(home) / RUN_LOG_NAME


def read_runs(home: Path) -> list[RefreshRun]:
    """The recorded runs, oldest first; an absent or unreadable log is an empty list."""
    try:
        with open(run_log_path(home), "rb") as handle:
            raw = handle.read(MAX_LOG_BYTES + 1)
    except OSError:
        return []
    if len(raw) > MAX_LOG_BYTES:
        return []
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []
    entries = data.get("runs") if isinstance(data, dict) else None
    runs: list[RefreshRun] = []
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        at = parse_timestamp(entry.get("at")) if isinstance(entry.get("at"), str) else None
        outcome = entry.get("outcome")
        if at is not None and is_outcome_word(outcome):
            runs.append(RefreshRun(at, outcome))
    runs.sort(key=lambda run: run.at)
    return runs[-MAX_RUNS:]


def last_run(home: Path) -> RefreshRun | None:
    runs = read_runs(home)
    return runs[-1] if runs else None


def record_run(home: Path, outcome: str, *, now: datetime | None = None) -> bool:
    """Append one run's outcome; True when it was saved.

    Never raises: a refresh that worked must not fail because its log could not be written.
    A home that does not exist is not created for a log.
    """
    if not is_outcome_word(outcome):
        outcome = "error"  # only a word is ever stored: whatever else came cannot reach the file
    home = Path(home)
    if not home.is_dir():
        return False
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    runs = read_runs(home) + [RefreshRun(moment, outcome)]
    runs.sort(key=lambda run: run.at)
    body = {"version": 1, "runs": [run.to_json() for run in runs[-MAX_RUNS:]]}
    data = (json.dumps(body, indent=2) + "\n").encode("utf-8")
    try:
        replace_atomically(run_log_path(home), data, 0o600, prefix=f".{RUN_LOG_NAME}.tmp-")
    except OSError:
        return False
    return True


def failure_outlived(run: RefreshRun, refreshed_at: datetime | None) -> bool:
    """True when a failed run was followed by a successful token response recorded in `.env`.

    `.env`'s QB_TOKEN_REFRESHED_AT is written by every successful refresh and consent, from
    any program that uses the token store (the connector, the doctor, reauth-qb), so a
    failure older than it no longer describes the chain.
    """
    return not run.ok and refreshed_at is not None and refreshed_at > run.at
