"""No test reads the wall clock: a suite that passes today must pass next month.

Tests take "now" from the pinned clock (the `pinned_now` / `pinned_clock` fixtures, moved by
``PUBDATA_TEST_NOW``) or from a date of their own; the demo and the app are built on that clock.
This test reads the test sources for calls that would read the wall clock instead.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).parent
#: Calls that read the wall clock (the models' `utcnow`, the clock module's `system_clock`, the stdlib's).
WALL_CLOCK = re.compile(r"\b(?:datetime\.now|datetime\.utcnow|date\.today|utcnow|system_clock)\(")
#: Files allowed to read the wall clock, each with the reason; keep this short.
ALLOWED: dict[str, str] = {}


def test_no_test_reads_the_wall_clock() -> None:
    found = []
    for path in sorted(TESTS.glob("*.py")):
        if path.name == Path(__file__).name:
            continue
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if WALL_CLOCK.search(line) and ALLOWED.get(path.name) != line.strip():
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert not found, "take now from `pinned_now`/`pinned_clock` or a fixed date:\n" + "\n".join(found)


def test_the_allowed_reads_are_still_there() -> None:
    """An exception nobody needs any more is removed from `ALLOWED`, so the list stays honest."""
    for name, line in ALLOWED.items():
        assert line in (TESTS / name).read_text("utf-8"), f"{name} no longer reads the clock: drop it"
