"""The in-process scheduler of ``pubdata serve``: `run_tick` every ``tick_interval_seconds``.

A daemon thread, so a server without cron still escalates overdue steps and expires grants. It
waits one interval before the first run (start-up stays quick, and an app opened briefly — a test,
a health check — does no work), logs a failed run and carries on, and stops as soon as the app
shuts down. The tasks are idempotent, so a cron ``pubdata tick`` beside it does no harm.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pubdata.workflow.tick import run_tick
from pubdata.workspace import Workspace

log = logging.getLogger(__name__)


class TickScheduler:
    """Runs `tick` every `interval` seconds on a daemon thread until `stop`."""

    def __init__(self, tick: Callable[[], object], interval: float) -> None:
        self._tick = tick
        self._interval = interval
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="pubdata-tick", daemon=True)
        self.runs = 0

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                done = self._tick()
            except Exception:  # a failing task must not stop the next runs
                log.exception("periodic tasks failed; trying again in %s s", self._interval)
            else:
                log.info("periodic tasks: %s", done)
            self.runs += 1

    def start(self) -> TickScheduler:
        self.thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout)


def for_workspace(workspace: Workspace) -> TickScheduler | None:
    """The scheduler of a workspace's settings, or None when ``tick_interval_seconds`` is 0."""
    interval = workspace.settings.default.tick_interval_seconds
    if interval <= 0:
        return None
    return TickScheduler(lambda: run_tick(workspace), float(interval))


def start_scheduler(workspace: Workspace) -> TickScheduler | None:
    """Start the workspace's scheduler (the server's lifespan keeps it on ``app.state.tick``)."""
    scheduler = for_workspace(workspace)
    return scheduler.start() if scheduler is not None else None


def stop_scheduler(scheduler: TickScheduler | None) -> None:
    if scheduler is not None:
        scheduler.stop()
