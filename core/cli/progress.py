"""The progress line of a long run: tqdm's bar where tqdm is installed (the train extra), else
one plain line redrawn in place; nothing at all with ``--quiet`` or when stderr is no
terminal (a log file or a pipe gets the summary only)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.done = 0.0
        self._partial: dict[int, float] = {}
        self._bar = None
        self._last_draw = 0.0
        self._width = 0
        if self.enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(
                    total=total, unit="file", file=self.stream, dynamic_ncols=True, leave=False
                )

    def partial(self, index: int, fraction: float) -> None:
        """File ``index`` (a video) is this far through."""
        self._partial[index] = min(max(fraction, 0.0), 1.0)
        self._draw()

    def advance(self, index: int) -> None:
        """File ``index`` is finished (done, skipped or failed)."""
        self._partial.pop(index, None)
        self.done += 1
        self._draw(force=True)

    def write(self, line: str) -> None:
        """A line above the bar (a failed file), never torn by it."""
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
            return
        self._clear()
        print(line, file=self.stream, flush=True)
        self._draw(force=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._clear()
        self.enabled = False

    # ------------------------------------------------------------------ drawing

    def _position(self) -> float:
        return self.done + sum(self._partial.values())

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.n = round(self._position(), 2)
            self._bar.refresh()
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.2:
            return
        self._last_draw = now
        pos = self._position()
        text = f"facemask: {pos:.0f}/{self.total} files ({100 * pos / self.total:.0f}%)"
        self._width = max(self._width, len(text))
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()

    def _clear(self) -> None:
        if self._bar is None and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
