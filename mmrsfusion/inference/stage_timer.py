"""Wall-clock seconds per stage of a pipeline, from any thread."""
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Dict


class StageTimer:
    """Sums the seconds spent in named stages (``with timer('read'):``).

    Times are exclusive: a stage entered inside another (in the same
    thread) is taken out of the outer one's total. Thread-safe: stages
    timed in a reader or writer thread add to the same totals, so with
    overlapped threads the totals can sum to more than the wall time.
    """

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self._open = threading.local()

    @contextmanager
    def __call__(self, stage: str):
        stack = self._open.__dict__.setdefault('stack', [])
        stack.append(stage)
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            stack.pop()
            with self._lock:
                self.seconds[stage] += elapsed
                if stack:
                    self.seconds[stack[-1]] -= elapsed
