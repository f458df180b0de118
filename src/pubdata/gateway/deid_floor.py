"""The weakest de-identification a grant may give a field, by the field's level and PII kind (REQ-27).

The defaults (`deid_defaults`) say what a field gets when a grant is silent; an approver may choose
otherwise, but never less than this floor: an approver who may decide a request is not thereby
entitled to hand out identity numbers as stored. The floor is data (``data/deid-floors.csv``), in
the same shape as the default table: for a kind and level the row with the highest level not above
it wins, and a kind the table does not name gets the strongest floor until someone decides.

Treatments are ordered by how much of a value an answer still shows: as stored, masked (a part of
the characters), generalised (a coarse class), pseudonymised (nothing of the value, only equality
within one grant) and suppressed (nothing). A function counts only for the kinds it is meant for —
cutting an "address" out of an identity number leaves the number as it was — except those whose
output shows nothing of any value. Only a security assessment on record that names the field lifts
the floor (`raw_assessments`).

Example:
    >>> weakest_allowed(Level.L4, PiiKind.ID_NUMBER).name, weakest_allowed(2, "name").name
    ('MASK', 'RAW')
    >>> treatment_of("mask_address", PiiKind.ID_NUMBER).name, treatment_of("pseudonym", "medical").name
    ('RAW', 'PSEUDONYM')
    >>> meets_floor("generalise_date", 3, "birth_date"), meets_floor("raw", 3, "birth_date")
    (True, False)
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from importlib import resources
from typing import Any, Protocol

from pubdata.catalog.classes import Level, PiiKind
from pubdata.errors import RuleViolation
from pubdata.gateway.deid import DEID_FUNCTIONS, default_deid
from pubdata.messages import Text, text

#: The rule table shipped with the platform, in ``pubdata.data``.
FLOOR_TABLE = "deid-floors.csv"


class Treatment(IntEnum):
    """What a de-identification leaves of a value, weakest first."""

    RAW = 0
    MASK = 1
    GENERALISE = 2
    PSEUDONYM = 3
    SUPPRESS = 4

    @property
    def label(self) -> str:
        """The Chinese name people see in the portal."""
        return ("原样（不脱敏）", "遮蔽", "泛化", "假名化", "置空")[self.value]

    @property
    def said(self) -> Text:
        """The name as a sentence part, said in the reader's language."""
        return (text("as stored"), text("masked"), text("generalised"), text("pseudonymised"),
                text("suppressed"))[self.value]  # fmt: skip


#: What each registered function does to a value of a kind it is meant for.
FUNCTION_TREATMENTS: dict[str, Treatment] = {
    "mask_id_number": Treatment.MASK,
    "mask_mobile": Treatment.MASK,
    "mask_name": Treatment.MASK,
    "mask_address": Treatment.MASK,
    "mask_uscc": Treatment.MASK,
    "mask_bank_card": Treatment.MASK,
    "generalise_date": Treatment.GENERALISE,
    "age_bucket": Treatment.GENERALISE,
    "generalise_division": Treatment.GENERALISE,
    "pseudonym": Treatment.PSEUDONYM,
    "suppress": Treatment.SUPPRESS,
}
#: Functions whose output shows nothing of the value, whatever its kind.
ANY_KIND = frozenset({"pseudonym", "suppress"})


@dataclass(frozen=True)
class FloorRule:
    """From `min_level` up, fields of `pii_kind` are shared at least `weakest`."""

    pii_kind: PiiKind
    min_level: Level
    weakest: Treatment


def parse_floor_rules(lines: Iterable[str]) -> tuple[FloorRule, ...]:
    """Rows ``pii_kind,from_level,weakest`` (with a header) as rules; a bad row is an error."""
    return tuple(
        FloorRule(
            PiiKind.parse(row["pii_kind"]), Level.parse(row["from_level"]), Treatment[row["weakest"].upper()]
        )
        for row in csv.DictReader(lines)
    )


@cache
def floor_rules() -> tuple[FloorRule, ...]:
    """The shipped table, read once."""
    lines = resources.files("pubdata.data").joinpath(FLOOR_TABLE).read_text("utf-8").splitlines()
    return parse_floor_rules(lines)


def _level(level: Level | int | str) -> Level:
    return level if isinstance(level, Level) else Level.parse(level)


def _kind(kind: PiiKind | str) -> PiiKind:
    return kind if isinstance(kind, PiiKind) else PiiKind.parse(kind)


def weakest_allowed(
    level: Level | int | str, pii_kind: PiiKind | str, rules: Iterable[FloorRule] | None = None
) -> Treatment:
    """The floor of a field; a kind no rule names is suppressed (deny by default)."""
    found, kind = _level(level), _kind(pii_kind)
    matching = [r for r in (floor_rules() if rules is None else rules) if r.pii_kind == kind]
    below = [r for r in matching if r.min_level <= found]
    if not below:
        return Treatment.SUPPRESS if not matching else Treatment.RAW
    return max(below, key=lambda r: r.min_level).weakest


def treatment_of(function: str | None, pii_kind: PiiKind | str) -> Treatment:
    """What `function` (None or ``raw``: nothing) leaves of a value of `pii_kind`."""
    registered = DEID_FUNCTIONS.get(function or "")
    if registered is None or function not in FUNCTION_TREATMENTS:
        return Treatment.RAW
    if function not in ANY_KIND and _kind(pii_kind) not in registered.pii_kinds:
        return Treatment.RAW
    return FUNCTION_TREATMENTS[function]


def meets_floor(function: str | None, level: Level | int | str, pii_kind: PiiKind | str) -> bool:
    return treatment_of(function, pii_kind) >= weakest_allowed(level, pii_kind)


class FieldLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def level(self) -> int: ...
    @property
    def pii_kind(self) -> PiiKind: ...


class DeidFloorViolation(RuleViolation):
    """A grant would de-identify a field less than its level and kind allow."""

    def __init__(self, message: Text, field: str) -> None:
        super().__init__(message, "REQ-27")
        self.sentence = message
        self.field = field


def check_floor(
    fields: Iterable[FieldLike], deid: Mapping[str, Mapping[str, Any]], assessed_raw: Collection[str] = ()
) -> DeidFloorViolation | None:
    """The first granted field whose treatment (chosen, else the default) is below its floor, or None.

    `deid` is the normalised ``{field: {"function", "params"}}``; fields in `assessed_raw` are named
    raw by a security assessment on record and may be shared as stored.
    """
    for field in fields:
        if field.name in assessed_raw:
            continue
        chosen = (
            deid[field.name]["function"] if field.name in deid else default_deid(field.level, field.pii_kind)
        )
        weakest = weakest_allowed(field.level, field.pii_kind)
        treatment = treatment_of(chosen, field.pii_kind)
        if treatment >= weakest:
            continue
        said = {
            "field": field.title or field.name,
            "level": _level(field.level).label,
            "weakest": weakest.said,
        }
        if treatment is Treatment.RAW and chosen in DEID_FUNCTIONS:
            message = text(
                "the field {field} ({level}) is shared at least {weakest}; {function} is not meant for "
                "{kind} and would leave it as stored",
                function=DEID_FUNCTIONS[chosen].label,
                kind=_kind(field.pii_kind).label,
                **said,
            )
        elif treatment is Treatment.RAW:
            message = text(
                "the field {field} ({level}) is shared at least {weakest}; sharing it as stored needs a "
                "security assessment on record that names the field",
                **said,
            )
        else:
            message = text(
                "the field {field} ({level}) is shared at least {weakest}; {chosen} is weaker",
                chosen=treatment.said,
                **said,
            )
        return DeidFloorViolation(message, field.name)
    return None
