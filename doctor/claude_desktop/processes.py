"""Is Claude Desktop running, since when, and how many copies of the connector run?

Claude Desktop reads its config only at launch, so after SideQuest (or the user) changes the
connector's entry, Desktop keeps running the old values until it is fully quit and reopened.
The doctor says "quit and reopen" only when Desktop started before the config last changed.
Several connector processes at once are normal (chat, Cowork and Code each start one) and worth
a line in the facts, since they all refresh the same token chain.

The process table is read with psutil (macOS, Windows and Linux alike), imported on first use.
Before it, `desktop_may_run` looks at Claude Desktop's single-instance lock, one file beside the
config: when it says no Desktop holds that folder, the table is not read at all, so the offline
doctor pays for psutil (about a quarter of its start-up) only while Desktop may be running.
Nothing here raises.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, Sequence

from doctor.values import Value

# psutil's start times rest on the kernel's boot time, which Linux gives in whole seconds, so a
# config change this close to Desktop's start cannot be ordered honestly.
_START_TIME_TOLERANCE_S = 1.5
# Windows and macOS launchers name programs with these endings; argv[0] may carry them or not.
# npm's `npx` runs as `node …/npx-cli.js`.
_PROGRAM_SUFFIXES = (".exe", ".cmd", ".bat", ".com", "-cli.js", ".js")
# Claude Desktop is an Electron app that takes Chromium's single-instance lock
# (`app.requestSingleInstanceLock()`; "Not main instance, returning early from app ready" in its
# log, claude-code#32614) in its user-data folder, which is the folder of its config. On macOS and
# Linux the lock is a symlink `SingletonLock` -> "<hostname>-<pid>", made at start and removed at
# exit (a crash leaves it behind; the Linux builds' launchers clear such stale ones,
# aaddrick/claude-desktop-debian#842); on Windows it is a file `lockfile` held open while Desktop
# runs (chromium process_singleton_win; ProfileLock's kLockFileName).
SINGLETON_LOCK = "SingletonLock"
WINDOWS_LOCK = "lockfile"


class RunningProcess(Value):
    """One process as the checks here need it. `name` and `started` are read only for processes
    whose command line mentions Claude (a desktop has hundreds of processes); else None."""

    __slots__ = ("pid", "cmdline", "name", "started", "environ")

    def __init__(
        self,
        pid: int,
        cmdline: tuple[str, ...],
        name: str | None = None,
        started: float | None = None,
        environ: dict[str, str] | None = None,
    ):
        self.pid = pid
        self.cmdline = cmdline  # may hold secrets passed as arguments: never shown, only matched
        self.name = name
        self.started = started
        self.environ = environ  # None: not read (yet), or not readable; never shown

    def __repr__(self) -> str:
        return f"RunningProcess(pid={self.pid!r}, name={self.name!r}, args={len(self.cmdline)})"


def running_processes() -> list[RunningProcess]:
    """One look at the process table (this user's processes whose command line can be read)."""
    import psutil

    own = os.getpid()
    found = []
    for process in psutil.process_iter():
        if process.pid == own:
            continue
        try:
            cmdline = tuple(process.cmdline())
            if not cmdline:
                continue  # a kernel thread, a zombie
            name = started = None
            if "claude" in " ".join(cmdline).lower():
                name, started = process.name(), process.create_time()
        except (psutil.Error, OSError):
            continue  # ended meanwhile, or not ours to read
        found.append(RunningProcess(process.pid, cmdline, name, started))
    return found


def desktop_may_run(config_folder: Path, platform: str | None = None) -> bool:
    """Could a Claude Desktop that reads the config in `config_folder` be running?

    False only when its single-instance lock says none is: the lock is absent, or (macOS, Linux)
    it names a process of this computer that has ended. Anything else, an unreadable folder or a
    lock whose holder cannot be told, is True: the caller then reads the process table, which
    decides. So a wrong guess here costs time, never a missed restart.
    """
    platform = sys.platform if platform is None else platform
    lock = Path(config_folder) / (WINDOWS_LOCK if platform == "win32" else SINGLETON_LOCK)
    try:
        os.lstat(lock)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    if platform == "win32":
        return True
    return not _stale_lock(lock)


def _stale_lock(lock: Path) -> bool:
    """Does this `SingletonLock` name a process of this computer that no longer runs?"""
    try:
        host, _, pid_text = os.readlink(lock).rpartition("-")
        pid = int(pid_text) if pid_text.isascii() and pid_text.isdigit() else 0
    except OSError:
        return False  # not a symlink: not the lock we know
    if pid <= 0 or host != os.uname().nodename:
        return False  # another computer's Desktop (a shared home folder), or a shape we do not know
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):
        return False  # it runs (as another user), or we cannot tell
    return False


def desktop_processes(
    processes: Iterable[RunningProcess] | None = None, platform: str | None = None
) -> list[RunningProcess]:
    """Claude Desktop's main processes among `processes` (default: the running ones)."""
    platform = sys.platform if platform is None else platform
    processes = running_processes() if processes is None else processes
    return [p for p in processes if p.name is not None and is_desktop_main(platform, p.name, p.cmdline)]


