"""What the policy did to one answer — versions, masks, filters, grants — for its headers and audit event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from pubdata.catalog.classes import PiiKind
from pubdata.db.models import CatalogEntry
from pubdata.gateway.access import AccessDecision
from pubdata.gateway.deid import default_deid
from pubdata.gateway.rewrite import RewriteResult

#: PII kinds whose raw values identify a data subject in the keyed index (REQ-41).
SUBJECT_KINDS = frozenset({PiiKind.ID_NUMBER, PiiKind.USCC})


@dataclass(frozen=True)
class PolicySummary:
    versions: dict[str, int]
    #: ``entry.field`` → de-identification function, for the fields the query read.
    masked: dict[str, str]
    #: Entry code → how its rows are filtered (``region=3304``, ``predicate``).
    filtered: dict[str, str]
    grants: dict[str, int | None]
    #: Lower-case names of fields served as stored whose values identify a subject.
    raw_subject_fields: frozenset[str] = field(default_factory=frozenset)

    def as_json(self) -> dict[str, Any]:
        return {
            "versions": self.versions,
            "masked": self.masked,
            "filtered": self.filtered,
            "grants": self.grants,
        }


def summarise(
    decision: AccessDecision, result: RewriteResult, entries: Mapping[str, CatalogEntry]
) -> PolicySummary:
    masked: dict[str, str] = {}
    filtered: dict[str, str] = {}
    raw_subjects: set[str] = set()
    for code in result.tables:
        policy, grant, entry = decision.policy.tables[code], decision.grants.get(code), entries[code]
        kinds = {f.name: f for f in entry.fields}
        for name, expression in policy.columns.items():
            spec = kinds[name]
            if isinstance(expression, exp.Column):
                if spec.pii_kind in SUBJECT_KINDS:
                    raw_subjects.add(name.lower())
                continue
            if name.lower() not in {c.lower() for c in result.columns.get(code, ())}:
                continue
            chosen = (grant.deid or {}).get(name) if grant is not None else None
            masked[f"{code}.{name}"] = (
                chosen["function"] if chosen else str(default_deid(spec.level, spec.pii_kind))
            )
        if policy.row_filter is not None:
            how = [f"region:{grant.region_prefix}"] if grant is not None and grant.region_prefix else []
            how += ["predicate"] if grant is not None and grant.row_predicate else []
            filtered[code] = "+".join(how) or "filter"
    grants = {
        code: (g.id if g is not None else None)
        for code, g in decision.grants.items()
        if code in result.tables
    }
    return PolicySummary(dict(result.policy_versions), masked, filtered, grants, frozenset(raw_subjects))


def header_value(pairs: Mapping[str, object]) -> str:
    """``k=v; k=v`` for a header, or ``none``."""
    return "; ".join(f"{k}={v}" for k, v in pairs.items()) or "none"


def policy_headers(summary: PolicySummary) -> dict[str, str]:
    return {
        "X-Pubdata-Policy-Versions": header_value(summary.versions),
        "X-Pubdata-Masked": header_value(summary.masked),
        "X-Pubdata-Filtered": header_value(summary.filtered),
        "X-Pubdata-Grants": ",".join(str(g) for g in summary.grants.values() if g is not None) or "none",
    }
