"""Validators: the SQL run on batches says exactly what the scalar checks of `pubdata.identifiers` say."""

from __future__ import annotations

import datetime as dt
from functools import cache

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pubdata.divisions import divisions, villages
from pubdata.errors import PubdataError
from pubdata.identifiers import make_id_number, make_uscc
from pubdata.ingest.normalise import clean, clean_sql
from pubdata.ingest.validators import VALIDATORS, get_validator, prepare

TODAY = dt.date(2024, 6, 15)
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ISSUE_CODES = sorted({d.code[:6] for d in divisions() if d.level != "township"})


@cache
def _connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    prepare(con, TODAY)
    return con


def sql_problems(name: str, values: list[str | None]) -> list[str | None]:
    """The validator's SQL over a batch of raw strings, cleaned and normalised as the pipeline does."""
    validator = VALIDATORS[name]
    con = _connection()
    con.register("raw_values", pa.table({"v": pa.array(values, pa.string())}))
    normalised = validator.normalise_sql(f"({clean_sql('v')})")
    rows = con.sql(
        f"SELECT CASE WHEN n IS NOT NULL THEN {validator.sql('n')} END AS p "
        f"FROM (SELECT {normalised} AS n FROM raw_values)"
    ).fetchall()
    con.unregister("raw_values")
    return [row[0] for row in rows]


def python_problems(name: str, values: list[str | None]) -> list[str | None]:
    check = VALIDATORS[name].check
    return [None if value is None or clean(value) is None else check(value, TODAY) for value in values]


def assert_agree(name: str, values: list[str | None]) -> None:
    assert sql_problems(name, values) == python_problems(name, values), values


def corrupt(alphabet: str) -> st.SearchStrategy[tuple[int, str]]:
    return st.tuples(st.integers(0, 40), st.sampled_from(alphabet))


def apply(value: str, change: tuple[int, str], kind: str) -> str:
    position, char = change
    position %= len(value) + 1
    if kind == "replace":
        return value[:position] + char + value[position + 1 :]
    if kind == "insert":
        return value[:position] + char + value[position:]
    if kind == "delete":
        return value[:position] + value[position + 1 :]
    if kind == "lower":
        return value.lower()
    if kind == "fullwidth":
        return value.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    return f"  {value}\u3000"


KINDS = st.sampled_from(["replace", "insert", "delete", "lower", "fullwidth", "pad", "none"])


# --- examples ------------------------------------------------------------------------------------


def test_registry_names_and_unknown_validator() -> None:
    assert set(VALIDATORS) == {"id_number", "uscc", "mobile", "division_code", "date"}
    assert get_validator("mobile").name == "mobile"
    with pytest.raises(PubdataError, match="unknown validator 'iban'"):
        get_validator("iban")


def test_id_number_cases() -> None:
    good = make_id_number("330106", "19800101", 12)
    abolished = [make_id_number("330103", "19750612", 1), make_id_number("330104", "19620301", 8)]
    leap = make_id_number("330106", "20000229", 3)
    not_leap = make_id_number("330106", "19990229", 3)
    future = make_id_number("330106", "20250101", 3)
    before_1890 = make_id_number("330106", "18891231", 3)
    lower_x = next(
        n for n in (make_id_number("330106", "19800101", s) for s in range(200)) if n.endswith("X")
    ).lower()
    cases = {
        good: None,
        abolished[0]: None,
        abolished[1]: None,
        leap: None,
        lower_x: None,
        f" {good[:6]} {good[6:]} ": None,
        not_leap: "birth date",
        future: "birth date",
        before_1890: "birth date",
        make_id_number("999999", "19800101", 1): "division code",
        good[:17] + ("0" if good[17] != "0" else "1"): "check character",
        good[:17]: "format",
        good + "1": "format",
        "33010619800101001Y": "format",
    }
    values = list(cases)
    assert sql_problems("id_number", values) == list(cases.values())
    assert python_problems("id_number", values) == list(cases.values())


def test_uscc_cases() -> None:
    good = make_uscc("91", "330106", "MA27U0BQ")
    wrong_final = good[:17] + ("0" if good[17] != "0" else "1")
    # A body whose organisation-code check is wrong, with a final character made to fit.
    from stdnum.cn import uscc as stdnum_uscc

    org_bad_body = good[:16] + ("0" if good[16] != "0" else "1")
    org_bad = org_bad_body + stdnum_uscc.calc_check_digit(org_bad_body)
    cases = {
        good: None,
        good.lower(): None,
        wrong_final: "check character",
        org_bad: "organisation code",
        good[:17]: "format",
        good[:8] + "I" + good[9:]: "format",
        "A" + good[1:]: "check character",
    }
    values = list(cases)
    assert sql_problems("uscc", values) == list(cases.values())
    assert python_problems("uscc", values) == list(cases.values())