def desktops_using(
    config_path: Path,
    processes: Iterable[RunningProcess] | None = None,
    platform: str | None = None,
) -> list[RunningProcess]:
    """The running Claude Desktops that read (or may read) the config file at `config_path`.

    Desktop rewrites its config while it runs (CLAUDE-DESKTOP.md Q3), so a change made meanwhile
    is lost. A Desktop counts unless its environment can be read and shows that it reads another
    file (another HOME, XDG_CONFIG_HOME or APPDATA): a Desktop that cannot be told apart is
    assumed to be this file's. An unreadable process table raises (psutil.Error, OSError): the
    caller decides whether writing without knowing is acceptable.
    """
    platform = sys.platform if platform is None else platform
    found = []
    for process in desktop_processes(processes, platform):
        environ = process.environ if process.environ is not None else _environ_of(process.pid)
        if environ is not None and not _reads(config_path, environ, platform):
            continue
        found.append(process)
    return found


def _environ_of(pid: int) -> dict[str, str] | None:
    import psutil

    try:
        return dict(psutil.Process(pid).environ())
    except (psutil.Error, OSError):
        return None


def _reads(config_path: Path, environ: dict[str, str], platform: str) -> bool:
    """Does a Desktop started with `environ` read `config_path`? True when it cannot be told."""
    from doctor.claude_desktop.paths import msix_user_data_folder, user_data_folder

    home_text = environ.get("USERPROFILE" if platform == "win32" else "HOME") or environ.get("HOME")
    if not home_text:
        return True
    home = Path(home_text)
    folders = [user_data_folder(environ, platform, home)]
    if platform == "win32":
        roaming = environ.get("APPDATA") or str(home / "AppData" / "Roaming")
        folders += [msix_user_data_folder(environ, home), Path(roaming) / "Claude"]
    wanted = _real_folder(Path(config_path).parent)
    return any(_real_folder(folder) == wanted for folder in folders)


def _real_folder(folder: Path) -> str:
    return os.path.normcase(os.path.realpath(folder))


def started_after_config_change(
    config_mtime: float,
    platform: str | None = None,
    *,
    processes: Iterable[RunningProcess] | None = None,
) -> bool | None:
    """Does a running Claude Desktop predate the config's last change, so it needs a restart?

    True: Claude Desktop started BEFORE the config changed (it still runs the old values;
    restart needed). False: it started after (it has loaded them). None: it is not running,
    or the order cannot be told (too close to call, the process table unreadable).
    """
    try:
        starts = [p.started for p in desktop_processes(processes, platform) if p.started is not None]
    except Exception:  # a diagnostic aid must never take the caller down
        return None
    if not starts:
        return None
    started = min(starts)  # the main process that has run longest holds the oldest settings
    if abs(started - config_mtime) < _START_TIME_TOLERANCE_S:
        return None
    return started < config_mtime


def count_connector_processes(
    command: str | None,
    args: Sequence[str] = (),
    *,
    processes: Iterable[RunningProcess] | None = None,
) -> int | None:
    """How many processes run the connector's `command args…` as Desktop starts it; None if unknown."""
    if not command or not command.strip():
        return None
    try:
        processes = running_processes() if processes is None else processes
        return sum(1 for p in processes if launched_as(p.cmdline, command, args))
    except Exception:
        return None


def launched_as(cmdline: Sequence[str], command: str, args: Sequence[str]) -> bool:
    """Is this command line `command args…`, run directly or through an interpreter?

    Desktop passes `args` exactly, so they end the command line. Before them stands the program:
    `command` itself (argv[0] as Desktop spawned it), or, for a script, the script's path after
    the interpreter its shebang names (so the kernel writes the full path where Desktop wrote a
    bare name).
    """
    wanted = 1 + len(args)
    if len(cmdline) < wanted or tuple(cmdline[len(cmdline) - len(args) :]) != tuple(args):
        return False
    return _same_program(cmdline[len(cmdline) - wanted], command)


def _same_program(seen: str, command: str) -> bool:
    if seen == command:
        return True
    return _program_name(seen) == _program_name(command)


def _program_name(path: str) -> str:
    name = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    for suffix in _PROGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_desktop_main(platform: str, name: str, cmdline: Sequence[str]) -> bool:
    """Is this Claude Desktop's main process, not an Electron helper or another Claude tool?

    Electron helpers carry `--type=...`; the Claude Code CLI (`claude`, which Desktop also
    bundles) is not Claude Desktop; sidequest itself may have "claude" in its arguments.
    """
    if not cmdline or any(arg.startswith("--type=") for arg in cmdline):
        return False
    if any("sidequest" in arg for arg in cmdline):
        return False
    program = cmdline[0].replace("\\", "/")
    if platform == "darwin":
        return program.endswith("Claude.app/Contents/MacOS/Claude") or (name == "Claude" and "/Claude.app/" in program)
    if platform == "win32":
        # Desktop is `Claude.exe` (Squirrel: %LOCALAPPDATA%\AnthropicClaude\app-*; MSIX: WindowsApps\Claude_*);
        # Claude Code's native binary is a lowercase `claude.exe`.
        return name == "Claude.exe" or program.rsplit("/", 1)[-1] == "Claude.exe"
    return _is_linux_main(name, cmdline)


def _is_linux_main(name: str, cmdline: Sequence[str]) -> bool:
    """The Electron main process of a Linux community build (there is no official one)."""
    program = cmdline[0]
    program_name = program.rsplit("/", 1)[-1]
    if name == "claude-desktop" or program_name in ("claude-desktop", "Claude"):
        return True
    if "claude-desktop" in program or "/Claude/" in program or program.endswith("/Claude"):
        return True
    # Packaged as `electron /usr/lib/claude-desktop/app.asar`.
    if program_name.startswith("electron"):
        return any("claude-desktop" in arg or "/Claude" in arg for arg in cmdline[1:])
    return False
