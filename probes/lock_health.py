"""Probe `lock-health`: can SideQuest take the `.env` token lock, and is the folder fit for it?

Every refresh rotates the refresh token under the cross-process lock `HOME/.env.lock`
(doctor/token_store.py). When that lock is stuck, when the folder cannot be written, or when
the folder lives in a cloud-synced drive that breaks locks and atomic renames, the chain can
break or refreshes stall; the owner should hear which program is in the way and what to do.

The probe only observes. It takes the kernel lock itself (flock on a read-only handle of the
existing lock file) instead of going through `TokenStore.locked`, because that path writes an
owner record and would erase the evidence of a stale one, and `doctor --fix --dry-run` must
leave every file as it was. While it holds the lock, nobody else can be mid-write, so an
owner record still present then is provably stale, and `.env.tmp-*` files are leftovers.
The fixer removes exactly those two kinds of leftovers, under the lock.
"""

from __future__ import annotations

import os
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from doctor.advice import FIX, LOCK_WAIT
from doctor.context import Context
from doctor.hookspecs import hookimpl
from doctor.model import Finding, Fixer, Probe, Remediation
from doctor.situations import first_finding
from doctor.store.env_file import leftover_temp_files
from doctor.store.lock_records import LOCK_NAME, OWNER_NAME, OwnerRecord, this_host

# A temp file younger than this may belong to a write that has not taken the lock yet
# (or a process that does not use it); leave it alone.
TEMP_FILE_MIN_AGE_S = 60.0
POLL_S = 0.01

# Path fragments of folders a sync client mirrors; locks and renames there are not reliable
# (the client may upload a half-written file, or restore an older copy over a new one).
_CLOUD_FRAGMENTS = (
    ("Library/Mobile Documents", "iCloud Drive"),
    ("Library/CloudStorage", "a cloud drive (Dropbox, OneDrive, Google Drive, Box)"),
)
_CLOUD_FOLDER_NAMES = (
    ("dropbox", "Dropbox"),
    ("onedrive", "OneDrive"),
    ("google drive", "Google Drive"),
    ("googledrive", "Google Drive"),
    ("my drive", "Google Drive"),
    ("icloud drive", "iCloud Drive"),
    ("iclouddrive", "iCloud Drive"),
)


