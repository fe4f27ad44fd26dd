"""Outputs appear whole or not at all, only our own outputs are ever replaced, and one run at a
time writes a target.

A directory written by a deeprc command carries a stamp (``.deeprc-output``) that lists what the
command put there. ``--overwrite`` replaces a directory only when it has that stamp and holds
nothing else, and never when it is, or holds, one of the command's inputs. While a command
writes a target it holds an exclusive lock file beside it (``.<name>.lock``, with its pid), so a
second run on the same target fails at once instead of silently replacing the first one's work.
Temporary siblings (``.<name>.tmp-<pid>``) left by a killed run are removed by the next run.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from deeprc import __version__
from deeprc.errors import InputError

__all__ = [
    "STAMP",
    "atomic_directory",
    "atomic_file",
    "locked",
    "no_space",
    "refuse_inputs",
    "require_space",
]

STAMP = ".deeprc-output"
# Files other tools put into a directory output that do not make it someone else's.
_FOREIGN_BUT_HARMLESS = frozenset({".snakemake_timestamp"})


@contextmanager
def locked(target: Path) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``target`` exclusively; another holder is an error naming
    its pid. The lock file is removed on release; a file replaced under us is locked again."""
    target = Path(target)
    lock = target.parent / f".{target.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if not isinstance(exc, BlockingIOError):  # a file system without locks
                print(
                    f"warning: {lock.parent} does not support file locks ({exc.strerror}); "
                    f"nothing stops another run from writing {target} at the same time",
                    file=sys.stderr,
                )
                break
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise InputError(
                f"{target} is being written by another deeprc run (pid {holder}; lock file "
                f"{lock}); wait for that run to end, or choose another output"
            ) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False  # the previous holder removed it after we opened it
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def refuse_inputs(out: Path, inputs: Iterable[Path]) -> None:
    """An output that is, or holds, one of the inputs would destroy them when written."""
    target = out.resolve()
    for item in inputs:
        if _inside(Path(item).resolve(), target):
            raise InputError(
                f"--out {out} is or contains the input {item}; writing there would destroy it. "
                "Choose an output outside the inputs."
            )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale_siblings(out: Path, kind: str) -> list[Path]:
    """``.<name>.<kind>-<pid>`` siblings of ``out`` whose process is gone."""
    stale = []
    for path in out.parent.glob(f".{out.name}.{kind}-*"):
        pid = path.name.rpartition("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            stale.append(path)
    return stale


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _clean_stale(out: Path) -> None:
    """Finish what a killed run left: put back an output it had moved aside, drop its temps."""
    for old in _stale_siblings(out, "old"):
        if not out.exists():
            old.rename(out)
        else:
            _remove(old)
    for tmp in _stale_siblings(out, "tmp"):
        _remove(tmp)


def _check_ours(out: Path) -> None:
    """Refuse to replace ``out`` unless a deeprc command made it and it holds nothing else."""
    stamp = out / STAMP
    if not out.is_dir() or out.is_symlink() or not stamp.is_file():
        raise InputError(
            f"{out} exists and was not made by deeprc (no {STAMP} stamp in it); --overwrite "
            "replaces only deeprc's own outputs. Choose another --out, or remove it yourself."
        )
    try:
        made = set(json.loads(stamp.read_text())["entries"])
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{stamp} is damaged; remove {out} yourself if it may go") from None
    foreign = sorted(
        p.name for p in out.iterdir() if p.name not in made | {STAMP} | _FOREIGN_BUT_HARMLESS
    )
    if foreign:
        raise InputError(
            f"{out} holds files deeprc did not write there: {foreign[:5]}; --overwrite would "
            "delete them. Move them out, or choose another --out."
        )


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def no_space(exc: BaseException) -> bool:
    """ENOSPC, also as Arrow reports it (an OSError without errno)."""
    return isinstance(exc, OSError) and (
        exc.errno == errno.ENOSPC or "No space left on device" in str(exc)
    )


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _disk_full(out: Path, written: int) -> InputError:
    free = shutil.disk_usage(out.parent).free
    return InputError(
        f"no space left on the device of {out.parent.resolve()} while writing {out.name}: "
        f"{_mib(written)} were written when it filled ({_mib(free)} free after removing them), "
        "so it needs more than that. Free space there, or choose an --out on a larger disk."
    )


def require_space(directory: Path, needed: int, what: str) -> None:
    """Fail with a message before a write that cannot fit, not half way through it."""
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise InputError(
            f"{what} needs {_mib(needed)} more in {Path(directory).resolve()}, but only "
            f"{_mib(free)} is free there. Free space, or choose an --out on a larger disk."
        )


@contextmanager
def atomic_file(out: Path, *, inputs: Iterable[Path] = ()) -> Iterator[Path]:
    """A temporary sibling path to write; renamed over ``out`` on success, removed on failure."""
    out = Path(out)
    refuse_inputs(out, inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in _stale_siblings(out, "tmp"):
        stale.unlink(missing_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        yield tmp
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if no_space(exc):
            raise _disk_full(out, 0) from None
        raise
    tmp.replace(out)


@contextmanager
def atomic_directory(
    out: Path, *, overwrite: bool = False, inputs: Iterable[Path] = (), command: str = ""
) -> Iterator[Path]:
    """A fresh temporary sibling of ``out`` to fill; it replaces ``out`` only on success.

    Holds the lock on ``out`` throughout. An existing ``out`` is replaced only with
    ``overwrite`` and only when it is ours; it is renamed aside before the swap and removed
    after it, so a failure never damages it. On an exception the temporary directory is
    removed; running out of disk space becomes a message naming the directory.
    """
    out = Path(out)
    refuse_inputs(out, inputs)
    with locked(out):
        _clean_stale(out)
        if out.exists() or out.is_symlink():
            if not overwrite:
                raise InputError(f"{out} exists; pass --overwrite to replace it, or remove it")
            _check_ours(out)
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            yield tmp
            entries = sorted(p.name for p in tmp.iterdir())
            stamp = {"made_by": f"deeprc {command}".strip(), "deeprc_version": __version__}
            (tmp / STAMP).write_text(json.dumps(stamp | {"entries": entries}, indent=2) + "\n")
        except BaseException as exc:
            written = _size(tmp) if no_space(exc) else 0
            shutil.rmtree(tmp, ignore_errors=True)
            if no_space(exc):
                raise _disk_full(out, written) from None
            raise
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
