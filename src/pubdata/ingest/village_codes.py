"""The 25,547 village codes as a bit set the division validator's SQL looks up (REQ-33).

A bit per possible 12-digit code would be 10⁹ bits, and an IN list or a join would not keep the
batch's row order (see `validators`). So the code is taken apart: the county (6 digits) gets its
ordinal from a small list, county ordinal and township part (3 digits) give the township's
ordinal from a second list, and the township ordinal with the village part (3 digits) indexes one
bit. Two list look-ups and one `get_bit` per value; the lists and bits are about 250 KB.

A denser first try — one bit per (county, township part, village part) — needed 27 M bits, and
setting that BIT variable cost 130 ms and 85 MB of memory per ingest.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import duckdb

from pubdata.divisions import villages

BITS_VARIABLE = "pubdata_village_codes"
COUNTIES_VARIABLE = "pubdata_village_counties"
TOWNS_VARIABLE = "pubdata_village_towns"


@dataclass(frozen=True)
class VillageBits:
    county_low: int
    #: Ordinal of each county code from `county_low` on; -1 where no village is.
    counties: list[int]
    #: Slots per county in `towns` (the widest township part + 1).
    town_slots: int
    #: Township ordinal per (county ordinal × `town_slots` + township part); -1 where no village is.
    towns: list[int]
    #: Bits per township (the widest village part + 1).
    village_slots: int
    bits: bytes

    @property
    def sentinel(self) -> int:
        """An index whose bit is 0: every code outside the table lands there."""
        return len(self.bits) * 8 - 1


@cache
def village_bits() -> VillageBits:
    codes = sorted(villages().codes())
    county_codes = sorted({int(c[:6]) for c in codes})
    low = county_codes[0]
    counties = [-1] * (county_codes[-1] - low + 1)
    for ordinal, county in enumerate(county_codes):
        counties[county - low] = ordinal
    town_slots = max(int(c[6:9]) for c in codes) + 1
    towns = [-1] * (len(county_codes) * town_slots)
    numbered = 0
    for code in codes:
        slot = counties[int(code[:6]) - low] * town_slots + int(code[6:9])
        if towns[slot] < 0:
            towns[slot], numbered = numbered, numbered + 1
    village_slots = max(int(c[9:]) for c in codes) + 1
    bits = bytearray(numbered * village_slots // 8 + 2)
    for code in codes:
        town = towns[counties[int(code[:6]) - low] * town_slots + int(code[6:9])]
        index = town * village_slots + int(code[9:])
        bits[index // 8] |= 0x80 >> (index % 8)
    return VillageBits(low, counties, town_slots, towns, village_slots, bytes(bits))


def village_index_sql(number: str) -> str:
    """The bit index of a 12-digit code given as the integer expression `number`."""
    v = village_bits()
    county, town, village = f"{number} // 1000000", f"({number} // 1000) % 1000", f"{number} % 1000"
    county_ordinal = f"getvariable('{COUNTIES_VARIABLE}')[{county} - {v.county_low} + 1]"
    town_ordinal = f"getvariable('{TOWNS_VARIABLE}')[{county_ordinal} * {v.town_slots} + {town} + 1]"
    return (
        f"CASE WHEN {county} - {v.county_low} BETWEEN 0 AND {len(v.counties) - 1} "
        f"AND {town} < {v.town_slots} AND {village} < {v.village_slots} AND {county_ordinal} >= 0 "
        f"AND {town_ordinal} >= 0 THEN {town_ordinal} * {v.village_slots} + {village} ELSE {v.sentinel} END"
    )


def set_village_variables(con: duckdb.DuckDBPyConnection) -> None:
    v = village_bits()
    con.execute(f"SET VARIABLE {BITS_VARIABLE} = ?::BLOB::BIT", [v.bits])
    con.execute(f"SET VARIABLE {COUNTIES_VARIABLE} = ?::INTEGER[]", [v.counties])
    con.execute(f"SET VARIABLE {TOWNS_VARIABLE} = ?::INTEGER[]", [v.towns])
