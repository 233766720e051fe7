"""The garbage collector while batch runs last: collected less often, restored when the last run ends.

Many conversations in flight allocate many short-lived objects; Python's default young threshold
(700) then runs frequent collections that cost a batch run measurable CPU (`bench/batch_throughput.py
--gc-threshold 0` compares: 7.6 vs 6.8 CPU ms per request at K = 128).
"""

from __future__ import annotations

import gc
import threading

GC_OLDER_THRESHOLDS = (50, 100)
"""Young collections per middle one, middle per full one, while a run lasts (`limits.gc_threshold`)."""


class CollectorThresholds:
    """Raises the garbage collector's thresholds while any run lasts; the last run to end restores them.

    The thresholds are process-wide: two runs in one process (threads, notebooks) share one setting,
    so only the first saves the previous thresholds and only the last puts them back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs = 0
        self._saved: tuple[int, int, int] | None = None

    def raise_for_run(self, threshold: int) -> bool:
        """Raise the young-generation threshold to `threshold` (0: leave the collector alone)."""
        if not threshold:
            return False
        with self._lock:
            if self._runs == 0:
                self._saved = gc.get_threshold()
            self._runs += 1
            gc.set_threshold(max(threshold, gc.get_threshold()[0]), *GC_OLDER_THRESHOLDS)
        return True

    def run_ended(self) -> None:
        """One run that raised the thresholds ended."""
        with self._lock:
            self._runs -= 1
            if self._runs == 0 and self._saved is not None:
                gc.set_threshold(*self._saved)
                self._saved = None


COLLECTOR = CollectorThresholds()
"""The one instance: the thresholds belong to the process."""
