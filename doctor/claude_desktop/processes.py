"""Is Claude Desktop running, and did it start before its config last changed?

Claude Desktop reads its config only at launch, so after SideQuest (or the user) changes the
connector's entry, Desktop keeps running the old values until it is fully quit and reopened.
This module answers that question for the doctor's advice; it never raises.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

# Process start times come from clocks with one-second (ps lstart, /proc btime) resolution,
# so a config change this close to the start cannot be ordered honestly.
_START_TIME_TOLERANCE_S = 1.5


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
