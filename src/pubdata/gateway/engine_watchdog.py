"""A ceiling on the memory of the whole server process, held by interrupting the queries that run.

DuckDB's ``memory_limit`` bounds its buffer pool, not the process: a list or string built by one
function call (``repeat([1], 300000000)``) is allocated outside it, and reached 14 GB with a 1 GB
limit. The policy rewrite refuses the sizes it can see (`bound_generated_values`); this is the net
for the rest. One thread per engine reads the process's resident memory every `interval_s`; above
`ceiling_bytes` it stops every running query older than `grace_s` (their senders read
``out_of_memory``). Queries younger than the grace — the ordinary ones, done in milliseconds — keep
running: memory that an interrupted giant call has not yet returned must not fail every newcomer.

A limit on the address space (``RLIMIT_AS``) would hold harder but kills the whole server with the
first query that crosses it. The reading comes from ``/proc/self/statm``; where there is none (not
Linux) the watchdog does nothing and only the time budget and the rewrite's size bounds apply.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from pubdata.gateway.engine_stream import MEMORY, Deadline

_STATM = Path("/proc/self/statm")


def resident_bytes() -> int | None:
    """The process's resident set size, or None where the system does not tell."""
    try:
        pages = int(_STATM.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


class MemoryWatchdog:
    """Watches the process while at least one query runs; `watch`/`forget` bracket each query."""

    def __init__(self, ceiling_bytes: int, *, interval_s: float = 0.05, grace_s: float = 0.25) -> None:
        self.ceiling_bytes = ceiling_bytes
        self.interval_s = interval_s
        self.grace_s = grace_s
        #: How many queries the watchdog has stopped (for tests and the operator's curiosity).
        self.stops = 0
        self._running: set[Deadline] = set()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def running(self) -> int:
        """How many queries it watches now."""
        with self._lock:
            return len(self._running)

    @property
    def enabled(self) -> bool:
        return self.ceiling_bytes > 0 and resident_bytes() is not None

    def watch(self, deadline: Deadline) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._running.add(deadline)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="pubdata-memory", daemon=True)
                self._thread.start()
            self._wake.notify()

    def forget(self, deadline: Deadline) -> None:
        with self._lock:
            self._running.discard(deadline)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._running and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
            self.check()
            time.sleep(self.interval_s)

    def check(self, now: float | None = None) -> int:
        """Stop the queries past their grace if the process is above the ceiling; how many were."""
        rss = resident_bytes()
        if rss is None or rss <= self.ceiling_bytes:
            return 0
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [d for d in self._running if now - d.started >= self.grace_s]
        for deadline in old:
            deadline.stop(MEMORY, self.ceiling_bytes // 2**20)
        self.stops += len(old)
        return len(old)
