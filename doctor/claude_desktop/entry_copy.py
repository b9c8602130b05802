"""The known-good copy of the connector's entry, kept in the connector home (`claude-entry.json`).

Claude Desktop has been seen rewriting its own config and dropping `mcpServers` (at launch,
login, Cowork start: CLAUDE-DESKTOP.md Q3). Whenever SideQuest writes the connector's entry
(reauth-qb, `doctor --fix`, setup), it keeps a copy of that entry beside `.env`, so the doctor
can say "Claude Desktop removed SideQuest's entry" instead of "there is no entry", and
`--fix` can put it back exactly.

The copy holds no secret. Values that `.env` already holds (the refresh token, the company,
the environment: the synced keys) and every value whose key names a secret (TOKEN, SECRET,
PASSWORD, KEY) are left out and listed under `from_env`; a restore takes them from `.env`,
which is their single source of truth (DESIGN.md §6). So the copy never keeps an old refresh
token (a restore puts in the current one, not one Intuit has since retired), and no secret
sits in a third file (DESIGN.md §10). A secret the entry held that `.env` does not is named
on restore, never guessed.

Written atomically with mode 0600 (doctor/store/atomic_file.py). Standard library only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from doctor.claude_desktop.config import SYNCED_KEYS, ConnectorEntry
from doctor.store.atomic_file import replace_atomically
from doctor.values import Value

COPY_FILE_NAME = "claude-entry.json"
FORMAT = 1
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY")
_MAX_COPY_BYTES = 256 * 1024


def copy_path(home: Path) -> Path:
    return Path(home) / COPY_FILE_NAME


def comes_from_env(key: str) -> bool:
    """Is this env key's value taken from `.env` on restore (never kept in the copy)?"""
    upper = key.upper()
    return key in SYNCED_KEYS or any(word in upper for word in _SECRET_WORDS)


class EntryCopy(Value):
    """The entry as SideQuest last wrote it, secrets left out (`from_env` names those keys)."""

    __slots__ = ("name", "entry", "from_env", "config", "path")

    def __init__(self, name: str, entry: dict[str, Any], from_env: tuple[str, ...], config: str, path: Path) -> None:
        self.name = name
        self.entry = entry
        self.from_env = from_env
        self.config = config
        self.path = path

    def __repr__(self) -> str:
        return f"EntryCopy(name={self.name!r}, command={self.command!r}, env_keys={list(self.env_keys)!r})"

    @property
    def command(self) -> str | None:
        command = self.entry.get("command")
        return command if isinstance(command, str) else None

    @property
    def args(self) -> tuple[str, ...]:
        args = self.entry.get("args")
        return tuple(str(a) for a in args) if isinstance(args, list) else ()

    @property
    def env_keys(self) -> tuple[str, ...]:
        env = self.entry.get("env")
        kept = list(env) if isinstance(env, dict) else []
        return tuple(sorted(set(kept) | set(self.from_env)))

    def is_for(self, config_path: Path) -> bool:
        """Was this copy taken from the config file at `config_path`?"""
        return _same_file(self.config, config_path)

    def differences(self, current: ConnectorEntry) -> list[str]:
        """What of `current` differs from the copy: "command", "args", "env keys" (values are not compared)."""
        found = []
        if current.command != self.command:
            found.append("command")
        if tuple(current.args) != self.args:
            found.append("args")
        if tuple(sorted(current.env)) != self.env_keys:
            found.append("env keys")
        return found

    def missing_env_keys(self, current: ConnectorEntry) -> list[str]:
        return sorted(set(self.env_keys) - set(current.env))

    def extra_env_keys(self, current: ConnectorEntry) -> list[str]:
        return sorted(set(current.env) - set(self.env_keys))

    def rebuilt(self, env_values: Mapping[str, str | None]) -> tuple[dict[str, Any], list[str]]:
        """(the entry to put back, with `from_env` keys filled from `env_values`; keys `.env` lacks)."""
        entry = json.loads(json.dumps(self.entry))
        env = entry.get("env") if isinstance(entry.get("env"), dict) else {}
        lacking = []
        for key in self.from_env:
            value = env_values.get(key)
            if value:
                env[key] = value
            else:
                lacking.append(key)
        entry["env"] = dict(sorted(env.items()))
        return entry, lacking


def split_entry(entry: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the entry without the values `.env` supplies on restore, the keys left out)."""
    kept = json.loads(json.dumps(dict(entry)))
    env = kept.get("env")
    from_env: list[str] = []
    if isinstance(env, dict):
        for key in list(env):
            if comes_from_env(key):
                from_env.append(key)
                del env[key]
    return kept, sorted(from_env)


def save_entry_copy(home: Path, config_path: Path, name: str, entry: Mapping[str, Any]) -> Path:
    """Write the copy of `entry` (as it now is in `config_path`) into `home`; raises OSError."""
    kept, from_env = split_entry(entry)
    document = {
        "format": FORMAT,
        "about": "The SideQuest connector's entry in Claude Desktop's config, as SideQuest last wrote it. "
        "Secrets are not kept here: they come from .env.",
        "config": str(Path(config_path).absolute()),
        "name": name,
        "entry": kept,
        "from_env": from_env,
    }
    target = copy_path(home)
    content = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    replace_atomically(target, content, 0o600, prefix=f".{COPY_FILE_NAME}.", suffix=".sidequest-tmp")
    return target


def load_entry_copy(home: Path) -> EntryCopy | None:
    """The copy in `home`, or None when there is none or it cannot be used (then it is ignored)."""
    path = copy_path(home)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(_MAX_COPY_BYTES + 1)
    except OSError:
        return None
    if len(raw) > _MAX_COPY_BYTES:
        return None
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return None
    name, entry, from_env, config = (document.get(k) for k in ("name", "entry", "from_env", "config"))
    if not (isinstance(name, str) and name and isinstance(entry, dict) and isinstance(config, str)):
        return None
    if not isinstance(from_env, list) or not all(isinstance(k, str) for k in from_env):
        return None
    env = entry.get("env", {})
    if not isinstance(entry.get("command"), str) or not isinstance(env, dict):
        return None
    if not all(isinstance(v, str) for v in env.values()):
        return None
    return EntryCopy(name, entry, tuple(from_env), config, path)


def _same_file(recorded: str, config_path: Path) -> bool:
    def real(path: str | Path) -> str:
        return os.path.normcase(os.path.realpath(os.path.abspath(path)))

    return real(recorded) == real(config_path)
