"""Progress of the long stages: a bar on a terminal, a plain line now and then in a log.

A stage that takes minutes at cohort scale (ingest, simulate, train, predict, the baselines,
interpret) must say how far it is and how long it has left. On a terminal that is a tqdm bar;
where standard error is a file (a Snakemake or SLURM log), a line every
``DEEPRC_PROGRESS_SECONDS`` seconds (30 unless set) and one when the stage ends, so that a log
shows the rate without a carriage return per step. A stage shorter than that prints nothing.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")

__all__ = ["Progress", "enabled", "tracked"]

#: the command line's ``--no-progress`` turns every bar of the process off
enabled = True


def _seconds_text(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    return f"{minutes // 60} h {minutes % 60} min"


class Progress:
    """How far a stage of ``total`` ``unit`` is; a context manager, closed on leaving."""

    def __init__(
        self, what: str, total: int, unit: str, *, initial: int = 0, early_stop: str = ""
    ) -> None:
        """``early_stop``: why the stage may end before ``total`` (the time left is then at
        most what is shown)."""
        self.what, self.total, self.unit = what, total, unit
        self.early_stop = early_stop
        self.done = self.initial = initial
        self.notes: dict[str, str] = {}
        self.bar = None
        self.plain = enabled and not sys.stderr.isatty()
        if enabled and not self.plain:
            desc = f"{what} (at most; {early_stop})" if early_stop else what
            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=f" {unit}")
        self.every = float(os.environ.get("DEEPRC_PROGRESS_SECONDS", 30))
        self.started = self.last = time.perf_counter()
        self.printed = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def note(self, **values: str) -> None:
        """Figures shown beside the count (a loss, a validation AUC)."""
        self.notes |= values
        if self.bar is not None:
            self.bar.set_postfix(self.notes, refresh=False)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.plain and time.perf_counter() - self.last >= self.every:
            self._line()

    def _line(self, end: bool = False) -> None:
        now = time.perf_counter()
        elapsed = now - self.started
        rate = (self.done - self.initial) / elapsed if elapsed > 0 else 0.0
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        if end:
            when = f"done in {_seconds_text(elapsed)}"
        elif rate > 0:
            when = f"{_seconds_text((self.total - self.done) / rate)} left"
            if self.early_stop:
                when = f"at most {when} ({self.early_stop})"
        else:
            when = "time left unknown"
        notes = "".join(f", {k} {v}" for k, v in self.notes.items())
        print(
            f"{self.what}: {self.done:,}/{self.total:,} {self.unit}{share}, "
            f"{rate:,.1f} {self.unit}/s, {when}{notes}",
            file=sys.stderr,
            flush=True,
        )
        self.last, self.printed = now, True

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.plain and self.printed:
            self._line(end=True)
        self.plain = False


def tracked(items: Sequence[T], what: str, unit: str) -> Iterator[T]:
    """``items`` one by one, each counted as done when the next is asked for."""
    with Progress(what, len(items), unit) as progress:
        for item in items:
            yield item
            progress.update()
