"""Owner-only files and folders: what ticketgw keeps on disk only its own user can read.

The SQLite database, the outbound Maildir and the inbound spool hold reply addresses, links
and whole mails, so they get the modes `var/secret.key` has: 0600 files in 0700 folders,
whatever the umask (which can only take bits away from a mode asked for, so each mode is also
set explicitly). Folders and files that already exist keep the mode someone gave them.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """`path` as a folder; each folder made here (the missing parents too) is 0700."""
    missing: list[Path] = []
    folder = path
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(DIR_MODE)
        except FileExistsError:
            continue  # another process made it at the same moment
        os.chmod(folder, DIR_MODE)
    return path


def create_private(path: Path) -> int:
    """A new file at `path` (it must not exist), 0600, open for writing: its descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd


def ensure_private_file(path: Path) -> None:
    """An empty 0600 file at `path` (in a private folder) unless one is there already."""
    private_dir(path.parent)
    try:
        fd = create_private(path)
    except FileExistsError:
        return
    os.close(fd)


def write_private(temp: Path, final: Path, data: bytes) -> Path:
    """`data` in a new 0600 file: written and synced at `temp`, then renamed to `final`,
    so a reader never sees a part of it."""
    fd = create_private(temp)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    temp.rename(final)
    return final
