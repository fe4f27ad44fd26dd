"""Outputs appear whole or not at all, only our own outputs are ever replaced, and one run at a
time writes a target.

An existing output is an error unless ``--overwrite`` is given, and even then it is replaced only
when deeprc recognisably made it, by the same command, and it is not, does not hold and (for a
file) does not lie inside one of the command's inputs:

- A directory written by a deeprc command carries a stamp (``.deeprc-output``) naming the
  command (``made_by``) and listing every file and folder it wrote, at any depth (``files``,
  ``dirs``; relative paths). It is replaced only by the same command, and only when nothing
  else is found anywhere below it.
- A file output has no room for a stamp beside it, so each kind of file carries a mark in its
  own content that its writer puts there anyway (:data:`FILE_KINDS`, the one place these marks
  are defined): a model file's format mark, the keys of a metrics file, the header of a folds or
  ranking table, a generator tag in a report. A file without its kind's mark is not ours.

While a command writes a directory it holds an exclusive lock file beside it (``.<name>.lock``,
with its pid), so a second run on the same target fails at once instead of silently replacing
the first one's work. Temporary siblings (``.<name>.tmp-<pid>``) left by a killed run are
removed by the next run.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deeprc import __version__
from deeprc.errors import InputError

__all__ = [
    "CHECKPOINT_FORMAT",
    "FILE_KINDS",
    "MODEL_FORMAT",
    "REPORT_GENERATOR",
    "STAMP",
    "atomic_directory",
    "atomic_file",
    "check_file_output",
    "locked",
    "no_space",
    "refuse_inputs",
    "require_space",
]

STAMP = ".deeprc-output"
# Files other tools put at the top of a directory output that do not make it someone else's.
_FOREIGN_BUT_HARMLESS = frozenset({".snakemake_timestamp"})
# The marks our file outputs carry in their content (see FILE_KINDS)
MODEL_FORMAT = "deeprc-model"
CHECKPOINT_FORMAT = "deeprc-checkpoint"
REPORT_GENERATOR = '<meta name="generator" content="deeprc report">'


@contextmanager
def locked(target: Path, *, wait: bool = False) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``target`` exclusively; another holder is an error naming
    its pid (with ``wait``, we wait for it instead). The lock file is removed on release; a
    file replaced under us is locked again."""
    target = Path(target)
    lock = target.parent / f".{target.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
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


