"""What `sidequest keepalive on` installed, kept in `HOME/keepalive.json`.

Why: the doctor's `keepalive` probe must say whether a keep-alive is installed without asking
the platform's scheduler (an offline run starts no other programs), and `keepalive off` must
remove exactly what `on` installed. The record names the scheduler, where the job lives (files,
a task name or the crontab), its interval and the command it runs; nothing secret.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from doctor.store.atomic_file import replace_atomically
from doctor.store.timestamps import format_timestamp, parse_timestamp
from doctor.values import Value

RECORD_NAME = "keepalive.json"
SCHEDULERS = ("launchd", "schtasks", "systemd", "cron")
MAX_RECORD_BYTES = 64 * 1024


class KeepaliveRecord(Value):
    """One installed keep-alive job.

    `where` says in words where it lives; `files` are the files it consists of (a LaunchAgent
    plist, systemd units), so a reader can check they still exist; `command` is the argv it runs.
    """

    __slots__ = ("scheduler", "where", "files", "every_days", "installed_at", "command")

    def __init__(
        self,
        scheduler: str,
        where: str,
        files: tuple[str, ...],
        every_days: int,
        installed_at: datetime,
        command: tuple[str, ...],
    ) -> None:
        self.scheduler = scheduler
        self.where = where
        self.files = files
        self.every_days = every_days
        self.installed_at = installed_at
        self.command = command

    def missing_files(self) -> list[str]:
        return [name for name in self.files if not os.path.exists(name)]

    def to_json(self) -> dict[str, object]:
        return {
            "version": 1,
            "scheduler": self.scheduler,
            "where": self.where,
            "files": list(self.files),
            "every_days": self.every_days,
            "installed_at": format_timestamp(self.installed_at),
            "command": list(self.command),
        }


def record_path(home: Path) -> Path:
    return Path(home) / RECORD_NAME


def read_record(home: Path) -> KeepaliveRecord | None:
    """The record, or None when there is none or it cannot be understood."""
    try:
        with open(record_path(home), "rb") as handle:
            raw = handle.read(MAX_RECORD_BYTES + 1)
        data = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_RECORD_BYTES else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    scheduler, every = data.get("scheduler"), data.get("every_days")
    installed_at = parse_timestamp(data.get("installed_at")) if isinstance(data.get("installed_at"), str) else None
    files, command, where = data.get("files"), data.get("command"), data.get("where")
    if (
        scheduler not in SCHEDULERS
        or not isinstance(every, int)
        or isinstance(every, bool)
        or every < 1
        or installed_at is None
        or not isinstance(where, str)
        or not isinstance(files, list)
        or not all(isinstance(name, str) for name in files)
        or not isinstance(command, list)
        or not all(isinstance(arg, str) for arg in command)
    ):
        return None
    return KeepaliveRecord(scheduler, where, tuple(files), every, installed_at, tuple(command))


def write_record(home: Path, record: KeepaliveRecord) -> None:
    data = (json.dumps(record.to_json(), indent=2) + "\n").encode("utf-8")
    replace_atomically(record_path(home), data, 0o600, prefix=f".{RECORD_NAME}.tmp-")


def remove_record(home: Path) -> bool:
    try:
        os.unlink(record_path(home))
    except FileNotFoundError:
        return False
    return True