class LockBusy(Exception):
    """The kernel lock stayed taken for the whole wait."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"the lock stayed taken for {waited:.1f} s")
        self.waited = waited


@contextmanager
def hold_kernel_lock(lock_path: Path, wait: float, *, create: bool) -> Iterator[float]:
    """Hold the same kernel lock filelock takes on `lock_path`; yields the ms it took.

    With `create=False` a missing lock file means nobody holds it, and nothing is created.
    Raises LockBusy after `wait` seconds, OSError when the lock file cannot be opened.
    """
    started = time.monotonic()
    try:
        import fcntl
    except ImportError:  # Windows: filelock's own msvcrt lock is the one the store uses
        fcntl = None
    if fcntl is None:
        from filelock import FileLock, Timeout

        if not create and not lock_path.exists():
            yield (time.monotonic() - started) * 1000
            return
        lock = FileLock(str(lock_path))
        try:
            lock.acquire(timeout=wait, poll_interval=POLL_S)
        except Timeout:
            raise LockBusy(time.monotonic() - started) from None
        try:
            yield (time.monotonic() - started) * 1000
        finally:
            lock.release()
        return

    flags = os.O_RDONLY
    if create:
        flags = os.O_RDWR | os.O_CREAT
    try:
        fd = os.open(lock_path, flags, 0o600)
    except FileNotFoundError:
        if create:
            raise
        yield (time.monotonic() - started) * 1000
        return
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - started >= wait:
                    raise LockBusy(time.monotonic() - started) from None
                time.sleep(POLL_S)
        try:
            yield (time.monotonic() - started) * 1000
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def read_owner(home: Path) -> OwnerRecord | None:
    try:
        with open(home / OWNER_NAME, encoding="utf-8") as handle:
            return OwnerRecord.from_json(handle.read(4096))
    except (OSError, UnicodeDecodeError):
        return None


def cloud_folder(path: Path) -> str | None:
    """The sync service whose folder holds `path`, or None."""
    text = str(path).replace("\\", "/")
    for fragment, service in _CLOUD_FRAGMENTS:
        if f"/{fragment}/" in f"{text}/":
            return service
    for part in Path(text).parts:
        lowered = part.lower()
        for name, service in _CLOUD_FOLDER_NAMES:
            # "Dropbox (Personal)", "OneDrive - Contoso" are the business variants.
            if lowered == name or lowered.startswith((name + " (", name + " - ")):
                return service
    return None


def folder_writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def old_temp_files(folders: list[Path], now: float) -> tuple[list[dict[str, Any]], list[Path]]:
    """(every leftover temp file as facts, the ones old enough to delete)."""
    listed: list[dict[str, Any]] = []
    removable: list[Path] = []
    for folder in folders:
        for path in leftover_temp_files(folder):
            try:
                age = now - path.stat().st_mtime
            except OSError:
                continue
            listed.append({"name": path.name, "folder": str(folder), "age_s": round(age)})
            if age >= TEMP_FILE_MIN_AGE_S:
                removable.append(path)
    return listed, removable


def _env_target(ctx: Context) -> Path:
    return Path(os.path.realpath(ctx.env_path))


def _temp_folders(ctx: Context) -> list[Path]:
    # A symlinked .env is rewritten where it points (env_file.update_env_file), so its
    # temp files land in the target's folder.
    folders = [ctx.home]
    target_folder = _env_target(ctx).parent
    if target_folder != Path(os.path.realpath(ctx.home)):
        folders.append(target_folder)
    return folders


def _owner_facts(record: OwnerRecord, ctx: Context) -> dict[str, Any]:
    held = max(0, int((ctx.now() - record.started_at).total_seconds()))
    return {
        "pid": record.pid,
        "host": record.host,
        "command": record.command,
        "since_s": held,
        "alive": record.alive(),
    }


def _stale_kind(record: OwnerRecord) -> str:
    alive = record.alive()
    if alive is None:
        return "other_host"
    return "dead" if alive is False else "reused_pid"


def _describe_stale(record: OwnerRecord) -> str:
    kind = _stale_kind(record)
    who = f"process {record.pid} ({record.command})"
    if kind == "dead":
        return f"a leftover lock record from {who}, which is no longer running"
    if kind == "reused_pid":
        return f"a leftover lock record naming {who}, which is running but does not hold the lock"
    return f"a lock record from another computer ({record.host}, {who})"


class _Reading:
    """What lock-health has seen of the connector folder and its lock so far in this run."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.home = ctx.home
        self.lock_path = ctx.home / LOCK_NAME
        self.facts: dict[str, Any] = {
            "home": str(self.home),
            "lock_path": str(self.lock_path),
            "lock_wait_s": ctx.lock_wait,
        }
        self.target = _env_target(ctx)
        self.problems: list[str] = []  # fail: the store cannot work
        self.warnings: list[str] = []
        self.details: list[str] = []
        self.remediation: Remediation | None = None
        self.fixable = False
        self.service: str | None = None
        # Set by take_the_lock: the owner record seen before and under the lock, or why it failed.
        self.before: OwnerRecord | None = None
        self.stale: OwnerRecord | None = None
        self.busy: LockBusy | None = None
        self.unopenable: OSError | None = None
        self.temp_listed: list[dict[str, Any]] = []
        self.temp_old: list[Path] = []

    def failed(self, summary: str, remediation: Remediation | None) -> Finding:
        return Finding(
            "fail", summary, details=self.details, facts=self.facts, remediation=remediation, cause="lock_problem"
        )


# -- nothing to lock yet (env-file names it)


def no_connector_folder(r: _Reading) -> Finding | None:
    if r.home.is_dir():
        return None
    return Finding("skip", f"No connector folder at {r.home} (see env-file).", facts=r.facts)


def no_env_file(r: _Reading) -> Finding | None:
    if os.path.lexists(r.ctx.env_path):
        return None
    return Finding("skip", f"No {r.ctx.env_path.name} in {r.home} yet (see env-file).", facts=r.facts)


def env_not_a_regular_file(r: _Reading) -> Finding | None:
    env_path = r.ctx.env_path
    if env_path.is_symlink():
        r.facts["env_symlink_target"] = str(r.target)
    try:
        is_regular = stat.S_ISREG(os.stat(env_path).st_mode)
    except OSError:
        is_regular = False
    if is_regular:
        return None
    return Finding("skip", f"{env_path} is not a regular file (see env-file).", facts=r.facts)


