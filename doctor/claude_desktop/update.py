"""Write the connector's entry back into Claude Desktop's config, safely, keeping backups.

The same file belongs to the user and to Claude Desktop (which writes its own preferences into
it), and it holds a refresh token. So an update (DESIGN.md §6, CONTRACT) changes only the
connector's three synced values, keeps a backup beside the file, writes atomically, starts over
if Claude Desktop writes meanwhile, and never overwrites a file it could not parse.

Two more rules (issue 10 §4). A running Claude Desktop that reads the file rewrites it and would
undo the change, so no change is written then (DesktopRunning; the process table is read only
when a change is due, so psutil stays off every other path). And each write leaves the
known-good copy of the entry in the connector home (entry_copy.py), from which
`restore_connector_entry` puts it back when Desktop drops it. setup may also point the entry at
another program (`launch`), after the user agreed.

Standard library only, plus the atomic-file helpers of `doctor.store`.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from pathlib import Path
from typing import Any, Callable, Mapping

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
    """What an update changed. `changed` maps env key -> (old, new), unredacted; `launch_changed`
    maps "command"/"args" -> (old, new); `restored` is True when the whole entry was put back."""

    __slots__ = ("changed", "backup_path", "entry_name", "launch_changed", "copy_path", "restored")

    def __init__(
        self,
        changed: dict[str, tuple[str | None, str]],
        backup_path: Path | None,
        entry_name: str,
        launch_changed: dict[str, tuple[Any, Any]] | None = None,
        copy_path: Path | None = None,
        restored: bool = False,
    ) -> None:
        self.changed = changed
        self.backup_path = backup_path
        self.entry_name = entry_name
        self.launch_changed = launch_changed or {}
        self.copy_path = copy_path
        self.restored = restored

    @property
    def anything_changed(self) -> bool:
        return bool(self.changed or self.launch_changed or self.restored)

    def __repr__(self) -> str:
        return (
            f"UpdateResult(changed_keys={sorted(self.changed)!r}, launch_changed={sorted(self.launch_changed)!r}, "
            f"backup_path={str(self.backup_path) if self.backup_path else None!r}, "
            f"entry_name={self.entry_name!r}, restored={self.restored!r})"
        )


class DesktopRunning(ClaudeConfigError):
    """Claude Desktop runs and reads this config: it would overwrite a change, so none was made."""

    def __init__(self, path: Path, count: int) -> None:
        super().__init__(
            "desktop_running",
            "Claude Desktop is running, and it rewrites its settings file, which would undo SideQuest's "
            "change; Claude Desktop's config was not changed.",
            path=path,
        )
        self.count = count


class _Plan:
    """What one attempt would write: new bytes (None: nothing to change) and what they change."""

    def __init__(
        self,
        new_bytes: bytes | None,
        entry_name: str,
        entry: dict[str, Any] | None,
        changed: dict[str, tuple[str | None, str]] | None = None,
        launch_changed: dict[str, tuple[Any, Any]] | None = None,
        restored: bool = False,
    ) -> None:
        self.new_bytes = new_bytes
        self.entry_name = entry_name
        self.entry = entry
        self.changed = changed or {}
        self.launch_changed = launch_changed or {}
        self.restored = restored


def update_connector_env(
    path: Path,
    updates: Mapping[str, str],
    *,
    create_entry: Mapping[str, Any] | None = None,
    launch: Mapping[str, Any] | None = None,
    keep_copy_in: Path | None = None,
    refuse_while_desktop_runs: bool = True,
) -> UpdateResult:
    """Set the connector entry's synced env values, keeping the rest of the file (DESIGN.md §6).

    `launch` ({"command": ..., "args": [...]}) also sets the existing entry's command and args
    when its command differs (setup, after the user agreed). `keep_copy_in` (the connector home)
    receives the known-good copy of the entry once it is written (entry_copy.py).

    Raises ValueError for keys outside SYNCED_KEYS or non-string values, and
    ClaudeConfigError when the file cannot be parsed (then it is left byte-identical), when
    there is no connector entry and `create_entry` is not given (reason "no_connector"), or
    when the file kept changing under us (reason "changed_during_update"), or when the
    operating system refused the write (reason "unwritable"; the file is then unchanged), or
    DesktopRunning (reason "desktop_running") when a change is due while Claude Desktop runs.
    """
    path = Path(path)
    _check_updates(updates)
    if create_entry is not None and not isinstance(create_entry, Mapping):
        raise ValueError("create_entry must be a mapping (the new mcpServers entry).")
    if launch is not None and not isinstance(launch.get("command"), str):
        raise ValueError("launch must give the command as text.")

    def plan(config: ClaudeConfig) -> _Plan:
        return _plan_update(config, updates, create_entry, launch)

    def new_file() -> tuple[dict[str, Any], dict[str, tuple[str | None, str]]]:
        return _new_entry(create_entry, updates), {key: (None, value) for key, value in updates.items()}

    return _write(path, plan, new_file if create_entry is not None else None, keep_copy_in, refuse_while_desktop_runs)


def restore_connector_entry(
    path: Path,
    name: str,
    entry: Mapping[str, Any],
    *,
    keep_copy_in: Path | None = None,
    refuse_while_desktop_runs: bool = True,
) -> UpdateResult:
    """Put the connector's whole entry back (from the known-good copy), keeping the rest of the file.

    The entry found now (by name or by its env keys) is replaced in place under its own name;
    with none, `entry` is added as mcpServers[`name`], creating the file if it is gone. Raises as
    `update_connector_env` does.
    """
    path = Path(path)
    wanted = json.loads(json.dumps(dict(entry)))
    if not isinstance(wanted.get("command"), str):
        raise ValueError("The entry to restore has no command.")

    def plan(config: ClaudeConfig) -> _Plan:
        return _plan_restore(config, name, wanted)

    def new_file() -> tuple[dict[str, Any], dict[str, tuple[str | None, str]]]:
        return json.loads(json.dumps(wanted)), {}

    return _write(path, plan, new_file, keep_copy_in, refuse_while_desktop_runs, name=name, restoring=True)


def _write(
    path: Path,
    plan: Callable[[ClaudeConfig], _Plan],
    new_file: Callable[[], tuple[dict[str, Any], dict[str, tuple[str | None, str]]]] | None,
    keep_copy_in: Path | None,
    refuse: bool,
    *,
    name: str = CONNECTOR_NAME,
    restoring: bool = False,
) -> UpdateResult:
    try:
        if not os.path.lexists(path) and new_file is not None:
            if refuse:
                _refuse_while_desktop_runs(path)
            entry, changed = new_file()
            _create_config_file(path, name, entry)
            result = UpdateResult(changed, None, name, restored=restoring)
            return _keep_copy(result, keep_copy_in, path, entry)
        result, entry = _update_existing(path, plan, refuse)
    except OSError as exc:
        # Callers handle one exception type; the OS reason is enough and holds no content.
        why = exc.strerror or type(exc).__name__
        raise ClaudeConfigError(
            "unwritable", f"SideQuest could not write Claude Desktop's config: {why}.", path=path
        ) from None
    return _keep_copy(result, keep_copy_in, path, entry)


def _keep_copy(result: UpdateResult, home: Path | None, path: Path, entry: dict[str, Any] | None) -> UpdateResult:
    """Record the entry as now written; a copy that cannot be written costs only the later comparison."""
    if home is None or entry is None:
        return result
    from doctor.claude_desktop.entry_copy import save_entry_copy

    try:
        result.copy_path = save_entry_copy(home, path, result.entry_name, entry)
    except OSError:
        result.copy_path = None
    return result


def _refuse_while_desktop_runs(path: Path) -> None:
    """Raise DesktopRunning when a Claude Desktop that reads `path` runs (psutil is loaded only here)."""
    from doctor.claude_desktop.processes import desktops_using

    try:
        running = desktops_using(path)
    except Exception:  # the process table cannot be read: write as before rather than never
        return
    if running:
        raise DesktopRunning(path, len(running))


def _update_existing(
    path: Path, plan: Callable[[ClaudeConfig], _Plan], refuse: bool
) -> tuple[UpdateResult, dict[str, Any] | None]:
    # Claude Desktop writes this file too; if it does so while we work, start over rather
    # than replace its write with our older view.
    checked = False
    for _ in range(3):
        config = load_claude_config(path)
        planned = plan(config)
        if planned.new_bytes is None:
            return UpdateResult(changed={}, backup_path=None, entry_name=planned.entry_name), planned.entry
        if refuse and not checked:
            _refuse_while_desktop_runs(path)
            checked = True
        target = resolve_for_write(path)  # a symlink's target only if it is the user's
        temp = write_temp(
            target,
            planned.new_bytes,
            stat.S_IMODE(os.stat(target).st_mode),
            prefix=f".{target.name}.",
            suffix=".sidequest-tmp",
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
        result = UpdateResult(
            planned.changed, backup, planned.entry_name, planned.launch_changed, restored=planned.restored
        )
        return result, planned.entry
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
    config: ClaudeConfig,
    updates: Mapping[str, str],
    create_entry: Mapping[str, Any] | None,
    launch: Mapping[str, Any] | None = None,
) -> _Plan:
    """The new file bytes (None when nothing would change), what changed, the entry."""
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
    launch_changed: dict[str, tuple[Any, Any]] = {}
    if launch is not None and live.get("command") != launch["command"]:
        # A new program: the old one's arguments (a script path, flags) belong to the old one.
        new_args = list(launch.get("args") or [])
        launch_changed["command"] = (live.get("command"), launch["command"])
        live["command"] = launch["command"]
        if live.get("args", []) != new_args:
            launch_changed["args"] = (live.get("args"), new_args)
        live["args"] = new_args
    if not changed and not launch_changed:
        return _Plan(None, entry.name, live)
    return _Plan(_serialise(config.data, config.raw), entry.name, live, changed, launch_changed)


def _plan_restore(config: ClaudeConfig, name: str, wanted: dict[str, Any]) -> _Plan:
    found = config.connector()
    servers = config.data.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise ClaudeConfigError(
            "not_object",
            "Claude Desktop's config has an mcpServers value that is not an object, "
            "so the connector cannot be put back; fix mcpServers first.",
            path=config.path,
        )
    target = found.name if found is not None else name
    if found is None and target in servers:
        raise ClaudeConfigError(
            "not_object",
            f'Claude Desktop\'s config has an mcpServers "{target}" value that is not an object; '
            "SideQuest will not replace it. Fix or remove it first.",
            path=config.path,
        )
    if servers.get(target) == wanted:
        return _Plan(None, target, servers[target])
    servers[target] = json.loads(json.dumps(wanted))
    return _Plan(_serialise(config.data, config.raw), target, servers[target], restored=True)


def _plan_new_entry(config: ClaudeConfig, updates: Mapping[str, str], create_entry: Mapping[str, Any] | None) -> _Plan:
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
    return _Plan(_serialise(config.data, config.raw), CONNECTOR_NAME, servers[CONNECTOR_NAME], changed)


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


def _create_config_file(path: Path, name: str, entry: dict[str, Any]) -> None:
    data = {"mcpServers": {name: entry}}
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
