"""Default de-identification by a field's level and PII kind (REQ-27), as a rule table.

When a grant says nothing about a field — always so for unconditional entries — the field gets the
function this table names. The table is data so that a tenant's settings can replace it; deny by
default means a sensitive (L4) field of no known kind is suppressed rather than shared as is.

Example:
    >>> default_deid(Level.L4, PiiKind.ID_NUMBER)
    'mask_id_number'
    >>> default_deid(1, "name") is None, default_deid(2, "name")
    (True, 'mask_name')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pubdata.catalog.classes import Level, PiiKind


@dataclass(frozen=True)
class DeidRule:
    """From `min_level` up, fields of `pii_kind` get `function` (None: shared as they are)."""

    pii_kind: PiiKind
    min_level: Level
    function: str | None


_L1, _L2, _L3, _L4 = Level.L1, Level.L2, Level.L3, Level.L4

#: The built-in table; for a kind and level the rule with the highest `min_level` not above it wins.
DEFAULT_RULES: tuple[DeidRule, ...] = (
    DeidRule(PiiKind.ID_NUMBER, _L1, "mask_id_number"),
    DeidRule(PiiKind.MOBILE, _L1, "mask_mobile"),
    DeidRule(PiiKind.BANK_CARD, _L1, "mask_bank_card"),
    # Names and addresses graded L1 are public ones (officials on duty, registered premises).
    DeidRule(PiiKind.NAME, _L1, None),
    DeidRule(PiiKind.NAME, _L2, "mask_name"),
    DeidRule(PiiKind.ADDRESS, _L1, None),
    DeidRule(PiiKind.ADDRESS, _L2, "mask_address"),
    # A company's credit code is public; graded L3 or above it is a sole trader's, so a person's.
    DeidRule(PiiKind.USCC, _L1, None),
    DeidRule(PiiKind.USCC, _L3, "mask_uscc"),
    DeidRule(PiiKind.BIRTH_DATE, _L1, None),
    DeidRule(PiiKind.BIRTH_DATE, _L2, "generalise_date"),
    DeidRule(PiiKind.BIRTH_DATE, _L4, "age_bucket"),
    DeidRule(PiiKind.MEDICAL, _L1, "suppress"),
    DeidRule(PiiKind.BIOMETRIC, _L1, "suppress"),
    DeidRule(PiiKind.PRECISE_LOCATION, _L1, "suppress"),
    DeidRule(PiiKind.NONE, _L1, None),
    DeidRule(PiiKind.NONE, _L4, "suppress"),
)


def default_deid(
    field_level: Level | int | str,
    pii_kind: PiiKind | str,
    rules: Iterable[DeidRule] = DEFAULT_RULES,
) -> str | None:
    """The function a field gets unless a grant says otherwise; None shares it unchanged.

    A kind that no rule mentions is suppressed: a new PII kind must not leak until someone decides.
    """
    level = Level.parse(field_level) if not isinstance(field_level, Level) else field_level
    kind = pii_kind if isinstance(pii_kind, PiiKind) else PiiKind.parse(pii_kind)
    matching = [r for r in rules if r.pii_kind == kind and r.min_level <= level]
    if not matching:
        return "suppress" if not any(r.pii_kind == kind for r in rules) else None
    return max(matching, key=lambda r: r.min_level).function
