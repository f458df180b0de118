"""The 25,547 village codes as a bit set the division validator's SQL looks up (REQ-33).

A bit per possible 12-digit code would be 10⁹ bits, and an IN list or a join would not keep the
batch's row order (see `validators`). So the code is taken apart: the county (6 digits) gets its
ordinal from a small table, county ordinal and township part (3 digits) give the township's
ordinal from a second one, and the township ordinal with the village part (3 digits) indexes one
bit of about 100 KB.

What the SQL pays for per batch decided the encoding, measured on 1 M values: DuckDB copies a
variable into every batch, element by element for a list (a 45,540-entry INTEGER[] cost 1.0 s) and
as one block for a string or BIT (a 3.4 MB BIT cost 2.3 s, 100 KB 0.2 s). The two ordinal tables
are therefore ASCII strings of two characters per entry, read with `substr` and `ascii` (0.1 s).
Checking 1 M village codes takes about 0.8 s, against 0.2 s for township codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import duckdb

from pubdata.divisions import villages

BITS_VARIABLE = "pubdata_village_codes"
COUNTIES_VARIABLE = "pubdata_village_counties"
TOWNS_VARIABLE = "pubdata_village_towns"


#: Entries of the ordinal tables: the ordinal in base 90, two characters from "!" on.
_BASE, _ZERO = 90, 33


def encode(ordinals: list[int]) -> str:
    """Ordinals (0 to 8,099) as two printable characters each.

    >>> encode([0, 1, 1388])
    '!!!"0G'
    """
    return "".join(chr(_ZERO + n // _BASE) + chr(_ZERO + n % _BASE) for n in ordinals)


def _decode_sql(variable: str, slot: str) -> str:
    """The ordinal at `slot` (0-based) of an `encode`d table."""
    start = f"({slot}) * 2 + 1"
    table = f"getvariable('{variable}')"
    return (
        f"((ascii(substr({table}, {start}, 1)) - {_ZERO}) * {_BASE} "
        f"+ ascii(substr({table}, {start} + 1, 1)) - {_ZERO})"
    )


@dataclass(frozen=True)
class VillageBits:
    """Ordinal 0 means "none" at every level: county 0 has no townships and township 0 no bits
    set, so a code outside the table reads a 0 bit without a test (CASE branches are not shared,
    and each test would decode again)."""

    county_low: int
    #: Ordinal of each county code from `county_low` on.
    counties: list[int]
    #: Slots per county in `towns` (the widest township part + 1).
    town_slots: int
    #: Township ordinal per (county ordinal × `town_slots` + township part).
    towns: list[int]
    #: Bits per township (the widest village part + 1).
    village_slots: int
    bits: bytes


@cache
def village_bits() -> VillageBits:
    codes = sorted(villages().codes())
    county_codes = sorted({int(c[:6]) for c in codes})
    low = county_codes[0]
    counties = [0] * (county_codes[-1] - low + 1)
    for ordinal, county in enumerate(county_codes, start=1):
        counties[county - low] = ordinal
    town_slots = max(int(c[6:9]) for c in codes) + 1
    towns = [0] * ((len(county_codes) + 1) * town_slots)
    numbered = 0
    for code in codes:
        slot = counties[int(code[:6]) - low] * town_slots + int(code[6:9])
        if not towns[slot]:
            numbered += 1
            towns[slot] = numbered
    village_slots = max(int(c[9:]) for c in codes) + 1
    bits = bytearray((numbered + 1) * village_slots // 8 + 1)
    for code in codes:
        town = towns[counties[int(code[:6]) - low] * town_slots + int(code[6:9])]
        index = town * village_slots + int(code[9:])
        bits[index // 8] |= 0x80 >> (index % 8)
    return VillageBits(low, counties, town_slots, towns, village_slots, bytes(bits))


def village_index_sql(number: str) -> str:
    """The bit index of a 12-digit code given as the integer expression `number`."""
    v = village_bits()
    county, town, village = f"{number} // 1000000", f"({number} // 1000) % 1000", f"{number} % 1000"
    county_ordinal = _decode_sql(COUNTIES_VARIABLE, f"{county} - {v.county_low}")
    town_ordinal = _decode_sql(TOWNS_VARIABLE, f"{county_ordinal} * {v.town_slots} + {town}")
    return (
        f"CASE WHEN {county} - {v.county_low} BETWEEN 0 AND {len(v.counties) - 1} "
        f"AND {town} < {v.town_slots} AND {village} < {v.village_slots} "
        f"THEN {town_ordinal} * {v.village_slots} + {village} ELSE 0 END"
    )


def set_village_variables(con: duckdb.DuckDBPyConnection) -> None:
    v = village_bits()
    con.execute(f"SET VARIABLE {BITS_VARIABLE} = ?::BLOB::BIT", [v.bits])
    con.execute(f"SET VARIABLE {COUNTIES_VARIABLE} = ?::VARCHAR", [encode(v.counties)])
    con.execute(f"SET VARIABLE {TOWNS_VARIABLE} = ?::VARCHAR", [encode(v.towns)])
