"""Outputs appear whole or not at all: a killed or failed run never leaves a half-written one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_directory", "atomic_file"]


@contextmanager
def atomic_file(out: Path) -> Iterator[Path]:
    """A temporary sibling path to write; renamed over ``out`` on success, removed on failure."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)


@contextmanager
def atomic_directory(out: Path) -> Iterator[Path]:
    """A fresh temporary sibling of ``out`` to fill; it replaces ``out`` only on success.

    An existing ``out`` is renamed aside before the swap and removed after it, so it is never
    damaged by a failure; on an exception the temporary directory is removed.
    """
    out = Path(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
