"""Claude Desktop's `claude_desktop_config.json`: find it, read it, judge it, update it safely.

Claude Desktop launches the SideQuest connector with the `env` block of one entry in this file,
so a stale refresh token there, or one malformed line anywhere in it, is a common reason the
connector stops working. The same file belongs to the user and to Claude Desktop (which writes
its own preferences into it), and it holds a refresh token. Hence the rules kept here:
reading never puts file content into a message, the schema check mirrors what makes Claude
Desktop refuse the whole file, and an update (DESIGN.md §6, CONTRACT) changes only the
connector's three synced values, keeps a backup, writes atomically and never overwrites a
file it could not parse.

Standard library only, and the heavier parts of it (subprocess, tempfile, shutil) imported
where used: this module sits on the doctor's lean start-up path.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from doctor.store.atomic_file import fsync_folder, remove_quietly, resolve_for_write, write_temp
from doctor.store.keys import SYNCED_KEYS
from doctor.values import Value

CONNECTOR_NAME = "qb-distributor"
CONFIG_FILE_NAME = "claude_desktop_config.json"
MAX_CONFIG_BYTES = 5 * 1024 * 1024
BACKUPS_KEPT = 5

# The env keys that identify the connector's entry when the user gave it another name.
_IDENTIFYING_ENV_KEYS = ("QB_REALM_ID", "QB_REFRESH_TOKEN")
# The Microsoft Store (MSIX) build virtualises %APPDATA% into its package folder.
_MSIX_PACKAGE = "Claude_pzs8sxrjxfjjc"
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_BACKUP_MARKER = ".sidequest-backup-"
_BACKUP_NAME = r"^(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<counter>\d+))?$"  # compiled on first use, by re
_JSON_WHITESPACE = " \t\r\n"
_REMOTE_TYPES = frozenset({"http", "sse", "streamable-http", "streamableHttp"})
# Process start times come from clocks with one-second (ps lstart, /proc btime) resolution,
# so a config change this close to the start cannot be ordered honestly.
_START_TIME_TOLERANCE_S = 1.5

REASONS: tuple[str, ...] = (
    "missing",
    "unreadable",
    "empty",
    "not_json",
    "not_object",
    "too_large",
    "not_utf8",
    "no_connector",
    "changed_during_update",
    "unwritable",
)


class ClaudeConfigError(Exception):
    """Claude Desktop's config could not be read or updated; `reason` says why, for code.

    The message is written for the business owner plus the technical position; it never
    holds file content, because the file holds a refresh token.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        path: Path | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.path = path
        self.line = line
        self.column = column

    def __repr__(self) -> str:
        return f"ClaudeConfigError(reason={self.reason!r}, message={self.message!r})"


class ConnectorEntry(Value):
    """The connector's entry in `mcpServers`, as found (values not validated)."""

    __slots__ = ("name", "command", "args", "env", "found_by")

    def __init__(
        self,
        name: str,
        command: str | None,
        args: tuple[str, ...],
        env: dict[str, Any],
        found_by: str,
    ) -> None:
        self.name = name
        self.command = command
        self.args = args
        self.env = env  # holds the refresh token: never in the repr
        self.found_by = found_by  # "name" or "env"

    def __repr__(self) -> str:
        # env holds the refresh token: show which keys exist, never their values.
        return (
            f"ConnectorEntry(name={self.name!r}, command={self.command!r}, "
            f"args=<{len(self.args)} args>, env_keys={sorted(self.env)!r}, "
            f"found_by={self.found_by!r})"
        )