# -- the folder


def folder_not_writable(r: _Reading) -> None:
    """Notes a folder SideQuest cannot write in; decided with the lock's state below."""
    unwritable = [str(f) for f in _temp_folders(r.ctx) if not folder_writable(f)]
    r.facts["writable"] = not unwritable
    if unwritable:
        r.problems.append(f"SideQuest cannot write in {', '.join(unwritable)}, so it cannot save a new token")
        r.remediation = Remediation(
            "Give your user write access to the connector folder.",
            tuple(f'chmod u+rwx "{f}"' for f in unwritable),
        )


def in_a_cloud_folder(r: _Reading) -> None:
    r.service = cloud_folder(Path(os.path.realpath(r.home))) or cloud_folder(r.target)
    if r.service:
        r.facts["cloud_folder"] = r.service
        r.warnings.append(f"the connector folder is inside {r.service}")
        r.details.append(
            f"{r.service} syncs files in the background; file locks and safe saves are not reliable "
            "there, so a token can be lost. Move the folder to a local place (for example "
            "~/.qb-distributor-mcp) and point SIDEQUEST_HOME at it."
        )


# -- the lock


def lock_file_not_a_file(r: _Reading) -> Finding | None:
    # flock would succeed on a folder, but the store opens the lock file for writing and fails.
    if not os.path.lexists(r.lock_path) or r.lock_path.is_file():
        return None
    r.problems.insert(0, f"The lock file {r.lock_path} is not a normal file, so SideQuest cannot lock its tokens")
    return r.failed(
        "; ".join(r.problems) + ".",
        Remediation(f"Move {r.lock_path} aside; SideQuest recreates the lock file by itself."),
    )


def take_the_lock(r: _Reading) -> None:
    """Holds the kernel lock briefly; under it, an owner record is a leftover (see the docstring)."""
    r.before = read_owner(r.home)
    try:
        with hold_kernel_lock(r.lock_path, r.ctx.lock_wait, create=False) as took_ms:
            r.facts["lock_acquired_ms"] = round(took_ms, 1)
            r.stale = read_owner(r.home)
            r.temp_listed, r.temp_old = old_temp_files(_temp_folders(r.ctx), time.time())
    except LockBusy as busy:
        r.busy = busy
    except OSError as exc:
        r.unopenable = exc


def lock_held(r: _Reading) -> Finding | None:
    if r.busy is None:
        return None
    ctx = r.ctx
    holder = read_owner(r.home) or r.before
    r.facts["lock_free"] = False
    r.facts["waited_ms"] = round(r.busy.waited * 1000)
    if holder is None:
        who = "another program that left no record of itself"
        commands: tuple[str, ...] = ()
    else:
        r.facts["holder"] = _owner_facts(holder, ctx)
        who = holder.describe(ctx.now())
        alive = holder.alive()
        if alive is False:
            who = f"a program whose record names {who}, but that process has ended"
        commands = (f"kill {holder.pid}",) if alive and holder.host == this_host() else ()
    r.problems.insert(0, f"The token lock is held by {who}; waited {r.busy.waited:.1f} s")
    return r.failed(
        "; ".join(r.problems) + ".",
        Remediation(
            f"{LOCK_WAIT}. If it stays stuck, quit Claude Desktop completely "
            "(it runs the connector) and any `sidequest` command still running"
            + (", or end that process." if commands else "."),
            commands,
        ),
    )


def lock_file_unopenable(r: _Reading) -> Finding | None:
    exc = r.unopenable
    if exc is None:
        return None
    r.facts["lock_free"] = None
    r.problems.insert(0, f"SideQuest cannot open its lock file {r.lock_path}: {exc.strerror or type(exc).__name__}")
    return r.failed(
        "; ".join(r.problems) + ".",
        r.remediation
        or Remediation(
            f"Make {r.lock_path} a normal file your user owns, or delete it (SideQuest recreates it).",
            (f'rm -f "{r.lock_path}"',) if not r.lock_path.is_dir() else (),
        ),
    )


