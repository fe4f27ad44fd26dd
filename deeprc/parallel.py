"""Worker processes that never outlive the run that started them.

Forked workers start in milliseconds and share the parent's read-only data. Each asks the kernel
to kill it when its parent dies (a ``kill -9`` of the parent cannot run any clean-up), ignores
Ctrl-C (the parent handles it and stops them) and takes SIGTERM's default action.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable, Sequence
from multiprocessing import get_context
from typing import TypeVar

from deeprc.progress import Progress

__all__ = ["parallel_map"]

T = TypeVar("T")
R = TypeVar("R")
_PR_SET_PDEATHSIG = 1


def _worker_start(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(1)


def parallel_map(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    processes: int,
    *,
    chunksize: int = 1,
    progress: Progress | None = None,
    sizes: Sequence[int] | None = None,
) -> list[R]:
    """``[fn(t) for t in tasks]`` in up to ``processes`` forked workers, in order, counting
    each finished task on ``progress`` as one or as its entry of ``sizes``.

    On any exception in the parent (an error, Ctrl-C, SIGTERM) the workers are terminated.
    """
    done = []

    def finished(result: R) -> None:
        if progress is not None:
            progress.update(1 if sizes is None else sizes[len(done)])
        done.append(result)

    if processes <= 1 or len(tasks) <= 1:
        for task in tasks:
            finished(fn(task))
        return done
    pool = get_context("fork").Pool(
        min(processes, len(tasks)), initializer=_worker_start, initargs=(os.getpid(),)
    )
    try:
        for result in pool.imap(fn, tasks, chunksize=chunksize):
            finished(result)
        return done
    finally:
        pool.terminate()
        pool.join()
