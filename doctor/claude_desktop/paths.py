"""Where Claude Desktop keeps its files on each operating system, and what it would start.

Claude Desktop's config lives in a different folder on macOS, Windows (two installers) and the
Linux community builds; the doctor, `reauth-qb` and `--fix` must all agree on which file they
mean. `resolve_command` answers the other location question: which program a bare or absolute
`command` in that file turns into. Standard library only; `shutil` is imported where used,
because this module sits on the doctor's lean start-up path.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Mapping

from doctor.values import Value

CONFIG_FILE_NAME = "claude_desktop_config.json"
CLAUDE_CONFIG_ENV = "SIDEQUEST_CLAUDE_CONFIG"
# Folders holding Claude Desktop's logs, separated by os.pathsep; replaces every known location.
CLAUDE_LOGS_ENV = "SIDEQUEST_CLAUDE_LOGS"
# The Microsoft Store (MSIX) build virtualises %APPDATA% into its package folder.
MSIX_PACKAGE = "Claude_pzs8sxrjxfjjc"
# The Flatpak build of Claude Desktop for Linux keeps its config in its own sandbox folder.
FLATPAK_APP = "com.anthropic.Claude"
# Chooses the platform whose layout applies (darwin, windows or linux); default: the one Python runs on.
PLATFORM_ENV = "SIDEQUEST_PLATFORM"
_PLATFORM_NAMES = {"darwin": "darwin", "macos": "darwin", "windows": "win32", "win32": "win32", "linux": "linux"}
# Where a Desktop build keeps its `<userData>` (DesktopFolder.kind), and why one was chosen (DesktopConfig.reason).
LOCATION_KINDS = ("macos", "windows_msix", "windows", "linux", "linux_flatpak")
CHOICE_REASONS = ("usual", "only", "newest", "newest_logs")
MAX_OTHER_PACKAGES = 8
MAX_LOG_ENTRIES = 500  # a log folder is listed, never read, when several configs compete


def resolve_claude_config(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    """The config file a command works on: the CLI's --claude-config, else the platform default."""
    if path:
        return Path(path).expanduser()
    return default_config_path(environ)


def desktop_platform(environ: Mapping[str, str] | None = None) -> str:
    """The platform whose Claude Desktop layout applies: "darwin", "win32" or "linux".

    $SIDEQUEST_PLATFORM (darwin, windows or linux, as for `keepalive`) chooses one, so the tests
    lay out every platform's folders on one machine; an unknown value is ignored here (the
    `keepalive` command refuses it).
    """
    chosen = ((os.environ if environ is None else environ).get(PLATFORM_ENV) or "").strip().lower()
    if chosen in _PLATFORM_NAMES:
        return _PLATFORM_NAMES[chosen]
    if sys.platform in ("darwin", "win32"):
        return sys.platform
    return "linux"


def default_config_path(
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    home: Path | None = None,
) -> Path:
    """Where Claude Desktop reads its config on this platform (DESIGN.md §8).

    $SIDEQUEST_CLAUDE_CONFIG wins; callers apply the CLI's --claude-config themselves. Otherwise
    the file this Desktop reads when several exist (`desktop_config` says how that is chosen).
    Reads nothing but its arguments and the folders it names, so every platform's answer can be
    tested anywhere.
    """
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else home

    override = environ.get(CLAUDE_CONFIG_ENV, "").strip()
    if override:
        if override == "~" or override.startswith(("~/", "~\\")):
            return home / override[2:] if len(override) > 1 else home
        return Path(override)
    return desktop_config(environ, platform, home).path


def user_data_folder(environ: Mapping[str, str], platform: str, home: Path) -> Path:
    """Claude Desktop's `<userData>` folder: its config, extensions and (on Windows) logs live here."""
    return desktop_config(environ, platform, home).chosen.folder


def msix_user_data_folder(environ: Mapping[str, str], home: Path, package: str = MSIX_PACKAGE) -> Path:
    """The Microsoft Store build's `<userData>`, inside its package's LocalCache (may not exist)."""
    return _local_appdata(environ, home) / "Packages" / package / "LocalCache" / "Roaming" / "Claude"


def _roaming_appdata(environ: Mapping[str, str], home: Path) -> Path:
    return Path(environ.get("APPDATA") or str(home / "AppData" / "Roaming"))


