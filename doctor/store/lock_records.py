"""The lock's names and the owner record beside it: what the token store writes and lock-health reads.

The owner record (`.env.lock.owner`, JSON) says who holds the `.env` lock, since when, doing
what. It lives apart from `doctor.store.token_store` so that reading it (every offline doctor
run does) does not import the whole store.
"""

from __future__ import annotations

import json
import os
from datetime import datetime

from doctor.store.timestamps import format_timestamp, parse_timestamp
from doctor.values import Value

LOCK_NAME = ".env.lock"
OWNER_NAME = ".env.lock.owner"


def this_host() -> str:
    """This computer's name, as owner records store it (os.uname avoids importing socket)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


class OwnerRecord(Value):
    """Who holds (or last held) the `.env` lock."""

    __slots__ = ("pid", "host", "started_at", "command")

    def __init__(self, pid: int, host: str, started_at: datetime, command: str) -> None:
        self.pid = pid
        self.host = host
        self.started_at = started_at
        self.command = command

    def alive(self) -> bool | None:
        """Is the holder still running? None when it runs on another host (cannot know)."""
        if self.host != this_host():
            return None
        if self.pid <= 0:
            return False
        if os.name == "nt":
            # On Windows os.kill(pid, 0) sends CTRL_C_EVENT instead of probing: never do that.
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            # The process exists but belongs to another user.
            return True
        except OSError:
            return None
        return True

    def describe(self, now: datetime) -> str:
        held = max(0, int((now - self.started_at).total_seconds()))
        return f"pid {self.pid} on {self.host} ({self.command}), holding for {held} s"

    def to_json(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "host": self.host,
                "started_at": format_timestamp(self.started_at),
                "command": self.command,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> OwnerRecord | None:
        try:
            data = json.loads(text)
            started = parse_timestamp(data["started_at"])
            if started is None or not isinstance(data["pid"], int) or isinstance(data["pid"], bool):
                return None
            return cls(pid=data["pid"], host=str(data["host"]), started_at=started, command=str(data["command"]))
        except (ValueError, KeyError, TypeError):
            return None
