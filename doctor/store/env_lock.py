"""The cross-process `.env` lock and the owner record beside it.

Two processes refreshing at once would each get a new token from Intuit and one would be written
over the other, breaking the chain for good (INTUIT.md §2.3). So every read-modify-write of the
chain happens while holding an exclusive kernel lock (flock) on `HOME/.env.lock`. The kernel lock
is the truth and dies with its process; the owner record (`.env.lock.owner`, JSON) beside it is
advisory and says who holds it, since when, doing what. filelock truncates the lock file itself,
so the record cannot live inside it.

Waiting: flock has no queue, and a waiter that polls (as filelock does) keeps losing to a holder
that takes the lock again at once. On POSIX a waiter here blocks in the kernel (in a helper
thread, so the wait stays bounded) and is woken the moment the lock is let go; and every taker
first passes a gate (`.env.lock.gate`) that the next waiter holds while it waits on the lock, so
a holder that lets go cannot take the lock straight back past someone already waiting. Processes
that only know `.env.lock` (older connectors, the lock-health probe) are still kept out by it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from doctor.store.errors import LockTimeout, StoreError
from doctor.store.lock_records import LOCK_NAME, OWNER_NAME, OwnerRecord, this_host

try:  # POSIX; Windows falls back to filelock's polling msvcrt lock
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

GATE_NAME = LOCK_NAME + ".gate"
# Windows only: filelock's poll interval. A short poll keeps waiters from starving behind a holder
# that re-takes the lock at once; 10 ms of polling costs nothing measurable.
LOCK_POLL_SECONDS = 0.01
OWNER_TEMP_PREFIX = OWNER_NAME + ".tmp-"
# How long `refresh-qb` waits for the lock (DESIGN.md §9a: about 10 s); a loaded machine may need more.
LOCK_WAIT_ENV = "SIDEQUEST_LOCK_WAIT"
DEFAULT_LOCK_WAIT = 10.0
MAX_LOCK_WAIT = 600.0


def lock_wait_from(environ: Mapping[str, str], default: float = DEFAULT_LOCK_WAIT) -> float:
    """Seconds to wait for the lock: $SIDEQUEST_LOCK_WAIT when it is a number (0 to 600), else `default`."""
    try:
        seconds = float((environ.get(LOCK_WAIT_ENV) or "").strip())
    except ValueError:
        return default
    if seconds != seconds:  # NaN
        return default
    return min(max(seconds, 0.0), MAX_LOCK_WAIT)


class _BlockedWait:
    """A blocking flock in a helper thread: the kernel wakes it as soon as the holder lets go.

    If the caller stops waiting first, the thread finishes alone: when it gets the lock at last it
    closes the descriptor, which lets the lock go at once.
    """

    def __init__(self, descriptor: int) -> None:
        self.descriptor = descriptor
        self.mutex = threading.Lock()
        self.done = threading.Event()
        self.abandoned = False
        self.error: OSError | None = None

    def run(self) -> None:
        try:
            fcntl.flock(self.descriptor, fcntl.LOCK_EX)
        except OSError as exc:
            self.error = exc
        with self.mutex:
            self.done.set()
            if self.abandoned:
                os.close(self.descriptor)

    def wait(self, seconds: float) -> bool:
        """True when the lock is ours; False when `seconds` passed first (the thread then cleans up)."""
        threading.Thread(target=self.run, name="sidequest-lock-wait", daemon=True).start()
        self.done.wait(max(0.0, seconds))
        with self.mutex:
            if not self.done.is_set():
                self.abandoned = True
                return False
        if self.error is not None:
            os.close(self.descriptor)
            raise self.error
        return True


def _flock_by(path: Path, deadline: float) -> int:
    """A descriptor of `path` holding its exclusive flock; TimeoutError once `deadline` passes."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        _give_to_home_owner(descriptor, path.parent)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return descriptor
    except BlockingIOError:
        pass
    except BaseException:
        os.close(descriptor)
        raise
    if not _BlockedWait(descriptor).wait(deadline - time.monotonic()):
        raise TimeoutError
    return descriptor


def _give_to_home_owner(descriptor: int, home: Path) -> None:
    """A lock file root just created in a user's home goes to that user, who must open it too."""
    if os.geteuid() != 0 or os.fstat(descriptor).st_uid != 0:
        return
    folder = os.stat(home)
    if folder.st_uid != 0:
        os.fchown(descriptor, folder.st_uid, folder.st_gid)


def _unlock(descriptor: int) -> None:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


class EnvLock:
    """The `HOME/.env.lock` kernel lock with its owner record; re-entrant within one thread."""

    def __init__(self, home: Path, command: str, clock: Callable[[], datetime]) -> None:
        self.home = home
        self.lock_path = home / LOCK_NAME
        self.gate_path = home / GATE_NAME
        self.owner_path = home / OWNER_NAME
        self.command = command
        self._clock = clock
        self._held = threading.local()  # per-thread nesting depth of held()
        self._file_lock = None  # Windows: filelock.FileLock, created on first use

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
            self._remove_leftovers()
            self._write_owner(record)
            yield
        finally:
            self._held.depth = 0
            self._remove_owner(record)
            release()

    def _acquire(self, wait: float) -> Callable[[], None]:
        started = time.monotonic()
        try:
            if fcntl is None:  # pragma: no cover - Windows
                return self._acquire_polling(wait)
            deadline = started + wait
            gate = _flock_by(self.gate_path, deadline)
            try:
                descriptor = _flock_by(self.lock_path, deadline)
            finally:
                _unlock(gate)
            return lambda: _unlock(descriptor)
        except TimeoutError:
            raise LockTimeout(self.owner(), time.monotonic() - started, self._clock()) from None
        except OSError as exc:
            raise StoreError("lock_failed", f"cannot take the lock {self.lock_path}: {exc.strerror}") from None

    def _acquire_polling(self, wait: float) -> Callable[[], None]:  # pragma: no cover - Windows
        from filelock import FileLock, Timeout

        if self._file_lock is None:
            self._file_lock = FileLock(str(self.lock_path), mode=0o600, poll_interval=LOCK_POLL_SECONDS)
        try:
            self._file_lock.acquire(timeout=wait)
        except Timeout:
            raise TimeoutError from None
        return self._file_lock.release

    def _write_owner(self, record: OwnerRecord) -> None:
        # Advisory only, so no fsync; replace() keeps readers from seeing half a record.
        import tempfile  # only writers need it; keeps the doctor's start-up lean

        try:
            fd, temp = tempfile.mkstemp(prefix=OWNER_TEMP_PREFIX, dir=self.home)
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(record.to_json())
            os.replace(temp, self.owner_path)
        except OSError:
            _remove(Path(temp))

    def _remove_leftovers(self) -> None:
        """Owner-record temp files of holders killed mid-write: only a holder writes one, and we hold the lock."""
        try:
            names = os.listdir(self.home)
        except OSError:
            return
        for name in names:
            if name.startswith(OWNER_TEMP_PREFIX):
                _remove(self.home / name)

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
