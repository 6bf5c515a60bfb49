"""Progress of long work: a tqdm bar on a terminal; in a log file or a pipe, a plain line now and then.

tqdm redraws its bar with carriage returns, which fill a log with one long line; off a terminal
:func:`progress` prints nothing for short work and, for work that runs longer than
``LOG_INTERVAL`` seconds, one line per interval and a last line when it ends.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator

LOG_INTERVAL = 60.0  # seconds between lines in a log


class LogLines:
    """The part of tqdm's interface the package uses (iteration, ``update``, ``close``, ``with``), as log lines."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", interval: float = LOG_INTERVAL, stream=None):
        self.iterable = iterable
        self.total = total if total is not None or iterable is None or not hasattr(iterable, "__len__") \
            else len(iterable)
        self.desc, self.unit, self.interval, self.stream = desc, unit, interval, stream
        self.n, self.printed, self.closed = 0, False, False
        self.start = self.last = time.monotonic()

    def _print(self, now: float, suffix: str) -> None:
        count = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        print(f"{self.desc}: {count} {self.unit} {suffix} ({now - self.start:.0f} s)",
              file=self.stream or sys.stderr, flush=True)
        self.last, self.printed = now, True

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self._print(now, "so far")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        now = time.monotonic()
        if self.printed or now - self.start >= self.interval:
            self._print(now, "done")

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self) -> LogLines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool = True):
    """A progress bar for ``iterable`` (or for ``update(n)`` calls up to ``total``), fitting where stderr goes."""
    from tqdm.auto import tqdm

    if not enabled:
        return tqdm(iterable, total=total, disable=True)
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr)
    return LogLines(iterable, total=total, desc=desc, unit=unit)
