"""Administrative divisions of Zhejiang (12-digit statistical codes).

The table ships with the package so that a machine without the reference folder can validate
identity numbers and route backflow. Abolished codes (e.g. 330103 下城区) stay in the table with a
`valid_to` date because identity numbers issued there still carry them.

Below the townships, the 25,547 villages and residents' committees (村/社区, NBS 2023) are a table
of their own, read on the first look-up of a village code (`villages`): grassroots data is keyed by
them, but most processes never ask, and the province-to-township table serves them alone.

Example:
    >>> d = divisions()
    >>> d.get("330402").name
    '南湖区'
    >>> d.parent("330402000000").name
    '嘉兴市'
    >>> is_within("330402001000", "3304")
    True
    >>> [a.code for a in d.ancestors("330483101201")][1:]
    ['330483101000', '330483000000', '330400000000', '330000000000']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from pubdata.errors import NotFound

Level = Literal["province", "city", "county", "township", "village"]

#: How many leading digits identify a division at each level.
PREFIX_LENGTH: dict[str, int] = {"province": 2, "city": 4, "county": 6, "township": 9, "village": 12}
#: Columns of both shipped tables, in order.
COLUMNS = "code,name,level,parent_code,valid_to"


@dataclass(frozen=True, slots=True)
class Division:
    code: str
    name: str
    level: Level
    parent_code: str | None
    valid_to: dt.date | None

    @property
    def prefix(self) -> str:
        """The significant leading digits: ``3304`` for 嘉兴市."""
        return self.code[: PREFIX_LENGTH[self.level]]

    @property
    def abolished(self) -> bool:
        return self.valid_to is not None


def normalise_code(code: str) -> str:
    """Pad a 2/4/6/9-digit prefix to the 12-digit statistical form."""
    code = code.strip()
    if not code.isdigit() or len(code) > 12:
        raise NotFound(f"not a division code: {code!r}")
    return code.ljust(12, "0")


def is_within(code: str, prefix: str) -> bool:
    """True when `code` lies inside the division whose significant digits are `prefix`."""
    return code.startswith(prefix.rstrip("0") if len(prefix) == 12 else prefix)


class Divisions:
    """Look-ups over the shipped division table."""

    def __init__(self, rows: list[Division]) -> None:
        self._by_code = {d.code: d for d in rows}
        self._county_codes = frozenset(d.code[:6] for d in rows if d.level in ("province", "city", "county"))

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_code.values())

    def find(self, code: str) -> Division | None:
        try:
            full = normalise_code(code)
        except NotFound:
            return None
        found = self._by_code.get(full)
        if found is None and not full.endswith("000"):
            found = villages().get(full)
        return found

    def get(self, code: str) -> Division:
        found = self.find(code)
        if found is None:
            raise NotFound(f"unknown division code {code!r}")
        return found

    def parent(self, code: str) -> Division | None:
        """The division one level up: 330483101201 (a village) → 330483101000 → 330483 → 330400 → 330000."""
        parent_code = self.get(code).parent_code
        return self._by_code[parent_code] if parent_code else None

    def ancestors(self, code: str) -> list[Division]:
        """The chain from the division itself up to the province."""
        chain = [self.get(code)]
        while chain[-1].parent_code:
            chain.append(self._by_code[chain[-1].parent_code])
        return chain

    def children(self, code: str) -> list[Division]:
        """The divisions one level down; a township's are its villages and communities."""
        full = normalise_code(code)
        below = [d for d in self._by_code.values() if d.parent_code == full]
        if self._by_code.get(full) is not None and self._by_code[full].level == "township":
            below += [v for v in villages().values() if v.parent_code == full]
        return below

    def level(self, code: str) -> Level:
        return self.get(code).level

    def is_valid_at_issue(self, county_code: str) -> bool:
        """Whether a 6-digit code may stand in an identity number (abolished codes included)."""
        return county_code in self._county_codes

    def county_codes(self, include_abolished: bool = True) -> list[str]:
        return sorted(
            d.code[:6]
            for d in self._by_code.values()
            if d.level == "county" and (include_abolished or not d.abolished)
        )


def _lines(name: str) -> list[str]:
    lines = resources.files("pubdata.data").joinpath(name).read_text("utf-8").splitlines()
    if not lines or lines[0] != COLUMNS:  # pragma: no cover - the shipped tables
        raise NotFound(f"{name} does not have the columns {COLUMNS}")
    return lines[1:]


def _division(line: str) -> Division:
    code, title, level, parent_code, valid_to = line.split(",")
    return Division(
        code,
        title,
        level,  # type: ignore[arg-type]
        parent_code or None,
        dt.date.fromisoformat(valid_to) if valid_to else None,
    )


class Villages:
    """The village-level units, kept as their CSV lines and made `Division`s when asked for.

    Validation only needs the codes; building 25,547 objects up front tripled the load time and
    the memory for look-ups that touch a handful.
    """

    def __init__(self, lines: list[str]) -> None:
        self._lines = {line[:12]: line for line in lines}

    def __len__(self) -> int:
        return len(self._lines)

    def __contains__(self, code: object) -> bool:
        return code in self._lines

    def codes(self) -> Iterator[str]:
        return iter(self._lines)

    def get(self, code: str) -> Division | None:
        line = self._lines.get(code)
        return _division(line) if line is not None else None

    def values(self) -> Iterator[Division]:
        return (_division(line) for line in self._lines.values())


@cache
def villages() -> Villages:
    """The village-level units by 12-digit code, read once, on first use."""
    return Villages(_lines("zhejiang-villages.csv"))


@cache
def divisions() -> Divisions:
    """The shipped table down to the townships, loaded once."""
    return Divisions([_division(line) for line in _lines("zhejiang-divisions.csv")])
