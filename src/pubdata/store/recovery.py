"""Undoing Delta commits that never made it into the version index.

A write commits to Delta first and indexes the version in the metadata database second. A process
killed between the two leaves a Delta version nobody listed: readers never see it (they read the
last *indexed* version), but the next append would build on it and silently publish its rows.
So, under the entry's writer lock, every write first compares the Delta log with the index and,
when data-changing commits follow the last indexed version, restores that version as a new commit
tagged ``pubdata.restored_to``; the store audits the rollback.

Commits that do not change content (optimize, vacuum, property changes) are left alone, and a
``RESTORE`` to the last indexed version marks everything before it as already undone, so the check
costs one short history read and restores at most once per crash.
"""

from __future__ import annotations

from typing import Any

from deltalake import CommitProperties, DeltaTable

#: delta-rs operation names of commits that leave a table's rows as they were.
CONTENT_PRESERVING = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES"})

RESTORED_TO = "pubdata.restored_to"


def unindexed_commits(table: DeltaTable, last_indexed: int) -> list[dict[str, Any]]:
    """Data-changing commits after `last_indexed` that no restore has undone (newest first)."""
    latest = table.version()
    if latest <= last_indexed:
        return []
    pending: list[dict[str, Any]] = []
    for commit in table.history(latest - last_indexed):  # newest first
        operation = commit.get("operation")
        target = (commit.get("operationParameters") or {}).get("version")
        if operation == "RESTORE" and str(target) == str(last_indexed):
            break
        if operation not in CONTENT_PRESERVING:
            pending.append(commit)
    return pending


def describe(commit: dict[str, Any]) -> dict[str, Any]:
    """What the audit record keeps of a rolled-back commit: who wrote it and from what."""
    return {
        "version": commit.get("version"),
        "operation": commit.get("operation"),
        "operator": commit.get("pubdata.operator"),
        "write_id": commit.get("pubdata.write_id"),
        "source_file": commit.get("pubdata.source_file"),
    }


def restore_indexed(table: DeltaTable, last_indexed: int, reason: str) -> int:
    """Commit the content of `last_indexed` as a new version; return that version."""
    table.restore(
        last_indexed,
        commit_properties=CommitProperties(
            custom_metadata={RESTORED_TO: str(last_indexed), "pubdata.reason": reason}
        ),
    )
    table.update_incremental()
    return int(table.version())
