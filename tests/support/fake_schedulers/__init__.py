"""Fake launchctl, schtasks, systemctl and crontab: real executables on PATH that keep state.

Why: `sidequest keepalive` drives each platform's scheduler through its command-line tool, and
this Linux machine has none of them working (no launchd, no Task Scheduler, no user systemd, no
cron). Each fake is a small Python program behind a `#!/bin/sh` wrapper in a bin folder that a
test puts first on PATH. It records every call (argv, and the bytes given on stdin) in
`STATE/calls.jsonl`, keeps what it was told in `STATE/<tool>.json`, and answers the way the real
tool does for the calls sidequest makes, including the real tools' refusals (an already loaded
service, a missing task, no crontab, no user bus).

Knobs, set in the environment of the process under test:
  FAKE_SCHEDULER_STATE    the state folder (required)
  FAKE_LAUNCHCTL_LEGACY=1 launchctl without bootstrap/bootout/print (macOS before 10.10)
  FAKE_SYSTEMCTL_USER=down  `systemctl --user` cannot reach a user manager
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOLS = ("launchctl", "schtasks", "systemctl", "crontab")


def install(bin_dir: Path, tools: tuple[str, ...] = TOOLS) -> Path:
    """Write one executable wrapper per tool into `bin_dir`; returns `bin_dir`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in tools:
        wrapper = bin_dir / tool
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HERE / "tool.py"}" {tool} "$@"\n')
        wrapper.chmod(0o755)
    return bin_dir


def calls(state: Path, tool: str | None = None) -> list[list[str]]:
    """The argv of every recorded call (tool name first), oldest first."""
    path = state / "calls.jsonl"
    if not path.exists():
        return []
    found = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [[entry["tool"], *entry["args"]] for entry in found if tool is None or entry["tool"] == tool]


def state_of(state: Path, tool: str) -> dict:
    path = state / f"{tool}.json"
    return json.loads(path.read_text()) if path.exists() else {}