class ClaudeConfig(Value):
    """A parsed Claude Desktop config and the facts about the file it came from."""

    __slots__ = ("path", "raw", "data", "had_bom", "mtime", "duplicate_keys")

    def __init__(
        self,
        path: Path,
        raw: bytes,
        data: dict[str, Any],
        had_bom: bool,
        mtime: float,
        duplicate_keys: tuple[tuple[str, int], ...] = (),
    ) -> None:
        self.path = path
        self.raw = raw
        self.data = data
        self.had_bom = had_bom
        self.mtime = mtime
        # Dotted paths of keys that appear more than once in one object, with their counts;
        # JSON.parse (like Python) silently keeps the last one, so earlier content vanishes.
        self.duplicate_keys = duplicate_keys

    def __repr__(self) -> str:
        return (
            f"ClaudeConfig(path={str(self.path)!r}, bytes={len(self.raw)}, "
            f"had_bom={self.had_bom!r}, mtime={self.mtime!r})"
        )

    def connector(self) -> ConnectorEntry | None:
        """The connector's entry (DESIGN.md §6): by name, else the first whose env names it."""
        servers = self.data.get("mcpServers")
        if not isinstance(servers, dict):
            return None
        by_name = servers.get(CONNECTOR_NAME)
        if isinstance(by_name, dict):
            return _connector_entry(CONNECTOR_NAME, by_name, "name")
        for name, entry in servers.items():
            if not isinstance(entry, dict):
                continue
            env = entry.get("env")
            if isinstance(env, dict) and any(key in env for key in _IDENTIFYING_ENV_KEYS):
                return _connector_entry(name, entry, "env")
        return None

    def schema_problems(self) -> list[str]:
        """What would make Claude Desktop reject this file (INTUIT.md §7), one line each.

        Claude Desktop validates the whole file, so one bad entry stops every server. The
        lines name the place (`mcpServers.directus.env.DISABLE_TOOLS`), never the value.
        """
        problems = [
            f"{where}: appears {count} times; Claude Desktop uses only the last one, "
            "so everything in the earlier ones is ignored"
            for where, count in self.duplicate_keys
        ]
        if "mcpServers" not in self.data:
            return problems
        servers = self.data["mcpServers"]
        if not isinstance(servers, dict):
            problems.append(f"mcpServers: expected an object, got {_json_type(servers)}")
            return problems
        for name, entry in servers.items():
            problems.extend(_entry_problems(_json_path("mcpServers", name), entry))
        return problems


def _connector_entry(name: str, entry: dict[str, Any], found_by: str) -> ConnectorEntry:
    command = entry.get("command")
    args = entry.get("args")
    env = entry.get("env")
    return ConnectorEntry(
        name=name,
        command=command if isinstance(command, str) else None,
        # Non-string args are a schema problem reported elsewhere; keep them visible as text.
        args=tuple(a if isinstance(a, str) else json.dumps(a) for a in args) if isinstance(args, list) else (),
        env=dict(env) if isinstance(env, dict) else {},
        found_by=found_by,
    )


def _entry_problems(where: str, entry: Any) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{where}: expected an object, got {_json_type(entry)}"]
    problems: list[str] = []
    transport = entry.get("type")
    if "type" in entry and not isinstance(transport, str):
        problems.append(f"{where}.type: expected a string, got {_json_type(transport)}")
    if "command" in entry:
        if not isinstance(entry["command"], str):
            kind = _json_type(entry["command"])
            problems.append(f"{where}.command: expected a string, got {kind}")
    elif "url" not in entry:
        if transport in _REMOTE_TYPES:
            problems.append(f"{where}: a remote ({transport}) server needs a url, and it has none")
        else:
            problems.append(
                f"{where}.command: missing (required: the program Claude Desktop starts; "
                "a remote server needs a url instead)"
            )
    if "url" in entry and not isinstance(entry["url"], str):
        problems.append(f"{where}.url: expected a string, got {_json_type(entry['url'])}")
    if "args" in entry:
        args = entry["args"]
        if not isinstance(args, list):
            problems.append(f"{where}.args: expected a list of strings, got {_json_type(args)}")
        else:
            problems.extend(
                f"{where}.args[{index}]: expected a string, got {_json_type(arg)}"
                for index, arg in enumerate(args)
                if not isinstance(arg, str)
            )
    if "env" in entry:
        env = entry["env"]
        if not isinstance(env, dict):
            problems.append(f"{where}.env: expected an object, got {_json_type(env)}")
        else:
            problems.extend(
                f"{_json_path(where + '.env', key)}: expected a string, got {_json_type(value)}"
                for key, value in env.items()
                if not isinstance(value, str)
            )
    return problems


