"""Late masking: a top-N query gets its masks after ORDER BY … LIMIT, with the same answer and no
raw value, and every shape that could see a masked column is left as written."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pubdata.gateway.rewrite import RULES, rewrite
from pubdata.gateway.rewrite.mask_late import mask_late
from test_rewrite import POLICY_SETS, Databases, assert_no_leak, databases

__all__ = ["databases"]  # the shared module-scoped fixture

EARLY = tuple(r for r in RULES if r is not mask_late)
POLICY = POLICY_SETS["default"]


def _both(db: Databases, sql: str) -> tuple[str, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    late = rewrite(sql, POLICY)
    early = rewrite(sql, POLICY, rules=EARLY)
    return late.sql, db.engine.sql(late.sql).fetchall(), db.engine.sql(early.sql).fetchall()


@pytest.mark.req("REQ-27", "on-sharing")
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id_number, name, income FROM persons WHERE income > 1000 ORDER BY income DESC LIMIT 2",
        "SELECT p.id_number, p.person_key, p.income FROM persons AS p ORDER BY p.income LIMIT 3 OFFSET 1",
        "SELECT ID_NUMBER AS ID_NUMBER, income FROM Persons ORDER BY income DESC, division_code LIMIT 10",
        "SELECT mobile, name FROM persons WHERE division_code IN ('330102001', '1') ORDER BY income LIMIT 5",
    ],
)
def test_a_top_n_is_masked_after_the_limit_with_the_same_answer(databases: Databases, sql: str) -> None:
    enforced, late, early = _both(databases, sql)
    assert "__late" in enforced
    assert late == early
    assert_no_leak(late)
    assert rewrite(sql, POLICY).columns == rewrite(sql, POLICY, rules=EARLY).columns


@pytest.mark.req("REQ-27", "on-sharing")
@pytest.mark.parametrize(
    "sql",
    [
        # a masked column used anywhere but as a bare SELECT item sees the masked value: not changed
        "SELECT id_number FROM persons ORDER BY id_number LIMIT 3",
        "SELECT id_number FROM persons WHERE id_number LIKE '3301%' ORDER BY income LIMIT 3",
        "SELECT id_number, income FROM persons ORDER BY 1 LIMIT 3",
        "SELECT upper(name) AS name, income FROM persons ORDER BY income LIMIT 3",
        "SELECT name || '' AS n, income FROM persons ORDER BY income LIMIT 3",
        # names that DuckDB could resolve to a SELECT item, or to something other than a column
        "SELECT income AS id_number, name FROM persons ORDER BY id_number LIMIT 3",
        "SELECT name AS income FROM persons ORDER BY income LIMIT 3",
        "SELECT name AS x FROM persons WHERE x LIKE '张%' ORDER BY income LIMIT 3",
        "SELECT name, #1 FROM persons ORDER BY income LIMIT 3",
        "SELECT * FROM persons ORDER BY income LIMIT 3",
        "SELECT persons FROM persons ORDER BY income LIMIT 3",
        "SELECT name FROM persons ORDER BY ALL LIMIT 3",
        "SELECT DISTINCT name FROM persons ORDER BY name LIMIT 3",
        "SELECT name FROM persons WHERE income > (SELECT min(income) FROM persons) ORDER BY income LIMIT 3",
        "SELECT name, COLUMNS('id.*') FROM persons ORDER BY income LIMIT 3",
        "WITH p AS (SELECT * FROM persons) SELECT name FROM p ORDER BY income LIMIT 3",
        "SELECT p.name FROM persons AS p JOIN visits AS v ON true ORDER BY p.income LIMIT 3",
        "SELECT mobile, name, mobile FROM persons ORDER BY income LIMIT 3",
        # nothing to gain without a top-N
        "SELECT name, income FROM persons WHERE income > 1000",
    ],
)
def test_every_other_shape_keeps_the_masks_in_the_policy_subquery(sql: str) -> None:
    try:
        late = rewrite(sql, POLICY)
    except Exception as refused:  # refused before the rule is fine: nothing runs
        with pytest.raises(type(refused)):
            rewrite(sql, POLICY, rules=EARLY)
        return
    assert late.sql == rewrite(sql, POLICY, rules=EARLY).sql
    assert "__late" not in late.sql and "__raw" not in late.sql


_COLUMNS = ["id_number", "name", "mobile", "division_code", "birth_year", "income", "person_key"]
_PREDICATES = [
    "income > 1000",
    "division_code LIKE '3301%'",
    "id_number = '330102********0011'",
    "name <> '张**'",
    "mobile IS NULL",
    "birth_year BETWEEN 1970 AND 1995",
    "NOT income < 2000 OR person_key IS NOT NULL",
]


@pytest.mark.req("REQ-27", "on-sharing")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shown=st.lists(st.sampled_from(_COLUMNS), min_size=1, max_size=5),
    where=st.none() | st.sampled_from(_PREDICATES),
    order=st.sampled_from(_COLUMNS),
    descending=st.booleans(),
    limit=st.integers(0, 8),
)
def test_late_or_early_masks_give_the_same_rows_and_never_a_raw_value(
    databases: Databases, shown: list[str], where: str | None, order: str, descending: bool, limit: int
) -> None:
    """Income is unique, so the top-N is the same set of rows however the engine plans it."""
    sql = (
        f"SELECT {', '.join(shown)} FROM persons {f'WHERE {where}' if where else ''} "
        f"ORDER BY {order} {'DESC' if descending else ''}, income LIMIT {limit}"
    )
    _, late, early = _both(databases, sql)
    assert late == early
    assert_no_leak(late)
