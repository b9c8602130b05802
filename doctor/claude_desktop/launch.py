"""The launch Claude Desktop would do for the connector's `mcpServers` entry (CLAUDE-DESKTOP.md Q2, Q6).

A connector that works from the terminal can still fail under Claude Desktop, because Desktop
starts it differently: with only a small set of inherited environment variables (plus the
entry's `env`), its own PATH (not the terminal's: Desktop logs the one it used), and a working
directory that is `/`, not the folder the user was in. `rebuild_launch` reproduces that launch
so `connector-launch` can start the connector exactly so.

The rebuilt environment holds the entry's secrets (the refresh token): a `Launch` never shows
env values in its repr, and only `env_keys` is meant for output. Standard library only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

from doctor.claude_desktop.config import ConnectorEntry
from doctor.claude_desktop.paths import resolve_command
from doctor.values import Value

# What a server launched over stdio inherits besides its entry's `env` (the MCP SDK's and Desktop's set).
INHERITED_POSIX = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER")
INHERITED_WINDOWS = (
    "APPDATA", "HOMEDRIVE", "HOMEPATH", "LOCALAPPDATA", "PATH", "PATHEXT", "PROCESSOR_ARCHITECTURE",
    "SYSTEMDRIVE", "SYSTEMROOT", "TEMP", "USERNAME", "USERPROFILE",
)  # fmt: skip

# The PATH Desktop logged on macOS when it started a connector (`Using MCP server command: … paths: [...]`);
# a Finder-launched app otherwise has only launchd's /usr/bin:/bin:/usr/sbin:/sbin.
MACOS_DESKTOP_PATH = ("/usr/local/bin", "/opt/homebrew/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin")

# Where the search path came from, for the facts.
PATH_FROM_LOG = "claude_desktop_log"
PATH_FROM_ENTRY = "entry_env"
PATH_PLATFORM_DEFAULT = "platform_default"
PATH_FROM_ENVIRONMENT = "this_session"


class Launch(Value):
    """One start of the connector as Desktop would do it. `env` holds secrets: output `env_keys` only."""

    __slots__ = ("name", "command", "program", "args", "env", "cwd", "search_path", "path_source")

    def __init__(
        self,
        name: str,
        command: str,
        program: str | None,
        args: tuple[str, ...],
        env: dict[str, str],
        cwd: str,
        search_path: str,
        path_source: str,
    ) -> None:
        self.name = name  # the entry's name in mcpServers
        self.command = command  # as written in the entry
        self.program = program  # what it resolves to with Desktop's PATH; None: Desktop would not find it
        self.args = args
        self.env = env
        self.cwd = cwd
        self.search_path = search_path  # the PATH value the command was looked up in
        self.path_source = path_source

    def __repr__(self) -> str:
        return (
            f"Launch(name={self.name!r}, command={self.command!r}, program={self.program!r}, "
            f"args=<{len(self.args)} args>, env_keys={self.env_keys!r}, cwd={self.cwd!r})"
        )

    @property
    def env_keys(self) -> list[str]:
        return sorted(self.env)

    @property
    def search_folders(self) -> list[str]:
        separator = ";" if ";" in self.search_path else os.pathsep
        return [folder for folder in self.search_path.split(separator) if folder]


def inherited_keys(platform: str | None = None) -> tuple[str, ...]:
    return INHERITED_WINDOWS if (platform or sys.platform) == "win32" else INHERITED_POSIX


def launch_search_path(
    environ: Mapping[str, str], platform: str | None = None, logged_path: str | None = None
) -> tuple[str, str]:
    """The PATH Desktop starts connectors with, and where that answer came from.

    Desktop's own log line wins; without one, macOS gets the PATH Desktop has been seen to log
    there, and other platforms the PATH of this session (Desktop inherits the user's session there).
    """
    platform = platform or sys.platform
    if logged_path:
        return logged_path, PATH_FROM_LOG
    if platform == "darwin":
        return ":".join(MACOS_DESKTOP_PATH), PATH_PLATFORM_DEFAULT
    return environ.get("PATH") or os.defpath, PATH_FROM_ENVIRONMENT


def launch_folder(platform: str | None = None) -> str:
    """Desktop's working directory for connectors: `/` (macOS, Linux); the system drive's root on Windows."""
    if (platform or sys.platform) == "win32":
        return str(Path(os.path.abspath(os.sep)))
    return "/"


def rebuild_launch(
    entry: ConnectorEntry,
    environ: Mapping[str, str],
    *,
    platform: str | None = None,
    logged_path: str | None = None,
) -> Launch:
    """The connector's start as Desktop would do it: the entry's env over the inherited set, Desktop's PATH, cwd `/`.

    `environ` is the environment Desktop itself would have (this session's); `logged_path` the
    PATH value Desktop logged on its last start of the connector (None when not logged). A PATH
    in the entry's own env wins over both, as it does for Desktop's spawn.
    """
    search_path, source = launch_search_path(environ, platform, logged_path)
    env: dict[str, str] = {}
    for key in inherited_keys(platform):
        value = environ.get(key)
        if value is not None and not value.startswith("()"):  # shell functions are never passed on
            env[key] = value
    env["PATH"] = search_path
    for key, value in entry.env.items():
        if value is None:
            continue
        env[str(key)] = (
            value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        )
    if "PATH" in entry.env and isinstance(entry.env["PATH"], str):
        search_path, source = entry.env["PATH"], PATH_FROM_ENTRY
    command = entry.command or ""
    program = resolve_command(command, {"PATH": search_path}) if command else None
    return Launch(
        name=entry.name,
        command=command,
        program=program,
        args=tuple(entry.args),
        env=env,
        cwd=launch_folder(platform),
        search_path=search_path,
        path_source=source,
    )
