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
    fn: Callable[[T], R], tasks: Sequence[T], processes: int, *, chunksize: int = 1
) -> list[R]:
    """``[fn(t) for t in tasks]`` in up to ``processes`` forked workers, in order.

    On any exception in the parent (an error, Ctrl-C, SIGTERM) the workers are terminated.
    """
    if processes <= 1 or len(tasks) <= 1:
        return [fn(t) for t in tasks]
    pool = get_context("fork").Pool(
        min(processes, len(tasks)), initializer=_worker_start, initargs=(os.getpid(),)
    )
    try:
        return pool.map(fn, tasks, chunksize=chunksize)
    finally:
        pool.terminate()
        pool.join()
