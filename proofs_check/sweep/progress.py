"""A progress bar for sweeps on standard error: points done, failures, elapsed time, ETA.

On a terminal the line is redrawn in place; otherwise (logs, CI) a line is printed at most
every ``interval`` seconds and at the end. The ETA is the mean wall time per point finished in
this run times the points left (cached points are not counted as work done).

>>> import io
>>> buf = io.StringIO()
>>> p = Progress(3, stream=buf, label="demo", interval=0)
>>> p.start(cached=1)
>>> p.update()
>>> p.update(failed=True)
>>> p.close()
>>> buf.getvalue().splitlines()[-1].startswith("[demo] 3/3 points (1 cached), 1 failed")
True
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "format_seconds"]


def format_seconds(s: float) -> str:
    s = round(max(0.0, s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Progress:
    def __init__(
        self,
        total: int,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        label: str = "sweep",
        interval: float = 10.0,
        width: int = 24,
    ) -> None:
        self.total, self.enabled, self.label = int(total), bool(enabled), label
        self.stream = sys.stderr if stream is None else stream
        self.interval, self.width = float(interval), int(width)
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self.done = self.failed = self.cached = 0
        self.t0 = time.perf_counter()
        self._last = -1e9

    def start(self, cached: int = 0) -> None:
        self.cached = self.done = int(cached)
        self.t0 = time.perf_counter()
        self._draw(force=True)

    def update(self, failed: bool = False) -> None:
        self.done += 1
        self.failed += bool(failed)
        self._draw(force=self.done == self.total)

    def line(self) -> str:
        elapsed = time.perf_counter() - self.t0
        ran = self.done - self.cached
        left = self.total - self.done
        eta = "--:--" if ran == 0 and left else format_seconds(elapsed / max(ran, 1) * left)
        frac = self.done / self.total if self.total else 1.0
        fill = round(frac * self.width)
        bar = "#" * fill + "." * (self.width - fill)
        cached = f" ({self.cached} cached)" if self.cached else ""
        return (
            f"[{self.label}] {self.done}/{self.total} points{cached}, {self.failed} failed |{bar}| "
            f"elapsed {format_seconds(elapsed)}, ETA {eta}"
        )

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()
        elif force or now - self._last >= self.interval:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._last = now

    def close(self) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K\n")
        elif self.done != self.total or self._last < 0:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
