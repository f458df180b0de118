"""What a reader of the catalogue sees of a version's source file and quality report.

The stored report (`pubdata.ingest.quality.QualityReport`) is written for the person who loaded
the file: it names the file and its quarantine file by their full server path, and keeps masked
examples of bad values with their row numbers. The catalogue is public metadata, so:

- no answer carries a path: a file is named by its last part (`file_name`), which says which file
  was loaded without saying where the server keeps its files or whose home directory it is;
- the examples and the title rows read from the file — the file's own content, masked or not — are
  details for staff of the entry (`sees_quality_details`); everyone else gets the counts.

Example:
    >>> file_name("/home/ops/pubdata-home/inbox/参保-2026.csv")
    '参保-2026.csv'
    >>> file_name("C:\\\\data\\\\x.xlsx")
    'x.xlsx'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pubdata.db.models import CatalogEntry
from pubdata.gateway.roles import Principal, Role

#: Roles that read any entry's quality details: they oversee the platform and its data.
OVERSIGHT_ROLES = (Role.COMPETENT_DEPARTMENT, Role.PLATFORM_ADMIN, Role.AUDITOR)
_SEPARATORS = re.compile(r"[\\/]")


def file_name(path: str | None) -> str:
    """The last part of a path, whichever separator the machine that wrote it used."""
    return _SEPARATORS.split(path or "")[-1]


def sees_quality_details(principal: Principal | None, entry: CatalogEntry) -> bool:
    """Staff of the entry: people of its provider, who sent the file, and the oversight roles."""
    if principal is None:
        return False
    org = principal.organisation
    return (org is not None and org.id == entry.provider_id) or principal.has_role(*OVERSIGHT_ROLES)


def shown_report(stored: Mapping[str, Any], *, details: bool) -> dict[str, Any]:
    """The stored report without paths; without examples and title rows unless `details`."""
    report = dict(stored)
    if "file" in report:
        report["file"] = file_name(report["file"])
    if report.get("quarantine_file"):
        report["quarantine_file"] = file_name(report["quarantine_file"])
    columns: dict[str, Any] = {}
    for name, column in (report.get("columns") or {}).items():
        shown = dict(column)
        examples = shown.get("examples") or []
        shown["examples"] = [{**e, "file": file_name(e.get("file"))} for e in examples] if details else []
        columns[name] = shown
    report["columns"] = columns
    if not details and isinstance(report.get("source"), Mapping):
        report["source"] = {**report["source"], "title_rows": []}
    return report
