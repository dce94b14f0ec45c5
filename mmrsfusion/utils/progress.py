"""Progress of a long loop (done / total, elapsed, ETA), readable in a
terminal and in a file."""
import sys
import time
from typing import Optional, TextIO

#: The clock of every :class:`Progress` (seconds).
clock = time.perf_counter


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f'{seconds} s'
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f'{minutes} min {seconds:02d} s'
    hours, minutes = divmod(minutes, 60)
    return f'{hours} h {minutes:02d} min'


class Progress:
    """``label done/total (pct), elapsed, ETA`` of a loop of ``total``
    steps.

    In a terminal the line is redrawn in place (at most every
    ``interval`` seconds, default 0.5); written to a file or a pipe, one
    line is appended every ``interval`` seconds (default 10), so a log
    holds at most ``run time / interval + 1`` lines of it. A loop that
    ends before its first line prints nothing at all, so short loops stay
    quiet; otherwise :meth:`close` prints the final line.

    Args:
        total (int): Steps of the loop.
        label (str): What a step is, e.g. ``'tiles'``, ``'windows'``.
        file (TextIO, optional): Defaults to the *current* ``sys.stdout``.
        interval (float, optional): Seconds between lines (see above).
    """

    def __init__(self,
                 total: int,
                 label: str,
                 file: Optional[TextIO] = None,
                 interval: Optional[float] = None):
        self.total = int(total)
        self.label = label
        self.file = sys.stdout if file is None else file
        isatty = getattr(self.file, 'isatty', None)
        self.tty = bool(isatty and isatty())
        self.interval = (0.5 if self.tty else 10.0) \
            if interval is None else float(interval)
        self.done = 0
        self.lines = 0
        self.shown = 0  # ``done`` of the last line
        self.start = self.last = clock()

    def line(self, now: float) -> str:
        """The progress at clock reading ``now``."""
        elapsed = now - self.start
        text = f'{self.label} {self.done}/{self.total}'
        if self.total:
            text += f' ({100 * self.done / self.total:.0f}%)'
        text += f', {_duration(elapsed)} elapsed'
        if 0 < self.done < self.total:
            text += ', ETA ' + _duration(
                elapsed / self.done * (self.total - self.done))
        return text

    def _write(self, now: float) -> None:
        if self.tty:
            self.file.write('\r' + self.line(now))
        else:
            self.file.write(self.line(now) + '\n')
        self.file.flush()
        self.lines += 1
        self.shown = self.done
        self.last = now

    def update(self, n: int = 1) -> None:
        """``n`` more steps done; a line if ``interval`` has passed."""
        self.done += n
        now = clock()
        if now - self.last >= self.interval:
            self._write(now)

    def close(self) -> None:
        """The final line (if any was printed before)."""
        if self.lines:
            if self.shown != self.done:
                self._write(clock())
            if self.tty:
                self.file.write('\n')
                self.file.flush()
