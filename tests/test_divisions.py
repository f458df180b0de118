"""Division codes down to villages: look-ups, parents, containment, abolished codes, lazy loading."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pubdata.divisions import divisions, is_within, villages
from pubdata.errors import NotFound


@pytest.mark.req("REQ-33", "parent", "village-units")
def test_a_village_code_climbs_to_the_province() -> None:
    table = divisions()
    village = table.get("330483101201")
    assert (village.level, village.prefix, village.name) == ("village", "330483101201", "永越村村委会")
    chain = []
    code: str | None = village.code
    while code is not None:
        parent = table.parent(code)
        code = parent.code if parent else None
        chain.append(code)
    assert chain == ["330483101000", "330483000000", "330400000000", "330000000000", None]
    assert [d.level for d in table.ancestors("330483101201")] == [
        "village",
        "township",
        "county",
        "city",
        "province",
    ]


@pytest.mark.req("REQ-33", "is-within", "abolished-codes")
def test_containment_and_abolished_districts() -> None:
    assert is_within("330483101201", "330483") and is_within("330483101201", "3304")
    assert is_within("330483101201", "330483101000") and not is_within("330483101201", "3301")
    for abolished in ("330103", "330104"):
        division = divisions().get(abolished)
        assert division.abolished and division.valid_to is not None
    assert divisions().find("330483101599") is None
    with pytest.raises(NotFound):
        divisions().get("330102001001")


def test_the_shipped_villages_are_the_release() -> None:
    table = villages()
    assert len(table) == 25_547
    kinds = [int(code[9:]) < 200 for code in table.codes()]
    assert (sum(kinds), len(kinds) - sum(kinds)) == (5_716, 19_831)
    assert all(divisions().find(v.parent_code or "") is not None for v in table.values())
    children = divisions().children("330102001000")
    assert "330102001051" in {c.code for c in children}
    assert len(divisions()) == 1 + 11 + 90 + 2 + 1_387  # villages are not iterated with the rest


def test_villages_are_read_only_when_a_village_is_asked_for() -> None:
    probe = (
        "import pubdata.divisions as d, pubdata.ingest.validators as v; "
        "d.divisions().get('330106'); d.divisions().find('330102001000'); "
        "print(d.villages.cache_info().currsize); d.divisions().find('330102001051'); "
        "print(d.villages.cache_info().currsize)"
    )
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert ran.stdout.split() == ["0", "1"]
