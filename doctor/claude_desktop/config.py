"""Claude Desktop's `claude_desktop_config.json`: read it and judge it.

Claude Desktop launches the SideQuest connector with the `env` block of one entry in this file,
so a stale refresh token there, or one malformed line anywhere in it, is a common reason the
connector stops working. The file holds a refresh token, so reading never puts file content
into a message, and the schema check mirrors what makes Claude Desktop refuse the whole file.
Where the file lives is `paths.py`'s job; writing the connector's entry back is `update.py`'s.

Standard library only: this module sits on the doctor's lean start-up path.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from doctor.store.keys import SYNCED_KEYS  # noqa: F401 - re-exported: the keys an update may change
from doctor.values import Value

CONNECTOR_NAME = "qb-distributor"
MAX_CONFIG_BYTES = 5 * 1024 * 1024

# The env keys that identify the connector's entry when the user gave it another name.
IDENTIFYING_ENV_KEYS = ("QB_REALM_ID", "QB_REFRESH_TOKEN")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_JSON_WHITESPACE = " \t\r\n"
_REMOTE_TYPES = frozenset({"http", "sse", "streamable-http", "streamableHttp"})

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
    "desktop_running",
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
            if isinstance(env, dict) and any(key in env for key in IDENTIFYING_ENV_KEYS):
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
    text = _decode(path, body)
    repeated: list[tuple[dict[str, Any], str, int]] = []

    def build_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            counts: dict[str, int] = {}
            for key, _ in pairs:
                counts[key] = counts.get(key, 0) + 1
            repeated.extend((obj, key, n) for key, n in counts.items() if n > 1)
        return obj

    data = _json_object(path, text, build_object)
    return data, _locate_duplicates(data, repeated)


def _decode(path: Path, body: bytes) -> str:
    """The file's text, or the error Claude Desktop's reader would also fail with."""
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
    return text


def _json_object(path: Path, text: str, object_hook: Any) -> dict[str, Any]:
    try:
        data = json.loads(text, object_pairs_hook=object_hook, parse_constant=_reject_constant)
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
    return data


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