def _json_type(value: Any) -> str:
    """The JSON name of a value's type, with an article, as the schema messages use it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _json_path(parent: str, key: str) -> str:
    # Dotted paths read well; a key that would make them ambiguous gets brackets.
    if key and not any(char in '.[]"' or char.isspace() for char in key):  # no regex: one less to compile
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key, ensure_ascii=False)}]"


# --------------------------------------------------------------------------- locating


def default_config_path(
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    home: Path | None = None,
) -> Path:
    """Where Claude Desktop reads its config on this platform (DESIGN.md §8).

    $SIDEQUEST_CLAUDE_CONFIG wins; callers apply the CLI's --claude-config themselves. Reads
    nothing but its arguments and, on Windows, whether the MSIX package folder exists, so
    every platform's answer can be tested anywhere.
    """
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    home = Path.home() if home is None else home

    override = environ.get("SIDEQUEST_CLAUDE_CONFIG", "").strip()
    if override:
        if override == "~" or override.startswith(("~/", "~\\")):
            return home / override[2:] if len(override) > 1 else home
        return Path(override)

    if platform == "darwin":
        return home / "Library" / "Application Support" / "Claude" / CONFIG_FILE_NAME
    if platform == "win32":
        local = environ.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        msix = Path(local) / "Packages" / _MSIX_PACKAGE / "LocalCache" / "Roaming" / "Claude"
        if msix.is_dir():
            return msix / CONFIG_FILE_NAME
        roaming = environ.get("APPDATA") or str(home / "AppData" / "Roaming")
        return Path(roaming) / "Claude" / CONFIG_FILE_NAME
    xdg = environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".config"
    return base / "Claude" / CONFIG_FILE_NAME


def resolve_command(command: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The program Claude Desktop would start for `command`, or None if it would not find one.

    A relative path with a folder in it resolves to None: Claude Desktop's working
    directory is undefined (`/` on macOS), so such a command is not reliably found.
    """
    if not command or not command.strip():
        return None
    if os.path.isabs(command):
        candidate = Path(command)
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        return None
    if os.sep in command or (os.altsep and os.altsep in command):
        return None
    import shutil

    search_path = (os.environ if environ is None else environ).get("PATH") or os.defpath
    return shutil.which(command, path=search_path)


# --------------------------------------------------------------------------- reading


class _NonStandardConstant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    # Python accepts NaN/Infinity; Claude Desktop's JSON.parse does not.
    raise _NonStandardConstant(name)


def load_claude_config(path: Path) -> ClaudeConfig:
    """Read and parse Claude Desktop's config; raise `ClaudeConfigError` saying what is wrong."""
    path = Path(path)
    raw, mtime = _read_bounded(path)
    had_bom = raw.startswith(_UTF8_BOM)
    data, duplicates = _parse(path, raw[len(_UTF8_BOM) :] if had_bom else raw)
    return ClaudeConfig(path=path, raw=raw, data=data, had_bom=had_bom, mtime=mtime, duplicate_keys=duplicates)


def _read_bounded(path: Path) -> tuple[bytes, float]:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ClaudeConfigError(
            "missing", f"Claude Desktop's config file was not found at {path}.", path=path
        ) from None
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if stat.S_ISDIR(info.st_mode):
        raise ClaudeConfigError("unreadable", "Claude Desktop's config path is a folder, not a file.", path=path)
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or device would block or stream forever.
        raise ClaudeConfigError("unreadable", "Claude Desktop's config path is not a regular file.", path=path)
    if info.st_size > MAX_CONFIG_BYTES:
        raise _too_large(path, info.st_size)
    try:
        with open(path, "rb") as handle:
            mtime = os.fstat(handle.fileno()).st_mtime
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if len(raw) > MAX_CONFIG_BYTES:  # it grew between stat and read
        raise _too_large(path, len(raw))
    return raw, mtime


def _unreadable(path: Path, exc: OSError) -> ClaudeConfigError:
    why = exc.strerror or type(exc).__name__
    return ClaudeConfigError("unreadable", f"Claude Desktop's config file could not be read: {why}.", path=path)


def _too_large(path: Path, size: int) -> ClaudeConfigError:
    return ClaudeConfigError(
        "too_large",
        f"Claude Desktop's config file is {size / 1024 / 1024:.1f} MB; a real one is a few KB "
        f"and anything over {MAX_CONFIG_BYTES // 1024 // 1024} MB is not read.",
        path=path,
    )