def _local_appdata(environ: Mapping[str, str], home: Path) -> Path:
    return Path(environ.get("LOCALAPPDATA") or str(home / "AppData" / "Local"))


def _xdg_config(environ: Mapping[str, str], home: Path) -> Path:
    xdg = environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    return Path(xdg) if xdg and os.path.isabs(xdg) else home / ".config"


def _msix_packages(environ: Mapping[str, str], home: Path) -> list[str]:
    """The pinned package first, then any other `Claude_*` package folder (a re-signed or side-by-side build)."""
    packages = [MSIX_PACKAGE]
    try:
        names = os.listdir(_local_appdata(environ, home) / "Packages")
    except OSError:
        names = []
    others = sorted(name for name in names if name.lower().startswith("claude_") and name != MSIX_PACKAGE)
    return packages + others[:MAX_OTHER_PACKAGES]


# --------------------------------------------------------------------------- which of several files Desktop reads


class DesktopFolder(Value):
    """One place a Claude Desktop build keeps its `<userData>` (config, extensions), with the logs it writes."""

    __slots__ = ("kind", "folder", "log_folders")

    def __init__(self, kind: str, folder: Path, log_folders: tuple[Path, ...]) -> None:
        self.kind = kind  # one of LOCATION_KINDS
        self.folder = folder
        self.log_folders = log_folders

    @property
    def config(self) -> Path:
        return self.folder / CONFIG_FILE_NAME

    def config_modified(self) -> float | None:
        """The config file's modification time, or None when there is no such file."""
        return _mtime(self.config, want_file=True)

    def folder_modified(self) -> float | None:
        return _mtime(self.folder, want_file=False)

    def logs_modified(self) -> float | None:
        """When Desktop last wrote a log file here (the newest one), or None without any."""
        newest = None
        for folder in self.log_folders:
            stamp = _newest_file(folder)
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
        return newest


class DesktopConfig(Value):
    """The config file this Claude Desktop reads, why, and every place looked at."""

    __slots__ = ("chosen", "reason", "folders")

    def __init__(self, chosen: DesktopFolder, reason: str, folders: tuple[DesktopFolder, ...]) -> None:
        self.chosen = chosen
        self.reason = reason  # one of CHOICE_REASONS
        self.folders = folders

    @property
    def path(self) -> Path:
        return self.chosen.config


def desktop_folders(
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    home: Path | None = None,
) -> tuple[DesktopFolder, ...]:
    """Every `<userData>` a Claude Desktop build on this platform may use, the preferred first (none checked).

    macOS has one. Windows: the Store/MSIX package's container (`Claude_pzs8sxrjxfjjc`, then any
    other `Claude_*` package), whose app cannot see %APPDATA%, then the standard installer's
    %APPDATA%\\Claude. Linux: the community builds' $XDG_CONFIG_HOME/Claude, then the Flatpak
    build's private config folder.
    """
    environ = os.environ if environ is None else environ
    platform = desktop_platform(environ) if platform is None else platform
    home = Path.home() if home is None else home
    if platform == "darwin":
        folder = home / "Library" / "Application Support" / "Claude"
        return (DesktopFolder("macos", folder, (home / "Library" / "Logs" / "Claude",)),)
    if platform == "win32":
        found = []
        for package in _msix_packages(environ, home):
            folder = msix_user_data_folder(environ, home, package)
            local = folder.parent.parent / "Local" / "Claude" / "Logs"  # %LOCALAPPDATA% inside the container
            found.append(DesktopFolder("windows_msix", folder, (folder / "logs", local)))
        classic = _roaming_appdata(environ, home) / "Claude"
        # Not %LOCALAPPDATA%\Claude\Logs: builds of either kind have been seen writing there, so it
        # says nothing about which one runs.
        found.append(DesktopFolder("windows", classic, (classic / "logs",)))
        return tuple(found)
    native = _xdg_config(environ, home) / "Claude"
    flatpak = home / ".var" / "app" / FLATPAK_APP / "config" / "Claude"
    return (
        DesktopFolder("linux", native, (native / "logs",)),
        DesktopFolder("linux_flatpak", flatpak, (flatpak / "logs",)),
    )


