"""kill -9 during audit appends: the chain stays whole, nothing is lost that was committed, nothing twice.

Writer processes append numbered events (each in its own transaction, with a signed checkpoint every
few events so that checkpoint writes are in the line of fire too) and are killed at random moments.
After the kill: `audit verify` with signature checks passes, each writer's events are exactly the
numbers 0…k-1 (a committed prefix: no gap, no duplicate), and the chain takes new events and still
verifies. With two writers at once, killing one leaves the other's run complete.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w
from sqlalchemy import func, select

from pubdata import audit
from pubdata.db.models import AuditCheckpoint, AuditEvent
from pubdata.workspace import Workspace

WRITER = """
import sys
from pubdata import audit
from pubdata.workspace import Workspace

home, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
workspace = Workspace.open(home)
for n in range(count):
    with workspace.sessions() as session, session.begin():
        audit.record(session, f"writer-{tag}", "crash.append", f"{tag}:{n}", n=n)
"""


def _workspace(tmp_path: Path) -> Workspace:
    workspace = Workspace.init(tmp_path / "home")
    settings = tomllib.loads(workspace.settings_path.read_text("utf-8"))
    settings["audit_checkpoint_every"] = 7
    workspace.settings_path.write_text(tomli_w.dumps(settings), "utf-8")
    return Workspace.open(workspace.home)


def _start(workspace: Workspace, tag: str, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(workspace.home), tag, str(count)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _numbers(workspace: Workspace, tag: str) -> list[int]:
    with workspace.sessions() as s:
        rows = s.scalars(
            select(AuditEvent.detail).where(AuditEvent.actor == f"writer-{tag}").order_by(AuditEvent.id)
        )
        return [int(detail["n"]) for detail in rows]


def _count(workspace: Workspace) -> int:
    with workspace.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def _verified(workspace: Workspace) -> audit.VerificationReport:
    with workspace.sessions() as s:
        return audit.verify(s, audit.public_key_pem(workspace.home))


def _kill_after(process: subprocess.Popen[bytes], workspace: Workspace, events: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _count(workspace) < events and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_killed_writer_leaves_a_verifiable_committed_prefix(tmp_path: Path, seed: int) -> None:
    workspace = _workspace(tmp_path)
    rng = random.Random(seed)
    writer = _start(workspace, "a", 100_000)
    _kill_after(writer, workspace, rng.randint(20, 200), timeout=60)
    assert writer.returncode == -signal.SIGKILL
    numbers = _numbers(workspace, "a")
    assert numbers == list(range(len(numbers))) and numbers, "a gap or a duplicate after the kill"
    report = _verified(workspace)
    assert report.ok, report.summary()
    assert report.signatures_checked and report.checkpoints_checked >= 1
    # The chain goes on after a restart: a new writer appends and everything still verifies.
    again = _start(workspace, "b", 15)
    assert again.wait(timeout=60) == 0, again.stderr.read() if again.stderr else ""
    assert _numbers(workspace, "b") == list(range(15))
    assert _verified(workspace).ok


def test_killing_one_of_two_concurrent_writers_loses_nothing_of_the_other(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    survivor = _start(workspace, "keep", 120)
    victim = _start(workspace, "kill", 100_000)
    _kill_after(victim, workspace, 60, timeout=60)
    assert survivor.wait(timeout=120) == 0, survivor.stderr.read() if survivor.stderr else ""
    assert _numbers(workspace, "keep") == list(range(120))
    killed = _numbers(workspace, "kill")
    assert killed == list(range(len(killed)))
    assert _verified(workspace).ok
    with workspace.sessions() as s:
        newest = s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc())).first()
        assert newest is not None and newest.event_count <= _count(workspace)
