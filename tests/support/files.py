"""File modes in tests: a usual umask, and every file and folder under a path with its mode."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def usual_umask() -> Iterator[None]:
    """umask 022, under which files are world-readable unless created otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(root: Path) -> dict[str, int]:
    """`root` and everything under it: relative path (`.` for root) → permission bits."""
    found = {".": mode(root)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = mode(path)
    return found


def not_owner_only(root: Path) -> dict[str, str]:
    """What under `root` others could read: folders not 0700, files not 0600."""
    return {name: oct(bits) for name, bits in modes(root).items()
            if bits != (0o700 if (root / name).is_dir() else 0o600)}
