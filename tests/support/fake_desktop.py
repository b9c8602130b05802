"""A real process the doctor takes for a running Claude Desktop (Linux community build) reading one config.

`sleep` under a symlink named `claude-desktop`: the kernel names the process after the link, as
`is_desktop_main` expects of a Linux build, and `XDG_CONFIG_HOME` in its environment says which
`Claude/claude_desktop_config.json` it reads. So only the test that starts it sees "Desktop is
running" for its own config; tests running beside it (other configs) never do. Like the real
Electron app it holds the single-instance lock `SingletonLock` -> "<hostname>-<pid>" in that
folder while it runs, and the lock goes when it ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from doctor.claude_desktop.processes import SINGLETON_LOCK, desktops_using


@contextlib.contextmanager
def desktop_running(config_path: Path, where: Path) -> Iterator[subprocess.Popen]:
    """A Claude Desktop reading `config_path` (which must be `<folder>/Claude/claude_desktop_config.json`)."""
    if not sys.platform.startswith("linux"):
        raise RuntimeError("the fake Claude Desktop is a Linux process")
    config_path = Path(config_path)
    assert config_path.parent.name == "Claude", "Desktop reads <XDG_CONFIG_HOME>/Claude/claude_desktop_config.json"
    where.mkdir(parents=True, exist_ok=True)
    program = where / "claude-desktop"
    if not program.exists():
        program.symlink_to(shutil.which("sleep") or "/bin/sleep")
    user = where / "desktop-user"
    user.mkdir(exist_ok=True)
    env = {"HOME": str(user), "XDG_CONFIG_HOME": str(config_path.parent.parent.absolute()), "PATH": "/usr/bin:/bin"}
    child = subprocess.Popen([str(program), "300"], env=env, start_new_session=True)
    lock = config_path.parent / SINGLETON_LOCK
    lock.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(f"{os.uname().nodename}-{child.pid}", lock)
    try:
        deadline = time.monotonic() + 10
        while not any(p.pid == child.pid for p in desktops_using(config_path, platform="linux")):
            if time.monotonic() > deadline:
                raise AssertionError("the fake Claude Desktop never showed up in the process table")
            time.sleep(0.02)
        yield child
    finally:
        child.kill()
        child.wait(timeout=10)
        with contextlib.suppress(OSError):
            os.unlink(program)
        with contextlib.suppress(OSError):
            os.unlink(lock)
