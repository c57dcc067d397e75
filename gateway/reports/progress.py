"""A progress bar on a terminal: "[#########.....] 45,000/100,000 rows"."""

from __future__ import annotations

from typing import TextIO

_WIDTH = 30


class ProgressBar:
    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream, self.done = total, stream, 0
        self._drawn = -1

    def advance(self, count: int) -> None:
        self.done += count
        # Redraw only when the bar moves: a terminal is slow to write to.
        if self._filled() != self._drawn:
            self._draw()

    def finish(self) -> None:
        self._draw()
        self.stream.write("\n")
        self.stream.flush()

    def _filled(self) -> int:
        # Requests made while the report runs can take it past the count.
        return min(_WIDTH, _WIDTH * self.done // self.total) if self.total else _WIDTH

    def _draw(self) -> None:
        self._drawn = filled = self._filled()
        bar = "#" * filled + "." * (_WIDTH - filled)
        self.stream.write(f"\r[{bar}] {self.done:,}/{self.total:,} rows")
        self.stream.flush()
