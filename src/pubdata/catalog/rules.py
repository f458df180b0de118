"""The regulation's catalogue rules as pure checks over an `EntrySpec` whose levels are resolved.

Each check raises `RuleViolation` naming its requirement and touches no database, so the service
can run every check before it writes anything: a refused write leaves nothing behind, and the same
checks serve create, update and publish. Callers may replace the `DRAFT_RULES` / `PUBLISH_RULES`
tuples, as sqlglot lets callers replace its optimizer rules.

Example:
    >>> from pubdata.catalog.specs import FieldSpec
    >>> spec = EntrySpec("e1", "Births", "Health", [FieldSpec("id", level=4)],
    ...                  open_class=OpenClass.UNCONDITIONAL)
    >>> check_opening_by_level(spec)
    Traceback (most recent call last):
    ...
    pubdata.errors.RuleViolation: unconditional opening needs every field at L1; field id is L4 (REQ-19)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pubdata.catalog.classes import EntryState, NationalLevel, OpenClass, ShareClass
from pubdata.catalog.specs import EntrySpec
from pubdata.errors import RuleViolation
from pubdata.messages import text

Rule = Callable[[EntrySpec], None]

#: Field names become column names in Delta tables and SQL: keep them plain identifiers.
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: Entry codes become directory names under ``data/``: no separators, no dot-dot.
ENTRY_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SENSITIVE_NATIONAL = (NationalLevel.CORE, NationalLevel.IMPORTANT)


def check_not_classified(spec: EntrySpec) -> None:
    """State secrets never enter the platform."""
    if spec.classified:
        raise RuleViolation(
            text("entry {code} is flagged classified (涉密): out of scope", code=spec.code), req="REQ-1"
        )


def check_identifiers(spec: EntrySpec) -> None:
    """Codes and field names end up in paths and SQL; refuse anything that is not a plain name."""
    if not ENTRY_CODE.match(spec.code) or ".." in spec.code:
        raise RuleViolation(
            text("entry code {code!r} must be letters, digits, '.', '_' or '-'", code=spec.code)
        )
    seen: set[str] = set()
    for field_spec in spec.fields:
        name = field_spec.name
        if not FIELD_NAME.match(name) or name.startswith("__"):
            raise RuleViolation(
                text("field name {name!r} must match {pattern}", name=name, pattern=FIELD_NAME.pattern)
            )
        if name in seen:
            raise RuleViolation(text("field name {name!r} appears twice", name=name))
        seen.add(name)
        if field_spec.level is not None and not 1 <= field_spec.level <= 4:
            raise RuleViolation(
                text("field {name}: level {level} is not one of L1–L4", name=name, level=field_spec.level),
                req="REQ-31",
            )
    missing = [key for key in spec.key_fields if key not in seen]
    if missing:
        raise RuleViolation(
            text("key field(s) {keys} are not fields of {code}", keys=", ".join(missing), code=spec.code)
        )


def check_sharing_basis(spec: EntrySpec) -> None:
    """Sharing is the rule: an exception must say on what legal basis and under which conditions."""
    if spec.share_class in (ShareClass.RESTRICTED, ShareClass.NOT_SHARED):
        no_basis, no_conditions = not spec.legal_basis.strip(), not spec.share_conditions.strip()
        said = {"label": spec.share_class.label, "code": spec.code}
        if no_basis and no_conditions:
            raise RuleViolation(
                text("{label} entry {code} must state its legal basis and conditions", **said), req="REQ-14"
            )
        if no_basis:
            raise RuleViolation(text("{label} entry {code} must state its legal basis", **said), req="REQ-14")
        if no_conditions:
            raise RuleViolation(text("{label} entry {code} must state its conditions", **said), req="REQ-14")


def check_opening_by_level(spec: EntrySpec) -> None:
    """Unconditional opening only for L1 data; L4 data is never opened."""
    if spec.open_class is OpenClass.UNCONDITIONAL:
        for field_spec in spec.fields:
            if (field_spec.level or 1) > 1:
                raise RuleViolation(
                    text(
                        "unconditional opening needs every field at L1; field {name} is L{level}",
                        name=field_spec.name,
                        level=field_spec.level,
                    ),
                    req="REQ-19",
                )
    if spec.open_class not in (None, OpenClass.PROHIBITED):
        for field_spec in spec.fields:
            if field_spec.level == 4:
                raise RuleViolation(
                    text(
                        "field {name} is L4: entry {code} must be prohibited from opening",
                        name=field_spec.name,
                        code=spec.code,
                    ),
                    req="REQ-19",
                )


def _national_level(spec: EntrySpec) -> NationalLevel:
    """就高从严: the entry is as sensitive as its most sensitive field."""
    levels = [spec.national_level, *(f.national_level for f in spec.fields)]
    for level in _SENSITIVE_NATIONAL:
        if level in levels:
            return level
    return NationalLevel.GENERAL


def check_national_level(spec: EntrySpec) -> None:
    """Core and important data is never opened and never shared without approval."""
    level = _national_level(spec)
    if level not in _SENSITIVE_NATIONAL:
        return
    if spec.open_class not in (None, OpenClass.PROHIBITED):
        raise RuleViolation(
            text("{level} in {code} must be prohibited from opening", level=level.label, code=spec.code),
            req="REQ-31",
        )
    if spec.share_class is ShareClass.UNCONDITIONAL:
        raise RuleViolation(
            text(
                "{level} in {code} cannot be shared unconditionally: it needs approval",
                level=level.label,
                code=spec.code,
            ),
            req="REQ-31",
        )


def check_classified_and_graded(spec: EntrySpec) -> None:
    """Classification and grading come before publication."""
    lacking = [
        label
        for label, value in (("sharing class", spec.share_class), ("opening class", spec.open_class))
        if value is None
    ]
    lacking += [f"level of field {f.name}" for f in spec.fields if f.level is None]
    if lacking:
        raise RuleViolation(
            text(
                "entry {code} cannot be published without its {lacking}",
                code=spec.code,
                lacking=", ".join(lacking),
            ),
            req="REQ-3",
        )


def check_core_metadata(spec: EntrySpec) -> None:
    """The national catalogue needs these to list a resource at all."""
    required = {
        "name": spec.name,
        "code": spec.code,
        "provider": spec.provider,
        "abstract": spec.abstract,
        "format": spec.format,
        "category class": spec.category_class,
    }
    lacking = [label for label, value in required.items() if not value.strip()]
    if not spec.fields:
        lacking.append("data items (at least one field)")
    if spec.update_cycle is None:
        lacking.append("update cycle")
    if lacking:
        raise RuleViolation(
            text("entry {code} lacks core metadata: {lacking}", code=spec.code, lacking=", ".join(lacking)),
            req="REQ-10",
        )


@dataclass(frozen=True)
class AuthoritativeSource:
    """Where an element code's authoritative field lives today."""

    entry_code: str
    provider: str