def test_mobile_cases() -> None:
    cases = {
        "13800138000": None,
        "+86 138-0013-8000": None,
        "0086 13800138000": None,
        "（138）00138000": "format",
        "１３８００１３８０００": None,
        "12800138000": "format",
        "1380013800": "format",
        "138001380001": "format",
    }
    values = list(cases)
    assert sql_problems("mobile", values) == list(cases.values())
    assert python_problems("mobile", values) == list(cases.values())


def test_division_code_cases() -> None:
    cases = {
        "330106": None,
        "330103": None,  # abolished 下城区 stays known
        "330104000000": None,
        "330102001": None,
        "330102001000": None,
        "330102001001": "unknown division",  # a village part that township does not have
        "330102001051": None,  # 清波门社区, a residents' committee
        "330483101201": None,  # a villagers' committee
        "330483101599": "unknown division",
        "339999001201": "unknown division",
        "330102999201": "unknown division",
        "110101001001": "unknown division",
        "339999": "unknown division",
        "110101": "unknown division",
        "3301": "format",
        "33010A": "format",
        "３３０１０６": None,
    }
    values = list(cases)
    assert sql_problems("division_code", values) == list(cases.values())
    assert python_problems("division_code", values) == list(cases.values())


def test_date_validator_cases() -> None:
    cases = {"2022年1月25日": None, "20220125": None, "2022-02-30": "format", "25/01/2022": "format"}
    values = list(cases)
    assert sql_problems("date", values) == list(cases.values())
    assert python_problems("date", values) == list(cases.values())


def test_null_markers_are_not_validated() -> None:
    assert sql_problems("id_number", ["—", "", None, "无"]) == [None] * 4


# --- properties: SQL == Python -------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([*ISSUE_CODES, "330103", "330104", "999999", "110101"]),
            st.dates(dt.date(1880, 1, 1), dt.date(2030, 12, 31)),
            st.integers(0, 999),
            KINDS,
            corrupt("0123456789Xx "),
        ),
        min_size=1,
        max_size=30,
    ),
    st.lists(st.text("0123456789Xx ０１２", max_size=20), max_size=10),
)
def test_id_number_sql_equals_python(
    items: list[tuple[str, dt.date, int, str, tuple[int, str]]], noise: list[str]
) -> None:
    values = [
        apply(make_id_number(county, born.strftime("%Y%m%d"), seq), change, kind)
        for county, born, seq, kind, change in items
    ]
    assert_agree("id_number", values + noise)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["91", "11", "52", "12", "Y1"]),
            st.sampled_from(ISSUE_CODES),
            st.text(USCC_ALPHABET, min_size=8, max_size=8),
            KINDS,
            corrupt(USCC_ALPHABET + "IOSVZabc "),
        ),
        min_size=1,
        max_size=30,
    ),
    st.lists(st.text(USCC_ALPHABET + "IO a", max_size=20), max_size=10),
)
def test_uscc_sql_equals_python(
    items: list[tuple[str, str, str, str, tuple[int, str]]], noise: list[str]
) -> None:
    values = [
        apply(make_uscc(kind_code, county, body), change, kind)
        for kind_code, county, body, kind, change in items
    ]
    assert_agree("uscc", values + noise)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", "+86", "+86 ", "0086", "0086-"]),
            st.from_regex(r"1[0-9]{10}", fullmatch=True),
            KINDS,
            corrupt("0123456789-() +"),
        ),
        min_size=1,
        max_size=30,
    ),
    st.lists(st.text("0123456789-()+ ８", max_size=16), max_size=10),
)
def test_mobile_sql_equals_python(
    items: list[tuple[str, str, str, tuple[int, str]]], noise: list[str]
) -> None:
    values = [apply(prefix + number, change, kind) for prefix, number, kind, change in items]
    assert_agree("mobile", values + noise)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([d.code for d in divisions()] + sorted(villages().codes())[::97]),
            st.sampled_from([6, 9, 12]),
            KINDS,
            corrupt("0123456789 "),
        ),
        min_size=1,
        max_size=30,
    ),
    st.lists(st.text("0123456789", min_size=5, max_size=13), max_size=10),
)
def test_division_code_sql_equals_python(
    items: list[tuple[str, int, str, tuple[int, str]]], noise: list[str]
) -> None:
    values = [apply(code[:length], change, kind) for code, length, kind, change in items]
    assert_agree("division_code", values + noise)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text("0123456789-/.年月日 :T", max_size=22), min_size=1, max_size=30))
def test_date_validator_sql_equals_python(values: list[str]) -> None:
    assert_agree("date", values)
