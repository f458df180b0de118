"""What a decision shares: the ask narrowed, never widened (REQ-16, REQ-17).

A decision may share fewer fields, a region inside the one asked, an earlier end and
de-identification per field. `narrowed` checks a decision against the ask once and gives the
`Terms` a grant is made with. A coordinated approval of not-shared data is not granted at once: its
terms wait for a countersignature, recorded in the approval's audit event (the log is the record of
the decision, as it is of a renewal's ask), and `terms_detail` / `terms_from_detail` carry them there
and back unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pubdata.db.models import RequestItem, aware
from pubdata.errors import InputError
from pubdata.gateway import grants
from pubdata.messages import text


@dataclass(frozen=True)
class Decision:
    """What the actor says with a step; every part is optional and checked against the step."""

    reason: str | None = None
    #: Narrowing on approval: the fields shared, a region prefix inside the asked one (and its
    #: field when the request named none), an earlier end, de-identification per field.
    fields: Sequence[str] | None = None
    region_prefix: str | None = None
    region_field: str | None = None
    valid_until: dt.datetime | None = None
    deid: Mapping[str, Any] | None = None

    def narrows(self) -> bool:
        """Whether the decision says anything beyond its reason."""
        return any(
            v is not None
            for v in (self.fields, self.region_prefix, self.region_field, self.valid_until, self.deid)
        )


@dataclass(frozen=True)
class Terms:
    """What a grant will share, checked against the ask."""

    fields: list[str]
    region_prefix: str | None
    region_field: str | None
    valid_until: dt.datetime
    deid: dict[str, dict[str, Any]]


def narrowed(item: RequestItem, decision: Decision) -> Terms:
    """The terms of `decision` on `item`, or an input error saying where it asks for more."""
    request = item.request
    asked = list(item.fields)
    shared = [f.strip() for f in decision.fields] if decision.fields else asked
    wider = sorted(set(shared) - set(asked))
    if wider:
        raise InputError(
            text(
                "the request did not ask for {fields}: a decision may narrow a request, never widen it",
                fields=", ".join(wider),
            ),
            column="fields",
        )
    prefix = (decision.region_prefix or "").strip() or item.region_prefix
    if item.region_prefix and not (prefix or "").startswith(item.region_prefix):
        raise InputError(
            text(
                "region {prefix} is not inside the region asked for ({asked}): "
                "a decision is never wider than asked",
                prefix=prefix,
                asked=item.region_prefix,
            ),
            column="region_prefix",
        )
    region_field = item.region_field or decision.region_field
    if request.valid_until is None:  # a submitted request always has its period
        raise InputError(text("a request needs its period of use before a decision"), column="valid_until")
    asked_until = aware(request.valid_until)
    until = aware(decision.valid_until) if decision.valid_until else asked_until
    if until > asked_until:
        raise InputError(
            text(
                "the period asked for ends {until:%Y-%m-%d}; a decision cannot extend it", until=asked_until
            ),
            column="valid_until",
        )
    return Terms(
        fields=shared,
        region_prefix=prefix,
        region_field=region_field if prefix else None,
        valid_until=until,
        deid=grants.normalise_deid(decision.deid, shared),
    )


def terms_detail(terms: Terms) -> dict[str, Any]:
    """The terms as the audit log keeps them (JSON)."""
    return {
        "fields": list(terms.fields),
        "region_prefix": terms.region_prefix,
        "region_field": terms.region_field,
        "valid_until": terms.valid_until.isoformat(),
        "deid": dict(terms.deid),
    }


def terms_from_detail(detail: Mapping[str, Any]) -> Terms:
    """The terms `terms_detail` recorded."""
    return Terms(
        fields=[str(f) for f in detail["fields"]],
        region_prefix=detail.get("region_prefix"),
        region_field=detail.get("region_field"),
        valid_until=aware(dt.datetime.fromisoformat(str(detail["valid_until"]))),
        deid={str(k): dict(v) for k, v in (detail.get("deid") or {}).items()},
    )
