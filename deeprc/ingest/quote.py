"""Values from input files, quoted into messages at a bounded length.

A message quotes what it found so that the user can find it, but a field may be megabytes long
(a junction, a whole file read as one line): printing all of it buries the message.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["quoted", "quoted_all", "shown_path"]

_WHOLE = 60  # values up to this length are quoted whole, longer ones by their two ends
_PATH = 200  # paths up to this length are shown as they are


def quoted(value: str) -> str:
    """``repr(value)``, or for a long value its start, its end (a path's file name) and its
    length."""
    if len(value) <= _WHOLE:
        return repr(value)
    return f"{value[:30]!r}…{value[-20:]!r} ({len(value):,} characters)"


def quoted_all(values: Iterable[str]) -> str:
    """A list of values, as ``repr`` writes it, each value quoted as :func:`quoted` does."""
    return "[" + ", ".join(map(quoted, values)) + "]"


def shown_path(path: object) -> str:
    """A path as a message shows it: whole (unquoted) up to 200 characters, as :func:`quoted`
    writes a longer one (a metadata row can name a file deep in nested directories)."""
    text = str(path)
    return text if len(text) <= _PATH else quoted(text)
