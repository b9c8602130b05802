"""Replace a file so that readers see the old bytes or the new ones, never half of each.

`.env` (the rotating token) and Claude Desktop's config are both rewritten this way: a temp
file in the same folder (so the rename stays on one file system), flushed and fsynced, given
its final mode, renamed over the target, then the folder fsynced so the rename survives a
power cut. It imports nothing heavy until it writes.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_temp(target: Path, content: bytes, mode: int, *, prefix: str, suffix: str = "") -> Path:
    """A durable temp file beside `target` holding `content` with `mode`; removed on failure."""
    import tempfile  # only when writing: readers of this module stay cheap to import

    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=suffix)
    temp = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
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
