"""K/N: part K of N jobs that share a list side by side on a cluster (``deeprc ingest --shard``,
``deeprc predict --group``), each every N-th item from the K-th, and the check that the parts
joined by ``--merge`` are the whole list.

``flag`` names the option in every message (``--shard`` or ``--group``); the parts are named
after it (shards, groups). Nothing heavy is imported: the command line reads ``K/N`` with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from deeprc.errors import InputError

__all__ = ["check", "explained", "joined", "parse", "select"]

T = TypeVar("T")
S = TypeVar("S", bound=Sequence)


def explained(flag: str) -> str:
    """What a part is written as, for messages: 'write K/N with 0 <= K < N, ...'."""
    return f"write K/N with 0 <= K < N, e.g. 0/4 ({flag.lstrip('-')}s count from 0)"


def check(part: Sequence[int], flag: str) -> tuple[int, int]:
    """``(k, n)`` with 0 <= k < n, else an :class:`InputError` naming ``flag``."""
    k, n = part
    if not 0 <= k < n:
        raise InputError(f"{flag} {k}/{n}: {explained(flag)}")
    return int(k), int(n)


def parse(text: str, flag: str) -> tuple[int, int]:
    """``'K/N'`` as ``(k, n)``, checked (:func:`check`); an :class:`InputError` naming
    ``flag`` otherwise."""
    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit()):
        raise InputError(f"{flag} {text!r}: {explained(flag)}")
    return check((int(k), int(n)), flag)


def select(items: S, part: Sequence[int], flag: str) -> S:
    """Part ``(k, n)`` of ``items`` (a list, a range, an array): every n-th item from the k-th,
    so that item ``i`` is in part ``i mod n``."""
    k, n = check(part, flag)
    return items[k::n]


def joined(parts: Iterable[tuple[Sequence[int], T]], flag: str) -> list[T]:
    """What each of parts 0..N-1 of one ``flag`` K/N run holds, in the order of K: ``parts``
    pairs each part's ``(k, n)`` with what it holds; an :class:`InputError` naming ``flag``
    and the parts given unless they are each part once, all of one N."""
    parts = [((int(k), int(n)), held) for (k, n), held in parts]
    given = [part for part, _ in parts]
    n = given[0][1] if given else 0
    if not given or sorted(given) != [(k, n) for k in range(n)]:
        shown = ", ".join(f"{k}/{n}" for k, n in given) or "none"
        raise InputError(
            f"--merge needs {flag.lstrip('-')}s 0..N-1 of one {flag} K/N run, once each; "
            f"got {shown}"
        )
    return [held for _, held in sorted(parts, key=lambda pair: pair[0])]
