"""A small tmpfs mounted for a test (root only), and filling it: a disk that really runs out."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(mount: Path, *, size: int) -> Iterator[Path]:
    """``mount`` as a tmpfs of ``size`` bytes, unmounted afterwards. Skipped where mounting is not
    allowed (not root), except under CI, where the tests must run."""
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        if os.environ.get("CI"):
            raise RuntimeError(f"cannot mount a tmpfs (the test needs root): {mounted.stderr}")
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


@contextmanager
def filled(mount: Path, *, leave: int = 0) -> Iterator[None]:
    """The filesystem of ``mount`` filled by a filler file until ``leave`` bytes are free (0: until
    the OS says it is full); the filler is deleted afterwards, and the space returns."""
    filler = mount / f"filler-{uuid.uuid4().hex}"
    chunk = bytes(1024**2)
    with open(filler, "wb", buffering=0) as out:
        while (room := free_bytes(mount) - leave) > 0:
            try:
                out.write(chunk[: min(len(chunk), room)])
            except OSError:
                break
    try:
        yield
    finally:
        filler.unlink()
