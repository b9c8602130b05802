"""Replace a file so that readers see the old bytes or the new ones, never half of each.

`.env` (the rotating token) and Claude Desktop's config are both rewritten this way: a temp
file in the same folder (so the rename stays on one file system), flushed and fsynced, given
its final mode, renamed over the target, then the folder fsynced so the rename survives a
power cut. It imports nothing heavy until it writes.

Files that are not ours stay as they were (issue 9 §3). A replace keeps the previous file's
owner and group: run as root (or via sudo), it would otherwise leave the user's own `.env` or
Claude config root-owned and unreadable to them. And a symlink is written through only when
its target belongs to the effective user or to the owner of the folder holding the link: a
`.env` linked to someone else's file is refused, never rewritten or chmodded.
"""

from __future__ import annotations

import os
from pathlib import Path


class ForeignTarget(PermissionError):
    """A symlink points at a file that belongs to someone else; the message says whose and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(1, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def resolve_for_write(path: Path) -> Path:
    """The file to replace for `path`: its symlink's target, when that target may be ours to change.

    Raises ForeignTarget when `path` is a symlink whose target (or, for a dangling link, the folder
    it would be created in) is owned by neither the effective user nor the owner of `path`'s folder.
    """
    path = Path(path)
    if not path.is_symlink():
        return path
    target = Path(os.path.realpath(path))
    if not hasattr(os, "geteuid"):  # pragma: no cover - Windows has no uids
        return target
    try:
        folder_owner = os.stat(path.parent).st_uid
        try:
            target_owner = os.stat(target).st_uid
        except FileNotFoundError:
            target_owner = os.stat(target.parent).st_uid
    except OSError:
        return target  # the write itself will say what is wrong
    if target_owner not in (os.geteuid(), folder_owner):
        raise ForeignTarget(
            f"{path} is a symlink to {target}, which belongs to another user (uid {target_owner}); "
            "SideQuest does not change other people's files: replace the link with a file of your own"
        )
    return target


def chmod_owned(path: Path, mode: int) -> Path:
    """chmod `path` (through a symlink only to a target that may be ours: see resolve_for_write)."""
    target = resolve_for_write(path)
    os.chmod(target, mode)
    return target


def _owner_for(target: Path) -> tuple[int, int] | None:
    """Who the replaced file belongs to now; for a new file written as root, the folder's owner."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        if os.geteuid() != 0:
            return None
        try:
            st = os.stat(target.parent)
        except OSError:
            return None
    except OSError:
        return None
    return st.st_uid, st.st_gid


def _keep_owner(descriptor: int, target: Path) -> None:
    if not hasattr(os, "fchown"):  # pragma: no cover - Windows
        return
    owner = _owner_for(target)
    if owner is None or owner == (os.geteuid(), os.getegid()):
        return
    if os.geteuid() == 0:
        os.fchown(descriptor, *owner)
        return
    try:  # a user may keep the group (if a member) but cannot give a file away
        os.fchown(descriptor, -1, owner[1])
    except OSError:
        pass


def write_temp(target: Path, content: bytes, mode: int, *, prefix: str, suffix: str = "") -> Path:
    """A durable temp file beside `target` holding `content` with `mode` and `target`'s owner; removed on failure."""
    import tempfile  # only when writing: readers of this module stay cheap to import

    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=suffix)
    temp = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            _keep_owner(handle.fileno(), target)
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        if not hasattr(os, "fchmod"):
            os.chmod(temp, mode)
    except BaseException:
        remove_quietly(temp)
        raise
    return temp


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable; a no-op where folders cannot be opened (Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def replace_atomically(target: Path, content: bytes, mode: int, *, prefix: str, suffix: str = "") -> None:
    """Replace `target` with `content` (temp file, fsync, os.replace, fsync of the folder)."""
    temp = write_temp(target, content, mode, prefix=prefix, suffix=suffix)
    try:
        os.replace(temp, target)
    except BaseException:
        remove_quietly(temp)
        raise
    fsync_folder(target.parent)