def desktop_config(
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    home: Path | None = None,
) -> DesktopConfig:
    """The config this Desktop reads (ignoring $SIDEQUEST_CLAUDE_CONFIG), and why.

    Only folders that exist count. None: the platform's usual place ("usual"). One: that one
    ("only"). Several (a Windows move from the standard installer to the Store build leaves both;
    some installers write every location): the one Desktop used last, judged by the newest
    modification time of its config, its folder and its logs, since only a running Desktop writes
    its logs, and it saves the config it reads when it starts. "newest_logs" when its logs decided,
    else "newest"; a tie goes to the preferred one (the Store build's container on Windows).
    """
    folders = desktop_folders(environ, platform, home)
    present = [folder for folder in folders if folder.folder_modified() is not None]
    if not present:
        # Where this platform's Desktop creates its folder: the Store build's on Windows only
        # once its container exists, so the first is never a folder that is not there.
        usual = folders[-1] if folders[0].kind == "windows_msix" else folders[0]
        return DesktopConfig(usual, "usual", folders)
    if len(present) == 1:
        return DesktopConfig(present[0], "only", folders)
    best: tuple[float, DesktopFolder, str] | None = None
    for folder in present:
        # The folder's own time counts too: Desktop keeps its other state there (an installed Store
        # build's container is busy even before it has a config, a leftover one is not).
        stamp, why = max(
            (folder.config_modified() or 0.0, "newest"),
            (folder.folder_modified() or 0.0, "newest"),
            (folder.logs_modified() or 0.0, "newest_logs"),
            key=lambda pair: pair[0],
        )
        if best is None or stamp > best[0]:
            best = (stamp, folder, why)
    assert best is not None
    return DesktopConfig(best[1], best[2], folders)


def _mtime(path: Path, *, want_file: bool) -> float | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    if want_file != stat.S_ISREG(info.st_mode) or (not want_file and not stat.S_ISDIR(info.st_mode)):
        return None
    return info.st_mtime


def _newest_file(folder: Path) -> float | None:
    newest = None
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_LOG_ENTRIES:
                    break
                try:
                    if not entry.is_file():
                        continue
                    stamp = entry.stat().st_mtime
                except OSError:
                    continue
                if newest is None or stamp > newest:
                    newest = stamp
    except OSError:
        return None
    return newest


def log_folders(
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    home: Path | None = None,
    config_path: Path | None = None,
) -> list[Path]:
    """Every folder Claude Desktop may write its logs in, the documented one first (CLAUDE-DESKTOP.md Q2).

    macOS `~/Library/Logs/Claude`; Windows `%APPDATA%\\Claude\\logs`, the MSIX LocalCache copy and
    `%LOCALAPPDATA%\\Claude\\Logs` (builds since 1.34493 write there and leave the first one stale);
    Linux community builds `<config folder>/logs` (and the Flatpak build's, when it is installed).
    Another Store package than the usual one is listed when its folder exists. The folder beside
    the config in use comes last, for a config kept elsewhere. $SIDEQUEST_CLAUDE_LOGS replaces the
    whole list. Otherwise existence is not checked here.
    """
    environ = os.environ if environ is None else environ
    platform = desktop_platform(environ) if platform is None else platform
    home = Path.home() if home is None else home
    override = environ.get(CLAUDE_LOGS_ENV, "").strip()
    if override:
        return [Path(part.strip()).expanduser() for part in override.split(os.pathsep) if part.strip()]
    if platform == "darwin":
        candidates = [home / "Library" / "Logs" / "Claude"]
    elif platform == "win32":
        candidates = [
            _roaming_appdata(environ, home) / "Claude" / "logs",
            msix_user_data_folder(environ, home) / "logs",
            _local_appdata(environ, home) / "Claude" / "Logs",
        ]
        # Another Store package (re-signed, side by side) is listed only when it is there.
        for package in _msix_packages(environ, home)[1:]:
            candidates.append(msix_user_data_folder(environ, home, package) / "logs")
    else:
        candidates = [_xdg_config(environ, home) / "Claude" / "logs"]
        flatpak = desktop_folders(environ, "linux", home)[1]
        if flatpak.folder_modified() is not None:  # the Flatpak build only when it is installed
            candidates.append(flatpak.folder / "logs")
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
