"""Tests for doctor.claude_desktop.processes: is Claude Desktop running, since when, and the connector's copies.

Real processes where this machine can run them (a child whose argv is Claude Desktop's, connector
scripts started the way Desktop starts them); the macOS and Windows process shapes as data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from doctor.claude_desktop.processes import (
    SINGLETON_LOCK,
    WINDOWS_LOCK,
    RunningProcess,
    count_connector_processes,
    desktop_may_run,
    desktop_processes,
    desktops_using,
    is_desktop_main,
    launched_as,
    running_processes,
    started_after_config_change,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the children are POSIX shell and scripts")

FAKE_DESKTOP = "/usr/lib/claude-desktop/claude-desktop"


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for child in started:
        try:
            os.killpg(child.pid, signal.SIGKILL)  # the child and the sleep it waits on
        except ProcessLookupError:
            child.kill()
        child.wait(timeout=10)


def spawn_as(children: list[subprocess.Popen], argv0: str, *args: str) -> subprocess.Popen:
    """A child whose argv starts `argv0` and ends `args…` (bash's `exec -a`), waiting until killed."""
    script = 'exec -a "$0" /bin/sh -c "sleep 120; :" sh "$@"'
    child = subprocess.Popen(["bash", "-c", script, argv0, *args], start_new_session=True)
    children.append(child)
    return child


def wait_until_seen(pid: int, argv0: str) -> RunningProcess:
    """The child as the process table shows it, once bash has exec'd into its final argv."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for process in running_processes():
            if process.pid == pid and process.cmdline[0] == argv0:
                return process
        time.sleep(0.02)
    raise AssertionError(f"process {pid} never showed argv[0] {argv0}")


def test_a_running_desktop_and_its_start_time_are_found(children) -> None:
    desktop = spawn_as(children, FAKE_DESKTOP)
    seen = wait_until_seen(desktop.pid, FAKE_DESKTOP)
    assert seen.name == "sh" and seen.started == pytest.approx(time.time(), abs=30)
    found = desktop_processes(platform="linux")
    assert desktop.pid in [p.pid for p in found]

    alone = [p for p in running_processes() if p.pid == desktop.pid]
    assert started_after_config_change(seen.started + 60, "linux", processes=alone) is True
    assert started_after_config_change(seen.started - 60, "linux", processes=alone) is False
    assert started_after_config_change(seen.started + 0.5, "linux", processes=alone) is None


def test_helpers_and_other_claude_tools_are_not_desktop(children) -> None:
    helper = spawn_as(children, FAKE_DESKTOP, "--type=renderer")
    code = spawn_as(children, "claude", "--resume")
    mine = spawn_as(children, "/usr/bin/python3", "-m", "sidequest", "--claude-config", "/h/Claude/c.json")
    for child, argv0 in ((helper, FAKE_DESKTOP), (code, "claude"), (mine, "/usr/bin/python3")):
        wait_until_seen(child.pid, argv0)
    ours = {helper.pid, code.pid, mine.pid}
    snapshot = [p for p in running_processes() if p.pid in ours]
    assert len(snapshot) == 3
    assert desktop_processes(snapshot, "linux") == []
    assert started_after_config_change(time.time(), "linux", processes=snapshot) is None


def test_no_desktop_means_no_answer() -> None:
    assert started_after_config_change(time.time(), "linux", processes=[]) is None
    assert started_after_config_change(time.time()) in (None, True, False)  # the real table: never raises


def test_the_connector_copies_are_counted(tmp_path: Path, children) -> None:
    # A connector program as users install it: a script whose shebang names the interpreter.
    name = f"qb-connector-{uuid.uuid4().hex[:8]}"  # no other process on this machine has it
    script = tmp_path / "bin" / name
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(120)\n")
    script.chmod(0o755)
    for args in (["--stdio"], ["--stdio"], ["--other"]):
        children.append(subprocess.Popen([str(script), *args], start_new_session=True))
    deadline = time.monotonic() + 10
    count = None
    while time.monotonic() < deadline:
        count = count_connector_processes(name, ["--stdio"])  # bare, as Desktop may hold it
        if count == 2:
            break
        time.sleep(0.05)
    assert count == 2
    assert count_connector_processes(str(script), ["--stdio"]) == 2
    assert count_connector_processes(str(script), ["--elsewhere"]) == 0
    assert count_connector_processes(None) is None


@pytest.mark.parametrize(
    ("cmdline", "command", "args", "expected"),
    [
        (("uvx", "qb-distributor-mcp"), "uvx", ("qb-distributor-mcp",), True),
        (("/usr/bin/python3", "-u", "/home/u/.local/bin/qb-mcp"), "qb-mcp", (), True),
        (("C:\\Program Files\\nodejs\\node.exe", "C:\\npm\\npx-cli.js", "-y", "qb-mcp"), "npx", ("-y", "qb-mcp"), True),
        (("C:\\Python312\\python.exe", "-m", "qb_mcp"), "python", ("-m", "qb_mcp"), True),
        (("uvx", "qb-distributor-mcp", "--extra"), "uvx", ("qb-distributor-mcp",), False),
        (("uvx", "other-server"), "uvx", ("qb-distributor-mcp",), False),
        (("qb-distributor-mcp",), "uvx", ("qb-distributor-mcp",), False),
    ],
)
def test_launched_as(cmdline: tuple[str, ...], command: str, args: tuple[str, ...], expected: bool) -> None:
    assert launched_as(cmdline, command, args) is expected


@pytest.mark.parametrize(
    ("platform", "name", "cmdline", "expected"),
    [
        ("darwin", "Claude", ["/Applications/Claude.app/Contents/MacOS/Claude"], True),
        (
            "darwin",
            "Claude Helper (Renderer)",
            [
                "/Applications/Claude.app/Contents/Frameworks/Claude Helper (Renderer).app/Contents/MacOS/"
                "Claude Helper (Renderer)",
                "--type=renderer",
            ],
            False,
        ),
        ("darwin", "claude", ["/Users/u/.local/bin/claude"], False),  # Claude Code
        ("win32", "Claude.exe", ["C:\\Users\\u\\AppData\\Local\\AnthropicClaude\\app-1.0.0\\Claude.exe"], True),
        (
            "win32",
            "Claude.exe",
            ["C:\\Program Files\\WindowsApps\\Claude_1.0.0.0_x64__pzs8sxrjxfjjc\\app\\Claude.exe"],
            True,
        ),
        ("win32", "Claude.exe", ["C:\\…\\Claude.exe", "--type=gpu-process"], False),
        ("win32", "claude.exe", ["C:\\Users\\u\\.local\\bin\\claude.exe"], False),  # Claude Code
        ("linux", "electron", ["/usr/lib/electron/electron", "/usr/lib/claude-desktop/app.asar"], True),
        ("linux", "claude", ["claude", "--resume"], False),
    ],
)
def test_desktop_main_process_on_each_platform(platform: str, name: str, cmdline: list[str], expected: bool) -> None:
    assert is_desktop_main(platform, name, cmdline) is expected
    process = RunningProcess(1, tuple(cmdline), name, 1000.0)
    assert started_after_config_change(2000.0, platform, processes=[process]) is (True if expected else None)


def test_psutil_is_imported_only_when_the_process_table_is_read() -> None:
    from tests.support.homes import modules_loaded

    loaded = "import probes.claude_config_sync, doctor.claude_desktop.processes as p"
    assert modules_loaded(loaded, ["psutil"]) == []
    assert modules_loaded(loaded + "; p.started_after_config_change(0.0)", ["psutil"]) == ["psutil"]


# ----------------------------------------------------------------------------- Desktop's single-instance lock


def _ended_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


@pytest.mark.parametrize(
    "target, expected",
    [
        (None, False),  # no lock: no Desktop holds this folder
        ("{host}-{live}", True),
        ("{host}-{ended}", False),  # a crash left it behind
        ("other-computer-{ended}", True),  # a Desktop elsewhere on a shared home: the process table decides
        ("{host}-notapid", True),
        ("{host}-\u00b2", True),  # a digit to str.isdigit, not to int()
        ("{host}-0", True),
        ("{host}-99999999999999999999", True),
    ],
)
def test_desktops_lock_says_whether_one_may_run(tmp_path: Path, target: str | None, expected: bool) -> None:
    if target is not None:
        text = target.format(host=os.uname().nodename, live=os.getpid(), ended=_ended_pid())
        os.symlink(text, tmp_path / SINGLETON_LOCK)
    assert desktop_may_run(tmp_path, "linux") is expected
    assert desktop_may_run(tmp_path, "darwin") is expected


def test_a_lock_that_is_not_a_symlink_or_a_folder_that_cannot_be_read_means_maybe(tmp_path: Path) -> None:
    (tmp_path / SINGLETON_LOCK).write_text("not the lock Chromium makes")
    assert desktop_may_run(tmp_path, "linux") is True
    assert desktop_may_run(tmp_path / "file" / "below", "linux") is False  # no such folder: no lock in it
    (tmp_path / "a-file").write_text("")
    assert desktop_may_run(tmp_path / "a-file", "linux") is True  # ENOTDIR: cannot tell


def test_on_windows_the_lock_is_a_file_named_lockfile(tmp_path: Path) -> None:
    assert desktop_may_run(tmp_path, "win32") is False
    os.symlink(f"{os.uname().nodename}-{_ended_pid()}", tmp_path / SINGLETON_LOCK)
    assert desktop_may_run(tmp_path, "win32") is False  # Windows has no SingletonLock
    (tmp_path / WINDOWS_LOCK).write_bytes(b"")
    assert desktop_may_run(tmp_path, "win32") is True


def test_the_fake_desktop_holds_the_lock_while_it_runs(tmp_path: Path) -> None:
    from tests.support.fake_desktop import desktop_running

    config = tmp_path / "Claude" / "claude_desktop_config.json"
    assert desktop_may_run(config.parent, "linux") is False
    with desktop_running(config, tmp_path / "desk"):
        assert desktop_may_run(config.parent, "linux") is True
    assert desktop_may_run(config.parent, "linux") is False


# ----------------------------------------------------------------------------- which config a Desktop reads


def test_only_a_desktop_that_reads_the_config_counts_for_it(tmp_path: Path) -> None:
    from tests.support.fake_desktop import desktop_running

    config = tmp_path / "mine" / "Claude" / "claude_desktop_config.json"
    other = tmp_path / "other" / "Claude" / "claude_desktop_config.json"
    assert desktops_using(config, platform="linux") == []
    with desktop_running(config, tmp_path / "desk") as desktop:
        assert [p.pid for p in desktops_using(config, platform="linux")] == [desktop.pid]
        assert desktops_using(other, platform="linux") == []  # a Desktop with another XDG_CONFIG_HOME
    assert desktops_using(config, platform="linux") == []


def test_a_desktop_whose_environment_cannot_be_read_counts_for_every_config(tmp_path: Path) -> None:
    config = tmp_path / "Claude" / "claude_desktop_config.json"
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid has no process now: no environment to read
    unreadable = RunningProcess(gone.pid, ("/usr/lib/claude-desktop/claude-desktop",), "claude-desktop", 1.0)
    home = tmp_path / "user"
    elsewhere = RunningProcess(
        2, ("/usr/lib/claude-desktop/claude-desktop",), "claude-desktop", 1.0, {"HOME": str(home)}
    )
    # A Desktop whose environment cannot be read cannot be told apart, so it counts.
    assert desktops_using(config, [unreadable, elsewhere], "linux") == [unreadable]
    reads = RunningProcess(
        3,
        ("/usr/lib/claude-desktop/claude-desktop",),
        "claude-desktop",
        1.0,
        {"HOME": str(tmp_path / "h"), "XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert desktops_using(config, [reads], "linux") == [reads]
    mac = RunningProcess(4, ("/Applications/Claude.app/Contents/MacOS/Claude",), "Claude", 1.0, {"HOME": str(home)})
    mac_config = home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    assert desktops_using(mac_config, [mac], "darwin") == [mac]
    assert desktops_using(config, [mac], "darwin") == []
