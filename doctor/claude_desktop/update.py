"""Write the connector's entry back into Claude Desktop's config, safely, keeping backups.

The same file belongs to the user and to Claude Desktop (which writes its own preferences into
it), and it holds a refresh token. So an update (DESIGN.md §6, CONTRACT) changes only the
connector's three synced values, keeps a backup beside the file, writes atomically, starts over
if Claude Desktop writes meanwhile, and never overwrites a file it could not parse.

Standard library only, plus the atomic-file helpers of `doctor.store`.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from pathlib import Path
from typing import Any, Mapping

from doctor.claude_desktop.config import (
    CONNECTOR_NAME,
    IDENTIFYING_ENV_KEYS,
    SYNCED_KEYS,
    ClaudeConfig,
    ClaudeConfigError,
    load_claude_config,
)
from doctor.store.atomic_file import fsync_folder, remove_quietly, resolve_for_write, write_temp
from doctor.values import Value

BACKUPS_KEPT = 5
BACKUP_MARKER = ".sidequest-backup-"
_BACKUP_NAME = r"^(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<counter>\d+))?$"  # compiled on first use, by re


class UpdateResult(Value):
    """What `update_connector_env` changed. `changed` maps key -> (old, new), unredacted."""

    __slots__ = ("changed", "backup_path", "entry_name")

    def __init__(self, changed: dict[str, tuple[str | None, str]], backup_path: Path | None, entry_name: str) -> None:
        self.changed = changed
        self.backup_path = backup_path
        self.entry_name = entry_name

    def __repr__(self) -> str:
        return (
            f"UpdateResult(changed_keys={sorted(self.changed)!r}, "
            f"backup_path={str(self.backup_path) if self.backup_path else None!r}, "
            f"entry_name={self.entry_name!r})"
        )


def update_connector_env(
    path: Path,
    updates: Mapping[str, str],
    *,
    create_entry: Mapping[str, Any] | None = None,
) -> UpdateResult:
    """Set the connector entry's synced env values, keeping the rest of the file (DESIGN.md §6).

    Raises ValueError for keys outside SYNCED_KEYS or non-string values, and
    ClaudeConfigError when the file cannot be parsed (then it is left byte-identical), when
    there is no connector entry and `create_entry` is not given (reason "no_connector"), or
    when the file kept changing under us (reason "changed_during_update"), or when the
    operating system refused the write (reason "unwritable"; the file is then unchanged).
    """
    path = Path(path)
    _check_updates(updates)
    if create_entry is not None and not isinstance(create_entry, Mapping):
        raise ValueError("create_entry must be a mapping (the new mcpServers entry).")

    try:
        if not os.path.lexists(path) and create_entry is not None:
            return _create_config_file(path, updates, create_entry)
        return _update_existing(path, updates, create_entry)
    except OSError as exc:
        # Callers handle one exception type; the OS reason is enough and holds no content.
        why = exc.strerror or type(exc).__name__
        raise ClaudeConfigError(
            "unwritable", f"SideQuest could not write Claude Desktop's config: {why}.", path=path
        ) from None


def _update_existing(path: Path, updates: Mapping[str, str], create_entry: Mapping[str, Any] | None) -> UpdateResult:
    # Claude Desktop writes this file too; if it does so while we work, start over rather
    # than replace its write with our older view.
    for _ in range(3):
        config = load_claude_config(path)
        new_bytes, changed, entry_name = _plan_update(config, updates, create_entry)
        if new_bytes is None:
            return UpdateResult(changed={}, backup_path=None, entry_name=entry_name)
        target = resolve_for_write(path)  # a symlink's target only if it is the user's
        temp = write_temp(
            target, new_bytes, stat.S_IMODE(os.stat(target).st_mode), prefix=f".{target.name}.", suffix=".sidequest-tmp"
        )
        try:
            if _current_bytes(target) != config.raw:
                continue
            backup = _write_backup(path, config.raw, stat.S_IMODE(os.stat(target).st_mode))
            os.replace(temp, target)
            temp = None
            fsync_folder(target.parent)
        finally:
            if temp is not None:
                remove_quietly(temp)
        _prune_backups(path, backup)
        return UpdateResult(changed=changed, backup_path=backup, entry_name=entry_name)
    raise ClaudeConfigError(
        "changed_during_update",
        "Claude Desktop's config kept changing while SideQuest tried to update it; "
        "quit Claude Desktop completely and try again.",
        path=path,
    )


def _check_updates(updates: Mapping[str, str]) -> None:
    unknown = sorted(str(key) for key in updates if key not in SYNCED_KEYS)
    if unknown:
        raise ValueError(
            f"Only {', '.join(SYNCED_KEYS)} are synced into Claude Desktop's config; refusing {', '.join(unknown)}."
        )
    not_text = sorted(key for key, value in updates.items() if not isinstance(value, str))
    if not_text:
        raise ValueError(f"Values for {', '.join(not_text)} must be strings.")


def _plan_update(
    config: ClaudeConfig, updates: Mapping[str, str], create_entry: Mapping[str, Any] | None
) -> tuple[bytes | None, dict[str, tuple[str | None, str]], str]:
    """The new file bytes (None when nothing would change), what changed, the entry's name."""
    entry = config.connector()
    if entry is None:
        return _plan_new_entry(config, updates, create_entry)
    live = config.data["mcpServers"][entry.name]
    if "env" not in live:
        live["env"] = {}
    env = live["env"]
    if not isinstance(env, dict):
        raise ClaudeConfigError(
            "not_object",
            f'In Claude Desktop\'s config, mcpServers "{entry.name}" has an env that is not '
            "an object; SideQuest will not replace it. Fix it first.",
            path=config.path,
        )
    changed: dict[str, tuple[str | None, str]] = {}
    for key, new in updates.items():
        old = env.get(key)
        if old != new:
            changed[key] = (_as_text(old), new)
            env[key] = new
    if not changed:
        return None, changed, entry.name
    return _serialise(config.data, config.raw), changed, entry.name


