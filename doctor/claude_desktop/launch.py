"""The launch Claude Desktop would do for the connector: its `mcpServers` entry, or its Desktop Extension
(CLAUDE-DESKTOP.md Q1, Q2, Q6).

A connector that works from the terminal can still fail under Claude Desktop, because Desktop
starts it differently: with only a small set of inherited environment variables (plus the
entry's `env`), its own PATH (not the terminal's: Desktop logs the one it used), and a working
directory that is `/`, not the folder the user was in. `rebuild_launch` reproduces that launch
so `connector-launch` can start the connector exactly so. An extension's launch is the command,
args and env of its manifest as Desktop's mcpb code builds them (`Extension.launch_config`:
platform overrides, `${user_config.X}`, `${__dirname}`, `${HOME}` substituted), started the same
way. One part cannot be reproduced: Desktop's chat runs a Node.js extension whose command is
`node` inside its own built-in Node.js (an Electron utility process, claude-code#35175); the
rebuilt launch uses the `node` program in Desktop's PATH instead, and says so (`runtime`).

The rebuilt environment holds the entry's secrets (the refresh token): a `Launch` never shows
env values in its repr, and only `env_keys` is meant for output. Standard library only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from doctor.claude_desktop.config import ConnectorEntry
from doctor.claude_desktop.paths import resolve_command
from doctor.values import Value

if TYPE_CHECKING:
    from doctor.claude_desktop.extensions import Extension

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
PATH_FROM_BUNDLE = "extension_folder"  # a relative command of an extension: looked up in its folder

# Where Desktop loads the connector from, for the facts.
FROM_ENTRY = "mcp_servers"
FROM_EXTENSION = "extension"
# The runtime a launch uses, when it is not simply the command Desktop runs.
RUNTIME_FOR_BUILT_IN_NODE = "system_node_for_built_in_node"


class Launch(Value):
    """One start of the connector as Desktop would do it. `env` holds secrets: output `env_keys` only."""

    __slots__ = (
        "name", "command", "program", "args", "env", "cwd", "search_path", "path_source", "source",
        "extension_id", "runtime",
    )  # fmt: skip

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
        source: str = FROM_ENTRY,
        extension_id: str | None = None,
        runtime: str | None = None,
    ) -> None:
        self.name = name  # the entry's name in mcpServers, or the extension's display name
        self.command = command  # as written in the entry (the manifest's, substituted)
        self.program = program  # what it resolves to with Desktop's PATH; None: Desktop would not find it
        self.args = args
        self.env = env
        self.cwd = cwd
        self.search_path = search_path  # the PATH value the command was looked up in
        self.path_source = path_source
        self.source = source  # FROM_ENTRY or FROM_EXTENSION
        self.extension_id = extension_id
        self.runtime = runtime  # None, or RUNTIME_FOR_BUILT_IN_NODE: not the runtime Desktop's chat uses

    def __repr__(self) -> str:
        return (
            f"Launch(name={self.name!r}, command={self.command!r}, program={self.program!r}, "
            f"args=<{len(self.args)} args>, env_keys={self.env_keys!r}, cwd={self.cwd!r}, source={self.source!r})"
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
    env = _launch_env(environ, platform, search_path, entry.env)
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


def _launch_env(
    environ: Mapping[str, str], platform: str | None, search_path: str, own: Mapping[str, object]
) -> dict[str, str]:
    """The inherited set (with Desktop's PATH), then the entry's or manifest's own env over it, as text."""
    env: dict[str, str] = {}
    for key in inherited_keys(platform):
        value = environ.get(key)
        if value is not None and not value.startswith("()"):  # shell functions are never passed on
            env[key] = value
    env["PATH"] = search_path
    for key, value in own.items():
        if value is None:
            continue
        env[str(key)] = (
            value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        )
    return env


def _is_node(command: str) -> bool:
    """A bare `node`: what Desktop replaces with its built-in Node.js (a path names a program of the user's)."""
    return command.strip().lower() in ("node", "node.exe")


def rebuild_extension_launch(
    extension: Extension,
    environ: Mapping[str, str],
    *,
    platform: str | None = None,
    logged_path: str | None = None,
    home: Path | None = None,
    built_in_node: bool = True,
) -> Launch | None:
    """The start Desktop would do for a Desktop Extension, or None when its manifest gives Desktop nothing to start.

    The caller checks first that Desktop starts it at all (enabled, no required setting empty).
    `built_in_node` is Desktop's `isUsingBuiltInNodeForMcp` (on unless the config turns it off): a
    `node` command of a Node.js extension then runs in Desktop's own Node.js, which no other
    program can use; the launch keeps `node` from Desktop's PATH and marks `runtime`.
    A relative command with a folder in it is looked up in the extension's folder (mcpb's
    binary servers, e.g. "server/my-server"). No other parts of the launch are guessed.
    """
    platform = platform or sys.platform
    config = extension.launch_config(platform=platform, home=home)
    command = config.get("command") if config else None
    if not isinstance(command, str) or not command.strip():
        return None
    raw_args = config.get("args") if config else None
    args = tuple(str(arg) for arg in raw_args) if isinstance(raw_args, list) else ()
    raw_env = config.get("env") if config else None
    own_env = raw_env if isinstance(raw_env, dict) else {}
    search_path, source = launch_search_path(environ, platform, logged_path)
    env = _launch_env(environ, platform, search_path, own_env)
    if isinstance(own_env.get("PATH"), str):
        search_path, source = own_env["PATH"], PATH_FROM_ENTRY
    relative_in_bundle = not os.path.isabs(command) and ("/" in command or "\\" in command)
    if relative_in_bundle:
        program = resolve_command(str(extension.folder / command))
        search_path, source = str(extension.folder), PATH_FROM_BUNDLE
    else:
        program = resolve_command(command, {"PATH": search_path})
    server = extension.manifest.get("server")
    server_type = server.get("type") if isinstance(server, dict) else None
    runtime = RUNTIME_FOR_BUILT_IN_NODE if built_in_node and server_type == "node" and _is_node(command) else None
    return Launch(
        name=extension.display_name or extension.name or extension.id,
        command=command,
        program=program,
        args=args,
        env=env,
        cwd=launch_folder(platform),
        search_path=search_path,
        path_source=source,
        source=FROM_EXTENSION,
        extension_id=extension.id,
        runtime=runtime,
    )
