"""Where Claude Desktop keeps its files on each operating system, and what it would start.

Claude Desktop's config lives in a different folder on macOS, Windows (two installers) and the
Linux community builds; the doctor, `reauth-qb` and `--fix` must all agree on which file they
mean. `resolve_command` answers the other location question: which program a bare or absolute
`command` in that file turns into. Standard library only; `shutil` is imported where used,
because this module sits on the doctor's lean start-up path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

CONFIG_FILE_NAME = "claude_desktop_config.json"
CLAUDE_CONFIG_ENV = "SIDEQUEST_CLAUDE_CONFIG"
# Folders holding Claude Desktop's logs, separated by os.pathsep; replaces every known location.
CLAUDE_LOGS_ENV = "SIDEQUEST_CLAUDE_LOGS"
# The Microsoft Store (MSIX) build virtualises %APPDATA% into its package folder.
MSIX_PACKAGE = "Claude_pzs8sxrjxfjjc"


def resolve_claude_config(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    """The config file a command works on: the CLI's --claude-config, else the platform default."""
    if path:
        return Path(path).expanduser()
    return default_config_path(environ)


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

    override = environ.get(CLAUDE_CONFIG_ENV, "").strip()
    if override:
        if override == "~" or override.startswith(("~/", "~\\")):
            return home / override[2:] if len(override) > 1 else home
        return Path(override)
    return user_data_folder(environ, platform, home) / CONFIG_FILE_NAME


def user_data_folder(environ: Mapping[str, str], platform: str, home: Path) -> Path:
    """Claude Desktop's `<userData>` folder: its config, extensions and (on Windows) logs live here."""
    if platform == "darwin":
        return home / "Library" / "Application Support" / "Claude"
    if platform == "win32":
        msix = msix_user_data_folder(environ, home)
        if msix.is_dir():
            return msix
        roaming = environ.get("APPDATA") or str(home / "AppData" / "Roaming")
        return Path(roaming) / "Claude"
    xdg = environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".config"
    return base / "Claude"


def msix_user_data_folder(environ: Mapping[str, str], home: Path) -> Path:
    """The Microsoft Store build's `<userData>`, inside its package's LocalCache (may not exist)."""
    local = environ.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
    return Path(local) / "Packages" / MSIX_PACKAGE / "LocalCache" / "Roaming" / "Claude"


def log_folders(
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    home: Path | None = None,
    config_path: Path | None = None,
) -> list[Path]:
    """Every folder Claude Desktop may write its logs in, the documented one first (CLAUDE-DESKTOP.md Q2).

    macOS `~/Library/Logs/Claude`; Windows `%APPDATA%\\Claude\\logs`, the MSIX LocalCache copy and
    `%LOCALAPPDATA%\\Claude\\Logs` (builds since 1.34493 write there and leave the first one stale);
    Linux community builds `<config folder>/logs`. The folder beside the config in use comes last,
    for a config kept elsewhere. $SIDEQUEST_CLAUDE_LOGS replaces the whole list. Existence is
    not checked here.
    """
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    home = Path.home() if home is None else home
    override = environ.get(CLAUDE_LOGS_ENV, "").strip()
    if override:
        return [Path(part.strip()).expanduser() for part in override.split(os.pathsep) if part.strip()]
    if platform == "darwin":
        candidates = [home / "Library" / "Logs" / "Claude"]
    elif platform == "win32":
        roaming = environ.get("APPDATA") or str(home / "AppData" / "Roaming")
        local = environ.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        candidates = [
            Path(roaming) / "Claude" / "logs",
            msix_user_data_folder(environ, home) / "logs",
            Path(local) / "Claude" / "Logs",
        ]
    else:
        candidates = [user_data_folder(environ, platform, home) / "logs"]
    if config_path is not None:
        candidates.append(Path(config_path).parent / "logs")
    unique: list[Path] = []
    for folder in candidates:
        if folder not in unique:
            unique.append(folder)
    return unique


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
