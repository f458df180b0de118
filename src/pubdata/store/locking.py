"""One writer per entry: an exclusive ``fcntl`` lock on a file inside the table directory.

Delta's own optimistic concurrency would let two writers commit one after the other, but the
version index and the recovery of killed writes assume that nobody commits between "read the last
indexed version" and "index the new one". The kernel drops the lock when its holder dies (even by
``kill -9``), so a crashed writer never blocks the next one. The file's name starts with ``_`` so
that Delta (and vacuum) leave it alone.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "_pubdata_writer.lock"


@contextmanager
def writer_lock(table_dir: Path) -> Iterator[None]:
    """Hold the entry's writer lock for the duration of the block (waits for a running writer)."""
    table_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(table_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
