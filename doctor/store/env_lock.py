"""The cross-process `.env` lock and the owner record beside it.

Two processes refreshing at once would each get a new token from Intuit and one would be written
over the other, breaking the chain for good (INTUIT.md §2.3). So every read-modify-write of the
chain happens while holding an exclusive kernel lock (flock) on `HOME/.env.lock`. The kernel lock
is the truth and dies with its process; the owner record (`.env.lock.owner`, JSON) beside it is
advisory and says who holds it, since when, doing what. filelock truncates the lock file itself,
so the record cannot live inside it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from doctor.store.errors import LockTimeout, StoreError
from doctor.store.lock_records import LOCK_NAME, OWNER_NAME, OwnerRecord, this_host

# A short poll keeps waiters from starving behind a holder
# that re-takes the lock at once; 10 ms of polling costs nothing measurable.
LOCK_POLL_SECONDS = 0.01
OWNER_TEMP_PREFIX = OWNER_NAME + ".tmp-"


class EnvLock:
    """The `HOME/.env.lock` kernel lock with its owner record; re-entrant within one thread."""

    def __init__(self, home: Path, command: str, clock: Callable[[], datetime]) -> None:
        self.home = home
        self.lock_path = home / LOCK_NAME
        self.owner_path = home / OWNER_NAME
        self.command = command
        self._clock = clock
        self._held = threading.local()  # per-thread nesting depth of held()
        self._file_lock = None  # filelock.FileLock, created on first use

    def owner(self) -> OwnerRecord | None:
        """The owner record beside the lock, or None when absent or garbled."""
        try:
            with open(self.owner_path, encoding="utf-8") as handle:
                text = handle.read(4096)
        except (OSError, UnicodeDecodeError):
            return None
        return OwnerRecord.from_json(text)

    @contextmanager
    def held(self, wait: float) -> Iterator[None]:
        """Hold the lock; waits at most `wait` seconds, else LockTimeout naming the holder."""
        depth = getattr(self._held, "depth", 0)
        if depth:
            # Re-entered by the same thread (refresh inside a caller's locked block).
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        try:
            self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError("lock_failed", f"cannot create {self.home}: {exc.strerror}") from None
        release = self._acquire(max(0.0, float(wait)))
        record = OwnerRecord(os.getpid(), this_host(), self._clock(), self.command)
        self._held.depth = 1
        try:
            self._write_owner(record)
            yield
        finally:
            self._held.depth = 0
            self._remove_owner(record)
            release()

    def _acquire(self, wait: float) -> Callable[[], None]:
        from filelock import FileLock, Timeout

        if self._file_lock is None:
            self._file_lock = FileLock(str(self.lock_path), mode=0o600, poll_interval=LOCK_POLL_SECONDS)
        started = time.monotonic()
        try:
            self._file_lock.acquire(timeout=wait)
        except Timeout:
            raise LockTimeout(self.owner(), time.monotonic() - started, self._clock()) from None
        except OSError as exc:
            raise StoreError("lock_failed", f"cannot take the lock {self.lock_path}: {exc.strerror}") from None
        return self._file_lock.release

    def _write_owner(self, record: OwnerRecord) -> None:
        # Advisory only, so no fsync; replace() keeps readers from seeing half a record.
        try:
            import tempfile  # only writers need it; keeps the doctor's start-up lean

            fd, temp = tempfile.mkstemp(prefix=OWNER_TEMP_PREFIX, dir=self.home)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(record.to_json())
            os.replace(temp, self.owner_path)
        except OSError:
            pass

    def _remove_owner(self, record: OwnerRecord) -> None:
        current = self.owner()
        # Compare serialised forms: the stored timestamp has seconds precision only.
        if current is not None and current.to_json() == record.to_json():
            _remove(self.owner_path)


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
