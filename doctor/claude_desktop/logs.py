"""What Claude Desktop's own logs say about the connector's last start (CLAUDE-DESKTOP.md Q2).

Users meet a broken connector as "Server disconnected" or a tool that never answers; Desktop's
MCP logs say why: `spawn npx ENOENT`, "Server transport closed unexpectedly", request timeouts.
They also record the PATH Desktop really used (`Using MCP server command: … paths: [...]`),
which differs from the terminal's.

The same logs hold the user's accounting data: every `Message from server: …` line carries a
tool result. So nothing here returns a log line or any part of one except the few fields
parsed out of Desktop's own messages (a time, a kind of event, the command, the PATH folders,
the program that was not found). Only the tail of each file is read (TAIL_BYTES), so a log of
any size costs the same. Standard library only; regexes are compiled on first use, and nothing
heavier than the doctor already loads is imported when no log exists.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from doctor.values import Value

TAIL_BYTES = 512 * 1024
MCP_LOG = "mcp.log"
MAIN_LOG = "main.log"  # Cowork and Code launches are logged only here, in local time

# `2025-06-05T18:45:41.233Z [name] [info] message` (2026 builds) or `… [info] [name] message` (2025).
_RECORD = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z \[([^\]\r\n]*)\] \[([^\]\r\n]*)\] ?(.*)"
_LEVELS = frozenset({"info", "error", "warn", "warning", "debug", "verbose", "silly"})
_COMMAND = r"Using MCP server command: (.*?) with (?:args and )?path:"
_ENOENT = r"spawn (.+?) ENOENT"
_PATH_TOKENS = r"'((?:[^'\\]|\\.)*)'|\[length\]: *\d+|\]"
_ERA_VERDICT = r"Era probe verdict: (\w+)"

# Desktop's messages, in the order they are tried: the first that matches names the event.
_EVENT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("start", "Initializing server..."),
    ("answered", "Message from server:"),  # a tool result: never copied, only noted
    ("exited_early", "Server transport closed unexpectedly"),
    ("timed_out", "Request timed out"),
    ("disconnected", "Server disconnected"),
    ("stopped", "Shutting down server"),
    ("stopped", "(intentional shutdown)"),
    ("transport_up", "Server started and connected successfully"),
    ("builtin_node", "Using built-in Node.js for MCP server"),
)

FAILED_AT_START = frozenset({"command_not_found", "exited_at_start", "disconnected_at_start", "skipped_by_desktop"})
TROUBLE_AFTER_START = frozenset({"exited", "request_timed_out", "disconnected"})


class LogEvent(Value):
    """One thing Desktop logged about the connector: when (epoch seconds, UTC), what, and from which file."""

    __slots__ = ("at", "kind", "detail", "source")

    def __init__(self, at: float, kind: str, detail: str | None, source: Path) -> None:
        self.at = at
        self.kind = kind
        self.detail = detail  # the program for command_not_found; the command for "command"
        self.source = source


class ConnectorLogs(Value):
    """What the logs say about the connector, parsed; holds no log text."""

    __slots__ = (
        "folders", "files", "truncated", "events", "paths", "command", "era_verdict", "cowork_failed",
    )  # fmt: skip

    def __init__(
        self,
        folders: tuple[Path, ...] = (),
        files: tuple[Path, ...] = (),
        truncated: tuple[Path, ...] = (),
        events: tuple[LogEvent, ...] = (),
        paths: tuple[str, ...] | None = None,
        command: str | None = None,
        era_verdict: str | None = None,
        cowork_failed: bool = False,
    ) -> None:
        self.folders = folders  # the log folders that exist
        self.files = files  # the log files read
        self.truncated = truncated  # files of which only the tail was read
        self.events = events  # in time order
        self.paths = paths  # the PATH folders Desktop logged on the last start, if any
        self.command = command  # the command Desktop logged on the last start
        self.era_verdict = era_verdict  # main.log's last "Era probe verdict" word for the connector
        self.cowork_failed = cowork_failed  # main.log: could not start it for Cowork and Code

    def last_start(self) -> LogEvent | None:
        """The last time Desktop started the connector (or decided not to)."""
        starts = [e for e in self.events if e.kind in ("start", "skipped_by_desktop")]
        return starts[-1] if starts else None

    def outcome(self) -> str | None:
        """How the last start went: a word of FAILED_AT_START, TROUBLE_AFTER_START, or
        "connected", "stopped", "started" (nothing logged after it yet); None without a start."""
        start = self.last_start()
        if start is None:
            return None
        if start.kind == "skipped_by_desktop":
            return "skipped_by_desktop"
        return _outcome([e.kind for e in self.events if e.at >= start.at and e is not start])

    def missing_program(self) -> str | None:
        start = self.last_start()
        for event in self.events:
            if event.kind == "command_not_found" and (start is None or event.at >= start.at):
                return event.detail
        return None


def _outcome(kinds: Sequence[str]) -> str:
    answered = "answered" in kinds
    if "command_not_found" in kinds:
        return "command_not_found"
    if "exited_early" in kinds:
        return "exited" if answered else "exited_at_start"
    if "timed_out" in kinds:
        return "request_timed_out"
    if "disconnected" in kinds:
        return "disconnected" if answered else "disconnected_at_start"
    if answered:
        return "connected"
    return "stopped" if "stopped" in kinds else "started"


def read_connector_logs(folders: Iterable[Path], names: Sequence[str], tail_bytes: int = TAIL_BYTES) -> ConnectorLogs:
    """Read the tails of mcp.log, mcp-server-<name>.log and main.log in every folder that exists."""
    existing = tuple(folder for folder in folders if folder.is_dir())
    files, truncated, events = [], [], []
    era_verdict, cowork_failed = None, False
    last_command: tuple[float, str, tuple[str, ...] | None] | None = None
    for folder in existing:
        for path in _log_files(folder, names):
            text, cut = read_tail(path, tail_bytes)
            if text is None:
                continue
            files.append(path)
            if cut:
                truncated.append(path)
            if path.name == MAIN_LOG:
                verdict, failed = _main_log_facts(text, names)
                era_verdict, cowork_failed = verdict or era_verdict, cowork_failed or failed
                continue
            found, command = _mcp_events(text, names, path)
            events.extend(found)
            if command is not None and (last_command is None or command[0] >= last_command[0]):
                last_command = command
    _, command, paths = last_command if last_command is not None else (0.0, None, None)
    return ConnectorLogs(
        folders=existing,
        files=tuple(files),
        truncated=tuple(truncated),
        events=tuple(_deduplicated(events)),
        paths=paths,
        command=command,
        era_verdict=era_verdict,
        cowork_failed=cowork_failed,
    )


def desktop_search_path(logs: ConnectorLogs) -> str | None:
    """The PATH Desktop used on the connector's last logged start, as a PATH value (None if not logged).

    For resolving a bare `command` as Desktop does (its PATH is not the terminal's):
    `resolve_command(command, {"PATH": desktop_search_path(logs)})`.
    """
    if not logs.paths:
        return None
    separator = ";" if any(":\\" in folder or folder[1:3] == ":/" for folder in logs.paths) else os.pathsep
    return separator.join(logs.paths)


def _log_files(folder: Path, names: Sequence[str]) -> list[Path]:
    wanted = [MCP_LOG, *(f"mcp-server-{name}.log" for name in names), MAIN_LOG]
    return [folder / name for name in dict.fromkeys(wanted)]


def read_tail(path: Path, limit: int) -> tuple[str | None, bool]:
    """The last `limit` bytes of a regular file as text, from its first whole line; (None, False) if unreadable."""
    try:
        # Non-blocking open: a FIFO planted under a log's name would otherwise block here forever.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None, False  # a FIFO or device would block
            cut = info.st_size > limit
            if cut:
                handle.seek(info.st_size - limit)
            data = handle.read(limit)
    except OSError:
        return None, False
    if cut:
        newline = data.find(b"\n")
        data = data[newline + 1 :] if newline >= 0 else b""
    return data.decode("utf-8", "replace"), cut


def records(text: str) -> Iterator[tuple[float, str, str, str]]:
    """(time, server name, level, message with its continuation lines) for each timestamped record."""
    current: list = []
    for line in text.splitlines():
        match = re.match(_RECORD, line)
        at = None
        if match is not None:
            try:
                at = _epoch(match.group(1)) + float(match.group(2) or 0)
            except ValueError:  # no such date: not a line Desktop wrote
                pass
        if at is None:
            if current:
                current[3].append(line)
            continue
        if current:
            yield current[0], current[1], current[2], "\n".join(current[3])
        _, _, first, second, message = match.groups()
        name, level = (second, first) if first.lower() in _LEVELS else (first, second)
        current = [at, name, level, [message]]
    if current:
        yield current[0], current[1], current[2], "\n".join(current[3])


def _epoch(stamp: str) -> float:
    """`YYYY-MM-DDTHH:MM:SS` (UTC) as epoch seconds (ValueError if no such time); by hand, because
    strptime imports locale and calendar."""
    from datetime import datetime, timezone

    year, month, day = int(stamp[0:4]), int(stamp[5:7]), int(stamp[8:10])
    hour, minute, second = int(stamp[11:13]), int(stamp[14:16]), int(stamp[17:19])
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp()


def _mcp_events(
    text: str, names: Sequence[str], source: Path
) -> tuple[list[LogEvent], tuple[float, str, tuple[str, ...] | None] | None]:
    """The connector's events in one MCP log, and its last logged (time, command, PATH)."""
    events: list[LogEvent] = []
    command = None
    for at, name, _level, message in records(text):
        if name not in names:
            if "has missing required configuration" in message and any(n in message for n in names):
                events.append(LogEvent(at, "skipped_by_desktop", None, source))
            continue
        event = _event(at, message, source)
        if event is not None:
            events.append(event)
        found = re.search(_COMMAND, message)
        if found:
            command = (at, found.group(1).strip(), logged_paths(message))
    return events, command


def _event(at: float, message: str, source: Path) -> LogEvent | None:
    head = message.split("\n", 1)[0]
    enoent = re.search(_ENOENT, head)
    if enoent:
        return LogEvent(at, "command_not_found", enoent.group(1).strip(), source)
    if "has missing required configuration" in head:
        return LogEvent(at, "skipped_by_desktop", None, source)
    for kind, marker in _EVENT_PATTERNS:
        if marker in head:
            return LogEvent(at, kind, None, source)
    return None


def logged_paths(message: str) -> tuple[str, ...] | None:
    """The folders of `paths: [...]` in a `Using MCP server command` record (Node's inspect format)."""
    start = message.find("paths:")
    if start < 0:
        return None
    bracket = message.find("[", start)
    if bracket < 0:
        return None
    folders = []
    for token in re.finditer(_PATH_TOKENS, message[bracket + 1 :]):
        if token.group(1) is not None:
            folders.append(_js_unescape(token.group(1)))
        elif token.group(0) == "]":
            break
    return tuple(folders)


def _js_unescape(text: str) -> str:
    # Node's inspect escapes backslashes and quotes in single-quoted strings.
    return re.sub(r"\\(.)", r"\1", text)


def _main_log_facts(text: str, names: Sequence[str]) -> tuple[str | None, bool]:
    """From main.log: the last era-probe verdict and whether a Cowork/Code start failed, for the connector."""
    verdict, failed = None, False
    for line in text.splitlines():
        if not any(name in line for name in names):
            continue
        found = re.search(_ERA_VERDICT, line)
        if found:
            verdict = found.group(1)
        if "Couldn't start for Cowork and Code" in line:
            failed = True
    return verdict, failed


def _deduplicated(events: list[LogEvent]) -> list[LogEvent]:
    # mcp.log and mcp-server-<name>.log carry the same Desktop lines.
    seen: set[tuple[float, str]] = set()
    unique = []
    for event in sorted(events, key=lambda e: e.at):
        key = (event.at, event.kind)
        if key not in seen:
            seen.add(key)
            unique.append(event)
    return unique