def _parse(path: Path, body: bytes) -> tuple[dict[str, Any], tuple[tuple[str, int], ...]]:
    if body.startswith(_UTF16_BOMS):
        raise ClaudeConfigError(
            "not_utf8",
            'Claude Desktop\'s config is saved as UTF-16 ("Unicode" in Notepad); '
            "Claude Desktop needs it saved as UTF-8.",
            path=path,
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise ClaudeConfigError(
            "not_utf8",
            f"Claude Desktop's config is not UTF-8 text: an invalid byte at line {line} "
            f"(byte offset {exc.start}). Save it as UTF-8.",
            path=path,
        ) from None
    if not text.strip(_JSON_WHITESPACE):
        raise ClaudeConfigError("empty", "Claude Desktop's config file is empty.", path=path)

    repeated: list[tuple[dict[str, Any], str, int]] = []

    def build_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            counts: dict[str, int] = {}
            for key, _ in pairs:
                counts[key] = counts.get(key, 0) + 1
            repeated.extend((obj, key, n) for key, n in counts.items() if n > 1)
        return obj

    try:
        data = json.loads(text, object_pairs_hook=build_object, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        # exc.msg is the parser's description alone ("Expecting ',' delimiter"); str(exc)
        # would be too, but msg keeps us independent of how the position is phrased.
        raise ClaudeConfigError(
            "not_json",
            f"Claude Desktop's config is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
            path=path,
            line=exc.lineno,
            column=exc.colno,
        ) from None
    except _NonStandardConstant as exc:
        raise ClaudeConfigError(
            "not_json",
            f"Claude Desktop's config is not valid JSON: it uses {exc}, which JSON does not allow.",
            path=path,
        ) from None
    except RecursionError:
        raise ClaudeConfigError(
            "too_large", "Claude Desktop's config is nested too deeply to read.", path=path
        ) from None
    if not isinstance(data, dict):
        raise ClaudeConfigError(
            "not_object",
            f"Claude Desktop's config must be a JSON object ({{ ... }}), but the file holds {_json_type(data)}.",
            path=path,
        )
    return data, _locate_duplicates(data, repeated)


def _locate_duplicates(
    data: dict[str, Any], repeated: list[tuple[dict[str, Any], str, int]]
) -> tuple[tuple[str, int], ...]:
    if not repeated:
        return ()
    paths: dict[int, str] = {}
    pending: list[tuple[Any, str]] = [(data, "")]
    while pending:
        node, where = pending.pop()
        if isinstance(node, dict):
            paths[id(node)] = where
            pending.extend((value, _json_path(where, key)) for key, value in node.items())
        elif isinstance(node, list):
            pending.extend((item, f"{where}[{index}]") for index, item in enumerate(node))
    found = []
    for obj, key, count in repeated:
        # An object that was itself overwritten by a later duplicate is no longer reachable.
        if id(obj) in paths:
            found.append((_json_path(paths[id(obj)], key), count))
    return tuple(found)


# --------------------------------------------------------------------------- updating


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
        _prune_backups(path)
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
    data = config.data
    entry = config.connector()
    changed: dict[str, tuple[str | None, str]] = {}
    if entry is None:
        if create_entry is None:
            raise ClaudeConfigError(
                "no_connector",
                f"Claude Desktop's config has no SideQuest connector entry "
                f'(mcpServers "{CONNECTOR_NAME}", or one whose env holds '
                f"{' or '.join(_IDENTIFYING_ENV_KEYS)}).",
                path=config.path,
            )
        servers = data.setdefault("mcpServers", {})
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
        return _serialise(data, config.raw), changed, CONNECTOR_NAME

    live = data["mcpServers"][entry.name]
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
    for key, new in updates.items():
        old = env.get(key)
        if old != new:
            changed[key] = (_as_text(old), new)
            env[key] = new
    if not changed:
        return None, changed, entry.name
    return _serialise(data, config.raw), changed, entry.name


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
    base = f"{config_path.name}{_BACKUP_MARKER}{stamp}"
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
    prefix = f"{config_path.name}{_BACKUP_MARKER}"
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


def _prune_backups(config_path: Path) -> None:
    for _, old in _backups(config_path)[:-BACKUPS_KEPT]:
        remove_quietly(old)


# --------------------------------------------------------------------------- restart check


def started_after_config_change(
    config_mtime: float,
    platform: str | None = None,
    *,
    proc_root: Path | None = None,
) -> bool | None:
    """Does a running Claude Desktop predate the config's last change, so it needs a restart?

    True: Claude Desktop started BEFORE the config changed (it still runs the old values;
    restart needed). False: it started after (it has loaded them). None: it is not running,
    or the start time cannot be told (Windows, no /proc, ps missing, too close to call).
    Never raises; bounded to one second of subprocess time.
    """
    try:
        platform = sys.platform if platform is None else platform
        if platform == "darwin":
            started = _claude_start_from_ps(_ps_output())
        elif platform.startswith("linux") or proc_root is not None:
            started = _claude_start_from_proc(proc_root or Path("/proc"))
        else:
            return None
        if started is None:
            return None
        if abs(started - config_mtime) < _START_TIME_TOLERANCE_S:
            return None
        return started < config_mtime
    except Exception:  # a diagnostic aid must never take the caller down
        return None


def _claude_start_from_proc(proc_root: Path) -> float | None:
    """Earliest start (epoch seconds) of a Claude Desktop main process in a /proc tree."""
    boot_time = _boot_time(proc_root)
    if boot_time is None:
        return None
    ticks_per_second = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    own_pid = os.getpid()
    earliest: float | None = None
    try:
        entries = os.listdir(proc_root)
    except OSError:
        return None
    root = os.fspath(proc_root)
    for name in entries:
        if not name.isdigit() or int(name) == own_pid:
            continue
        # A desktop has hundreds of processes: read each one's cmdline with plain os calls, and
        # the rest only for those that mention Claude (every rule below needs the word there).
        cmdline = _read_proc_file(f"{root}/{name}/cmdline")
        if cmdline is None or b"claude" not in cmdline.lower():
            continue  # not Claude, or the process ended, or it is not ours to read
        comm = _read_proc_file(f"{root}/{name}/comm")
        if comm is None or not _is_claude_desktop_main(comm.strip(), cmdline.split(b"\0")):
            continue
        ticks = _start_ticks(proc_root / name)
        if ticks is None:
            continue
        started = boot_time + ticks / ticks_per_second
        earliest = started if earliest is None else min(earliest, started)
    return earliest


def _read_proc_file(path: str, limit: int = 65536) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        size = 0
        while size < limit:
            chunk = os.read(fd, 8192)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _boot_time(proc_root: Path) -> float | None:
    try:
        for line in (proc_root / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _start_ticks(folder: Path) -> int | None:
    try:
        text = (folder / "stat").read_text()
        # comm (field 2) may hold spaces and parentheses; fields after its last ')' are safe.
        fields = text[text.rindex(")") + 2 :].split()
        return int(fields[19])  # field 22 overall: starttime, in clock ticks since boot
    except (OSError, ValueError, IndexError):
        return None


def _is_claude_desktop_main(comm: bytes, argv: list[bytes]) -> bool:
    """The Electron main process of a Linux community build, not a helper or another tool.

    Electron helpers carry `--type=...`; the Claude Code CLI is called `claude` and is not
    Claude Desktop; sidequest itself may have "claude" in its arguments.
    """
    args = [arg.decode("utf-8", "replace") for arg in argv if arg]
    if not args or any(arg.startswith("--type=") for arg in args):
        return False
    if any("sidequest" in arg for arg in args):
        return False
    program = args[0]
    program_name = program.replace("\\", "/").rsplit("/", 1)[-1]
    comm_name = comm.decode("utf-8", "replace")
    if comm_name == "claude-desktop" or program_name in ("claude-desktop", "Claude"):
        return True
    if "claude-desktop" in program or "/Claude/" in program or program.endswith("/Claude"):
        return True
    # Packaged as `electron /usr/lib/claude-desktop/app.asar`.
    if program_name.startswith("electron"):
        return any("claude-desktop" in arg or "/Claude" in arg for arg in args[1:])
    return False


def _ps_output() -> str:
    import subprocess

    completed = subprocess.run(
        ["ps", "-axo", "lstart=,comm="],
        capture_output=True,
        timeout=1,
        check=False,
        # lstart is printed in the locale's words; the C locale makes it parseable.
        env={**os.environ, "LC_ALL": "C", "LANG": "C"},
    )
    return completed.stdout.decode("utf-8", "replace")


def _claude_start_from_ps(output: str) -> float | None:
    """Earliest start (epoch seconds) of Claude.app's main process in `ps -axo lstart=,comm=`."""
    earliest: float | None = None
    for line in output.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6:
            continue
        command = parts[5].strip()
        if not command.endswith("Claude.app/Contents/MacOS/Claude"):
            continue
        try:
            started = time.mktime(time.strptime(" ".join(parts[:5]), "%a %b %d %H:%M:%S %Y"))
        except (ValueError, OverflowError):
            continue
        earliest = started if earliest is None else min(earliest, started)
    return earliest