def _refuse_inside_inputs(out: Path, inputs: Iterable[Path]) -> None:
    """A file written into an input directory changes that input (a store, a prediction
    directory): its stamp no longer lists everything in it, or a file of it is replaced."""
    target = out.resolve()
    for item in inputs:
        if _inside(target, Path(item).resolve()):
            raise InputError(
                f"--out {out} lies inside the input {item}; writing there would change it. "
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


def _below(directory: Path) -> tuple[list[str], list[str]]:
    """Every file and every folder below ``directory`` (relative POSIX paths, sorted), symbolic
    links counted as files and not followed. A folder that cannot be read is an error: what it
    holds cannot be known to be ours."""

    def unreadable(exc: OSError) -> None:
        raise InputError(f"cannot read {exc.filename} ({exc.strerror}) to check what it holds")

    files, dirs = [], []
    for root, dirnames, filenames in os.walk(directory, onerror=unreadable):
        here = Path(root).relative_to(directory)
        for name in list(dirnames):
            if (Path(root) / name).is_symlink():  # os.walk does not enter it: a file to us
                dirnames.remove(name)
                filenames.append(name)
            else:
                dirs.append((here / name).as_posix())
        files += [(here / name).as_posix() for name in filenames]
    return sorted(files), sorted(dirs)


def _check_ours(out: Path, made_by: str) -> None:
    """Refuse to replace ``out`` unless the command ``made_by`` made it and nothing else is
    anywhere below it."""
    stamp = out / STAMP
    if not out.is_dir() or out.is_symlink() or not stamp.is_file():
        raise InputError(
            f"{out} exists and was not made by deeprc (no {STAMP} stamp in it); --overwrite "
            "replaces only deeprc's own outputs. Choose another --out, or remove it yourself."
        )
    try:
        saved = json.loads(stamp.read_text())
        owner, entries = saved["made_by"], set(saved["entries"])
        files, dirs = saved.get("files"), saved.get("dirs")
        if files is not None:
            files, dirs = set(files), set(dirs)
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{stamp} is damaged; remove {out} yourself if it may go") from None
    if owner != made_by:
        raise InputError(
            f"{out} was made by {owner}, not by {made_by}; --overwrite replaces only an output "
            "of the same command. Choose another --out, or remove it yourself."
        )
    found_files, found_dirs = _below(out)
    # a folder that is an output of ours itself (a store's cached pretrained vectors), checked
    # as one, and everything below it allowed
    for sub in [d for d in found_dirs if (out / d / STAMP).is_file()]:
        try:
            owner = json.loads((out / sub / STAMP).read_text())["made_by"]
        except (ValueError, KeyError, TypeError):
            owner = None  # _check_ours says it is damaged
        _check_ours(out / sub, owner)
        found_files = [f for f in found_files if not f.startswith(f"{sub}/")]
        found_dirs = [d for d in found_dirs if d != sub and not d.startswith(f"{sub}/")]
    if files is None:
        # an older deeprc's stamp lists top-level names only: complete only without folders
        if found_dirs:
            raise InputError(
                f"{out} was written by an older deeprc whose stamp lists only its top-level "
                "names, so it cannot tell whether its folders hold files of yours; "
                "--overwrite will not delete it. Remove it yourself, or choose another --out."
            )
        files, dirs = entries, set()
    allowed = files | dirs | {STAMP} | _FOREIGN_BUT_HARMLESS
    foreign = set(found_files + found_dirs) - allowed
    # a folder of the user's is named once, not with everything in it
    foreign = sorted(p for p in foreign if not foreign.intersection(map(str, Path(p).parents)))
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


# ----------------------------------------------------------------------------- file outputs


def _head(path: Path, size: int = 4096) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def _tsv_header(*headers: tuple[str, ...]) -> Callable[[Path], bool]:
    """A TSV whose first line is one of ``headers`` (its column names, in order)."""

    def ours(path: Path) -> bool:
        first = _head(path, 64 * 1024).partition(b"\n")[0].rstrip(b"\r")
        return tuple(first.decode(errors="replace").split("\t")) in headers

    return ours


def _json_keys(keys: frozenset[str], *, exact: bool) -> Callable[[Path], bool]:
    """A JSON object holding the ``keys`` (``exact``: those and no other)."""

    def ours(path: Path) -> bool:
        if path.stat().st_size > 256 * 2**20 or not _head(path, 64).lstrip().startswith(b"{"):
            return False
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            return False
        if not isinstance(found, dict):
            return False
        return set(found) == keys if exact else keys <= set(found)

    return ours


def _torch_format(mark: str) -> Callable[[Path], bool]:
    """A torch file (tensors and plain values only) whose ``format`` entry is ``mark``."""

    def ours(path: Path) -> bool:
        import torch  # only when a torch file is to be replaced

        try:  # mmap: the tensors are not read
            saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # noqa: BLE001 (any failure to load means: not ours)
            return False
        return isinstance(saved, dict) and saved.get("format") == mark

    return ours


def _html_generator(path: Path) -> bool:
    return REPORT_GENERATOR.encode() in _head(path)


@dataclass(frozen=True)
class FileKind:
    """A kind of file output: what it is, which command writes it, the mark that says so."""

    what: str
    made_by: str
    mark: str
    ours: Callable[[Path], bool]


_RANKING = ("rank", "junction_aa", "v_call", "j_call", "score", "n_repertoires", "n_positive",
            "n_negative", "n_unlabelled")  # fmt: skip
FILE_KINDS: dict[str, FileKind] = {
    "folds": FileKind(
        "a folds table", "deeprc split", "the header fold, repertoire_id, role, store_fingerprint",
        _tsv_header(("fold", "repertoire_id", "role", "store_fingerprint")),
    ),
    "metrics": FileKind(
        "a metrics file", "deeprc evaluate", "a JSON object with deeprc_version, summary, folds",
        _json_keys(frozenset({"deeprc_version", "summary", "folds"}), exact=False),
    ),
    "model": FileKind(
        "a model file", "deeprc train or deeprc select-model", f"format mark {MODEL_FORMAT!r}",
        _torch_format(MODEL_FORMAT),
    ),
    "checkpoint": FileKind(
        "a training checkpoint", "deeprc train", f"format mark {CHECKPOINT_FORMAT!r}",
        _torch_format(CHECKPOINT_FORMAT),
    ),
    "report": FileKind("an HTML report", "deeprc report", REPORT_GENERATOR, _html_generator),
    "ranking": FileKind(
        "a clonotype ranking", "deeprc rank-sequences", f"the header {', '.join(_RANKING)}",
        _tsv_header(_RANKING, (*_RANKING, "signal")),
    ),
    "recovery": FileKind(
        "a signal recovery file", "deeprc rank-sequences",
        "a JSON object of n_clonotypes, n_signal, top, precision_at_top, jaccard",
        _json_keys(frozenset({"n_clonotypes", "n_signal", "top", "precision_at_top", "jaccard"}),
                   exact=True),
    ),
}  # fmt: skip


def check_file_output(
    out: Path, *, kind: str | None, overwrite: bool = False, inputs: Iterable[Path] = ()
) -> None:
    """Refuse, before anything is written, a file output that would destroy something: one that
    is, holds or lies inside one of the ``inputs``, a directory, or an existing file unless
    ``overwrite`` and it carries the mark of ``kind`` (:data:`FILE_KINDS`; None: no file is
    ours to replace). :func:`atomic_file` checks this itself; a command that works long before
    it writes calls it first, so that a refused output costs nothing."""
    out = Path(out)
    inputs = list(inputs)
    refuse_inputs(out, inputs)
    _refuse_inside_inputs(out, inputs)
    if out.is_dir():
        raise InputError(
            f"--out {out} is a directory; this output is one file. Give a file name (e.g. "
            f"{out / 'NAME'}), or another --out."
        )
    if not (out.exists() or out.is_symlink()):
        return
    if not overwrite:
        raise InputError(f"{out} exists; pass --overwrite to replace it, or remove it")
    found = FILE_KINDS.get(kind) if kind is not None else None
    if found is None or out.is_symlink() or not out.is_file() or not found.ours(out):
        what = f"{found.what} written by {found.made_by} ({found.mark})" if found else "ours"
        raise InputError(
            f"{out} exists and is not {what}; --overwrite replaces only deeprc's own outputs "
            "of this command. Choose another --out, or remove it yourself."
        )


@contextmanager
def atomic_file(
    out: Path, *, kind: str | None = None, overwrite: bool = False, inputs: Iterable[Path] = ()
) -> Iterator[Path]:
    """A temporary sibling path to write; renamed over ``out`` on success, removed on failure.

    An existing ``out`` is refused unless ``overwrite`` and it is a file of ``kind`` written by
    deeprc (:func:`check_file_output`), before anything is written."""
    out = Path(out)
    check_file_output(out, kind=kind, overwrite=overwrite, inputs=inputs)
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
            _check_ours(out, f"deeprc {command}".strip())
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            yield tmp
            entries = sorted(p.name for p in tmp.iterdir())
            files, dirs = _below(tmp)
            stamp = {"made_by": f"deeprc {command}".strip(), "deeprc_version": __version__}
            # entries: the top-level names, as older deeprc reads them
            stamp |= {"entries": entries, "files": files, "dirs": dirs}
            (tmp / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
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
