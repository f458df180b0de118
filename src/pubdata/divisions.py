"""Administrative divisions of Zhejiang (12-digit statistical codes).

The table ships with the package so that a machine without the reference folder can validate
identity numbers and route backflow. Abolished codes (e.g. 330103 下城区) stay in the table with a
`valid_to` date because identity numbers issued there still carry them.

Example:
    >>> d = divisions()
    >>> d.get("330402").name
    '南湖区'
    >>> d.parent("330402000000").name
    '嘉兴市'
    >>> is_within("330402001000", "3304")
    True
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from pubdata.errors import NotFound

Level = Literal["province", "city", "county", "township"]

#: How many leading digits identify a division at each level.
PREFIX_LENGTH: dict[str, int] = {"province": 2, "city": 4, "county": 6, "township": 9}


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
            return self._by_code.get(normalise_code(code))
        except NotFound:
            return None

    def get(self, code: str) -> Division:
        found = self.find(code)
        if found is None:
            raise NotFound(f"unknown division code {code!r}")
        return found

    def parent(self, code: str) -> Division | None:
        parent_code = self.get(code).parent_code
        return self._by_code[parent_code] if parent_code else None

    def ancestors(self, code: str) -> list[Division]:
        """The chain from the division itself up to the province."""
        chain = [self.get(code)]
        while chain[-1].parent_code:
            chain.append(self._by_code[chain[-1].parent_code])
        return chain

    def children(self, code: str) -> list[Division]:
        full = normalise_code(code)
        return [d for d in self._by_code.values() if d.parent_code == full]

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


@cache
def divisions() -> Divisions:
    """The shipped table, loaded once."""
    text = resources.files("pubdata.data").joinpath("zhejiang-divisions.csv").read_text("utf-8")
    rows = [
        Division(
            code=r["code"],
            name=r["name"],
            level=r["level"],  # type: ignore[arg-type]
            parent_code=r["parent_code"] or None,
            valid_to=dt.date.fromisoformat(r["valid_to"]) if r["valid_to"] else None,
        )
        for r in csv.DictReader(text.splitlines())
    ]
    return Divisions(rows)