def leftovers(r: _Reading) -> None:
    """Notes a stale owner record and old temp files found under the lock."""
    r.facts["lock_free"] = True
    if not r.lock_path.exists():
        r.facts["lock_file"] = "not created yet"
    if r.stale is not None:
        r.facts["stale_owner"] = _owner_facts(r.stale, r.ctx)
        r.warnings.append(_describe_stale(r.stale))
        if _stale_kind(r.stale) == "other_host":
            r.details.append("The folder is shared with another computer; keep it local to this one.")
        else:
            r.fixable = True
            r.details.append("The lock itself is free; the record is only a note and is safe to delete.")
    if r.temp_listed:
        r.facts["temp_files"] = r.temp_listed
    if r.temp_old:
        r.fixable = True
        r.warnings.append(f"{len(r.temp_old)} leftover temporary file(s) from an interrupted save")
        r.details.append(".env itself is intact; the leftovers can be deleted.")


def _took(r: _Reading) -> str:
    return f"taken in {r.facts['lock_acquired_ms']:.1f} ms"


def free_but_unusable(r: _Reading) -> Finding | None:
    if not r.problems:
        return None
    return r.failed("; ".join(r.problems) + f" (the lock itself is free, {_took(r)}).", r.remediation)


def free_with_warnings(r: _Reading) -> Finding | None:
    if not r.warnings:
        return None
    remediation = r.remediation
    if r.fixable:
        remediation = Remediation("Clear the leftovers.", (FIX,), safe_to_automate=True)
    elif r.service:
        remediation = Remediation(f"Move {r.home} out of {r.service} to a local folder and set SIDEQUEST_HOME to it.")
    summary = f"The token lock is free ({_took(r)}), but: " + "; ".join(r.warnings) + "."
    return Finding("warn", summary, details=r.details, facts=r.facts, remediation=remediation)


def healthy(r: _Reading) -> Finding:
    return Finding("ok", f"The token lock is free ({_took(r)}) and the folder is writable.", facts=r.facts)


# Tried in order; the first finding is the verdict (doctor/situations.py).
SITUATIONS = (
    no_connector_folder,
    no_env_file,
    env_not_a_regular_file,
    folder_not_writable,
    in_a_cloud_folder,
    lock_file_not_a_file,
    take_the_lock,
    lock_held,
    lock_file_unopenable,
    leftovers,
    free_but_unusable,
    free_with_warnings,
    healthy,
)


def check(ctx: Context) -> Finding:
    return first_finding(SITUATIONS, _Reading(ctx))


def _planned_cleanup(ctx: Context) -> tuple[OwnerRecord | None, list[Path]]:
    """What the fixer would remove right now: a stale local record, old temp files."""
    record = read_owner(ctx.home)
    if record is not None and _stale_kind(record) == "other_host":
        record = None
    if record is not None:
        try:
            # A record is stale only if the lock is free; peek without waiting.
            with hold_kernel_lock(ctx.home / LOCK_NAME, 0.0, create=False):
                pass
        except (LockBusy, OSError):
            record = None
    _, temp_old = old_temp_files(_temp_folders(ctx), time.time())
    return record, temp_old


def describe_fix(ctx: Context) -> str | None:
    if not ctx.home.is_dir():
        return None
    record, temp_old = _planned_cleanup(ctx)
    parts = []
    if record is not None:
        parts.append(f"delete {_describe_stale(record)}")
    if temp_old:
        parts.append(f"delete {len(temp_old)} leftover temporary file(s) ({', '.join(p.name for p in temp_old)})")
    return "; ".join(parts) or None


def apply_fix(ctx: Context) -> str:
    done = []
    # Under the lock: no writer can be between writing a temp file and renaming it, and a
    # record read now cannot belong to a live holder.
    with hold_kernel_lock(ctx.home / LOCK_NAME, ctx.lock_wait, create=True):
        record = read_owner(ctx.home)
        if record is not None and _stale_kind(record) != "other_host":
            os.unlink(ctx.home / OWNER_NAME)
            done.append(f"deleted the leftover lock record of process {record.pid}")
        _, temp_old = old_temp_files(_temp_folders(ctx), time.time())
        for path in temp_old:
            os.unlink(path)
        if temp_old:
            done.append(f"deleted {len(temp_old)} leftover temporary file(s)")
    return "; ".join(done) or "nothing was left to clean up"


PROBE = Probe(
    id="lock-health",
    title="Token lock and connector folder",
    category="storage",
    run=check,
    side_effects="none",
    timeout=6.0,
    fixer=Fixer(describe=describe_fix, apply=apply_fix),
)


@hookimpl
def sidequest_probes():
    return [PROBE]