def check_single_authoritative_source(spec: EntrySpec, existing: Mapping[str, AuthoritativeSource]) -> None:
    """一数一源: a second source of an element is welcome, but only as a verification source."""
    claimed: set[str] = set()
    for field_spec in spec.fields:
        code = field_spec.element_code
        if not field_spec.authoritative:
            continue
        if not code:
            raise RuleViolation(
                text("field {name} is authoritative but has no element code", name=field_spec.name),
                req="REQ-8",
            )
        if code in claimed:
            raise RuleViolation(
                text("entry {code} claims element {element} twice", code=spec.code, element=code), req="REQ-8"
            )
        claimed.add(code)
        other = existing.get(code)
        if other is not None and other.entry_code != spec.code:
            raise RuleViolation(
                text(
                    "element {element} already has its authoritative source in entry {entry} "
                    "({provider}); mark field {name} as a verification source",
                    element=code,
                    entry=other.entry_code,
                    provider=other.provider,
                    name=field_spec.name,
                ),
                req="REQ-8",
            )


def check_responsible_persons(provider: str, head_name: str | None, officer_name: str | None) -> None:
    """A provider publishes only once someone answers for its data and its security."""
    no_head, no_officer = not (head_name or "").strip(), not (officer_name or "").strip()
    if no_head and no_officer:
        raise RuleViolation(
            text("provider {provider} has no head and no security officer", provider=provider), req="REQ-25"
        )
    if no_head:
        raise RuleViolation(text("provider {provider} has no head", provider=provider), req="REQ-25")
    if no_officer:
        raise RuleViolation(
            text("provider {provider} has no security officer", provider=provider), req="REQ-25"
        )


#: draft → published → retired, nothing else; a retired entry is final.
TRANSITIONS: dict[EntryState, tuple[EntryState, ...]] = {
    EntryState.DRAFT: (EntryState.PUBLISHED,),
    EntryState.PUBLISHED: (EntryState.RETIRED,),
    EntryState.RETIRED: (),
}


def check_transition(code: str, current: EntryState, target: EntryState) -> None:
    if target not in TRANSITIONS[current]:
        raise RuleViolation(
            text(
                "entry {code} is {current}; it cannot become {target}",
                code=code,
                current=current.value,
                target=target.value,
            )
        )


def check_changeable(code: str, state: EntryState) -> None:
    if state is EntryState.RETIRED:
        raise RuleViolation(text("entry {code} is retired and cannot be changed", code=code))


#: Checked on every save, draft or not.
DRAFT_RULES: tuple[Rule, ...] = (
    check_not_classified,
    check_identifiers,
    check_sharing_basis,
    check_opening_by_level,
    check_national_level,
)
#: Checked additionally before an entry is (or stays) published.
PUBLISH_RULES: tuple[Rule, ...] = (check_classified_and_graded, check_core_metadata)


def apply_rules(spec: EntrySpec, rules: tuple[Rule, ...]) -> None:
    for rule in rules:
        rule(spec)
