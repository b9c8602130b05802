"""Tests for doctor.claude_desktop.processes: is Claude Desktop running, and since when."""

from __future__ import annotations

import os
import time
from pathlib import Path

from doctor.claude_desktop.processes import _claude_start_from_proc, _claude_start_from_ps, started_after_config_change

# --------------------------------------------------------------------------- restart check


def test_restart_check_runs_on_this_machine() -> None:
    started = time.perf_counter()
    assert started_after_config_change(time.time()) in (None, True, False)
    assert time.perf_counter() - started < 2
    assert started_after_config_change(time.time(), platform="win32") is None


def make_fake_proc(root: Path, processes: dict[int, tuple[str, list[str], int]], btime: int) -> Path:
    root.mkdir()
    (root / "stat").write_text(f"cpu  1 2 3\nbtime {btime}\nprocesses 9\n")
    (root / "self").mkdir()
    for pid, (comm, argv, start_ticks) in processes.items():
        folder = root / str(pid)
        folder.mkdir()
        (folder / "comm").write_text(comm + "\n")
        (folder / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        fields = ["S"] + ["0"] * 18 + [str(start_ticks)] + ["0"] * 30
        (folder / "stat").write_text(f"{pid} ({comm}) " + " ".join(fields) + "\n")
    return root


def test_proc_scan_finds_the_claude_desktop_main_process(tmp_path: Path) -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    btime = 1_700_000_000
    app = "/usr/lib/claude-desktop"
    proc = make_fake_proc(
        tmp_path / "proc",
        {
            # An Electron helper started earlier must not count.
            10: ("claude-desktop", [f"{app}/claude-desktop", "--type=renderer"], 50 * ticks),
            11: ("electron", [f"{app}/electron", f"{app}/app.asar"], 100 * ticks),
            # Claude Code's CLI is not Claude Desktop, nor is sidequest with "claude" in its args.
            12: ("claude", ["claude", "--resume"], 10 * ticks),
            13: ("python", ["python", "-m", "sidequest", "--claude-config", "/h/Claude/x"], 5),
            14: ("weird (name) x", ["/usr/bin/true"], 1 * ticks),
        },
        btime,
    )
    assert _claude_start_from_proc(proc) == btime + 100
    assert started_after_config_change(btime + 200, "linux", proc_root=proc) is True
    assert started_after_config_change(btime + 50, "linux", proc_root=proc) is False
    assert started_after_config_change(btime + 100.5, "linux", proc_root=proc) is None


def test_proc_scan_without_claude_or_without_btime(tmp_path: Path) -> None:
    proc = make_fake_proc(tmp_path / "proc", {20: ("bash", ["bash"], 5)}, 1_700_000_000)
    assert started_after_config_change(time.time(), "linux", proc_root=proc) is None
    broken = tmp_path / "broken"
    broken.mkdir()
    assert started_after_config_change(time.time(), "linux", proc_root=broken) is None
    assert started_after_config_change(time.time(), "linux", proc_root=tmp_path / "absent") is None


def test_ps_output_parsing() -> None:
    output = (
        "Mon Nov  3 09:15:02 2025     /Applications/Claude.app/Contents/Frameworks/"
        "Claude Helper (Renderer).app/Contents/MacOS/Claude Helper (Renderer)\n"
        "Mon Nov  3 09:15:00 2025     /Applications/Claude.app/Contents/MacOS/Claude\n"
        "Sun Nov  2 08:00:00 2025     /usr/sbin/cfprefsd\n"
        "garbage\n"
    )
    expected = time.mktime(time.strptime("Mon Nov 3 09:15:00 2025", "%a %b %d %H:%M:%S %Y"))
    assert _claude_start_from_ps(output) == expected
    assert _claude_start_from_ps("Sun Nov  2 08:00:00 2025 /usr/sbin/cfprefsd\n") is None