def _plan_new_entry(
    config: ClaudeConfig, updates: Mapping[str, str], create_entry: Mapping[str, Any] | None
) -> tuple[bytes, dict[str, tuple[str | None, str]], str]:
    """Add the connector's entry to a config that has none, if the caller gave one to add."""
    if create_entry is None:
        raise ClaudeConfigError(
            "no_connector",
            f"Claude Desktop's config has no SideQuest connector entry "
            f'(mcpServers "{CONNECTOR_NAME}", or one whose env holds '
            f"{' or '.join(IDENTIFYING_ENV_KEYS)}).",
            path=config.path,
        )
    servers = config.data.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise ClaudeConfigError(
            "not_object",
            "Claude Desktop's config has an mcpServers value that is not an object, "
            "so the connector cannot be added; fix mcpServers first.",
            path=config.path,
        )
    if CONNECTOR_NAME in servers:
        raise ClaudeConfigError(
            "not_object",
            f'Claude Desktop\'s config has an mcpServers "{CONNECTOR_NAME}" value that is '
            "not an object; SideQuest will not replace it. Fix or remove it first.",
            path=config.path,
        )
    servers[CONNECTOR_NAME] = _new_entry(create_entry, updates)
    changed = {key: (None, value) for key, value in updates.items()}
    return _serialise(config.data, config.raw), changed, CONNECTOR_NAME


def _new_entry(create_entry: Mapping[str, Any], updates: Mapping[str, str]) -> dict[str, Any]:
    # A deep, JSON-shaped copy: the caller's mapping stays untouched and must be serialisable.
    entry = json.loads(json.dumps(dict(create_entry)))
    env = entry.get("env")
    entry["env"] = {**(env if isinstance(env, dict) else {}), **updates}
    return entry


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _serialise(data: dict[str, Any], previous: bytes) -> bytes:
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (a "\ud800" escape in the file) has no UTF-8 form; escaping
        # everything keeps the value exactly.
        encoded = (json.dumps(data, indent=2, ensure_ascii=True) + "\n").encode("ascii")
    newlines = previous.count(b"\n")
    if newlines and previous.count(b"\r\n") == newlines:
        # Keep a Windows user's line endings; Claude Desktop reads either.
        encoded = encoded.replace(b"\n", b"\r\n")
    return encoded


def _create_config_file(path: Path, updates: Mapping[str, str], create_entry: Mapping[str, Any]) -> UpdateResult:
    data = {"mcpServers": {CONNECTOR_NAME: _new_entry(create_entry, updates)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    # The file will hold a refresh token: readable by the owner only.
    temp = write_temp(path, _serialise(data, b""), 0o600, prefix=f".{path.name}.", suffix=".sidequest-tmp")
    try:
        if os.path.lexists(path):  # someone created it meanwhile: do not clobber it
            raise ClaudeConfigError(
                "changed_during_update",
                "Claude Desktop's config appeared while SideQuest was creating it; try again.",
                path=path,
            )
        os.replace(temp, path)
        temp = None
        fsync_folder(path.parent)
    finally:
        if temp is not None:
            remove_quietly(temp)
    return UpdateResult(
        changed={key: (None, value) for key, value in updates.items()},
        backup_path=None,
        entry_name=CONNECTOR_NAME,
    )


def _current_bytes(target: Path) -> bytes | None:
    try:
        return target.read_bytes()
    except OSError:
        return None


def _write_backup(config_path: Path, content: bytes, mode: int) -> Path:
    """Write the previous file beside the config (where the user looks), never overwriting."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = f"{config_path.name}{BACKUP_MARKER}{stamp}"
    for counter in range(0, 1000):
        candidate = config_path.parent / (base if counter == 0 else f"{base}-{counter}")
        try:
            descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            remove_quietly(candidate)
            raise
        return candidate
    raise ClaudeConfigError("unreadable", "Could not find a free name for the config backup.", path=config_path)


def _backups(config_path: Path) -> list[tuple[tuple[str, int], Path]]:
    prefix = f"{config_path.name}{BACKUP_MARKER}"
    found = []
    try:
        names = os.listdir(config_path.parent)
    except OSError:
        return []
    for name in names:
        if not name.startswith(prefix):
            continue
        match = re.match(_BACKUP_NAME, name[len(prefix) :])
        if match:
            key = (match["stamp"], int(match["counter"] or 0))
            found.append((key, config_path.parent / name))
    return sorted(found)


def _prune_backups(config_path: Path, just_written: Path) -> None:
    """Keep the BACKUPS_KEPT newest backups: the one just written, and the others newest-modified first.

    The date in a backup's name comes from the clock at the time; a clock that was once ahead
    names an old backup "later" than today's, so ordering by name would delete the backup just
    written while the user is told it exists. The name only breaks ties between equal times.
    """
    others = []
    for key, backup in _backups(config_path):
        if backup == just_written:
            continue
        try:
            modified = os.lstat(backup).st_mtime_ns
        except OSError:  # removed meanwhile
            continue
        others.append(((modified, key), backup))
    others.sort()
    for _, old in others[: max(len(others) - (BACKUPS_KEPT - 1), 0)]:
        remove_quietly(old)
