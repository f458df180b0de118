"""De-identification builders (REQ-32) and default rules (REQ-27), evaluated by DuckDB.

Every builder's documented output is checked on real DuckDB, on odd inputs as well as good ones;
the Spark SQL is parsed back, checked for regex backreferences and, transpiled back to DuckDB, must
give the same answers — the route by which a silently wrong Spark translation would show.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from pubdata.catalog.classes import Level, PiiKind
from pubdata.errors import InputError, PubdataError
from pubdata.gateway.deid import (
    DEFAULT_RULES,
    DEID_FUNCTIONS,
    DeidRule,
    build_deid,
    default_deid,
    pseudonym_variables,
)
from pubdata.gateway.deid_masks import NOT_COUNTY_WORDS
from pubdata.identifiers import make_id_number

KEY = b"grant-42 secret key material"
OTHER_KEY = b"grant-43 secret key material"
COLUMN = exp.column("v")


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    for slot, key in (("g42", KEY), ("g43", OTHER_KEY)):
        for name, value in pseudonym_variables(slot, key).items():
            connection.execute(f"SET VARIABLE {name} = $1", [value])
    yield connection
    connection.close()


def evaluate(
    con: duckdb.DuckDBPyConnection,
    expression: exp.Expression,
    values: list[Any],
    type_: pa.DataType = pa.string(),
    dialect: str = "duckdb",
) -> list[Any]:
    """The expression over column `v` holding `values`, in order, generated for `dialect` and run
    on DuckDB (Spark SQL is transpiled back first)."""
    sql = f"SELECT {expression.sql(dialect=dialect)} AS out FROM vals ORDER BY i"
    if dialect != "duckdb":
        sql = sqlglot.transpile(sql, read=dialect, write="duckdb")[0]
    # Not a cursor: session variables (the pseudonym keys) belong to one connection, not its cursors.
    con.register("vals", pa.table({"i": pa.array(range(len(values))), "v": pa.array(values, type=type_)}))
    return [row[0] for row in con.execute(sql).fetchall()]


def build(name: str, **params: Any) -> exp.Expression:
    return build_deid(name, COLUMN, **params)


def hmac_token(key: bytes, value: str, length: int = 20) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:length]


# (function, parameters, input, documented output)
EXAMPLES: list[tuple[str, dict[str, Any], Any, Any]] = [
    ("mask_id_number", {}, "33010219800101123X", "330102********123X"),
    ("mask_id_number", {}, "330102198001011234", "330102********1234"),
    ("mask_id_number", {}, "330102800101123", "***************"),  # 15-digit first-generation number
    ("mask_id_number", {}, "33010219800101123X9", "*******************"),
    ("mask_id_number", {}, "12", "**"),
    ("mask_id_number", {}, "", ""),
    ("mask_id_number", {}, None, None),
    ("mask_id_number", {}, "浙江省杭州市西湖区文三路九十号某某某", "浙江省杭州市********号某某某"),
    ("mask_mobile", {}, "13800138000", "138****8000"),
    ("mask_mobile", {}, "1380013800", "**********"),
    ("mask_mobile", {}, "+8613800138000", "**************"),
    ("mask_mobile", {}, "", ""),
    ("mask_mobile", {}, None, None),
    ("mask_name", {}, "张三", "张*"),
    ("mask_name", {}, "张三丰", "张**"),
    ("mask_name", {}, "欧阳娜娜", "欧阳**"),
    ("mask_name", {}, "欧阳修", "欧阳*"),
    ("mask_name", {}, "欧阳", "欧*"),  # two characters: a one-character surname and given name
    ("mask_name", {}, "诸葛亮", "诸葛*"),
    ("mask_name", {}, "买买提·艾力", "买*****"),
    ("mask_name", {}, "王", "*"),
    ("mask_name", {}, "John", "J***"),
    ("mask_name", {}, "", ""),
    ("mask_name", {}, None, None),
    ("mask_address", {}, "浙江省嘉兴市南湖区凤桥镇三星村12号", "浙江省嘉兴市南湖区凤桥镇"),
    ("mask_address", {}, "湖州市南浔区旧馆街道快递园区职工宿舍", "湖州市南浔区旧馆街道"),
    ("mask_address", {}, "浙江省宁波市镇海区招宝山街道城河路1号", "浙江省宁波市镇海区招宝山街道"),
    ("mask_address", {}, "浙江省嘉兴市桐乡市洲泉镇永安村", "浙江省嘉兴市桐乡市洲泉镇"),
    ("mask_address", {}, "浙江省丽水市遂昌县湖山乡湖山村5号", "浙江省丽水市遂昌县湖山乡"),
    ("mask_address", {}, "浙江省杭州市西湖区文三路90号", "浙江省杭州市西湖区"),
    ("mask_address", {}, "浙江省义乌市北门街12号", "浙江省义乌市"),
    ("mask_address", {}, "浙江省义乌市科创园区5号楼", "浙江省义乌市"),
    ("mask_address", {}, "浙江省义乌市稠城街道工业区5号", "浙江省义乌市稠城街道"),
    ("mask_address", {}, "凤桥镇三星村", "凤桥镇"),
    ("mask_address", {}, "文三路90号", "******"),
    ("mask_address", {}, "", ""),
    ("mask_address", {}, None, None),
    ("mask_uscc", {}, "91330402MA2B12345X", "91330402**********"),
    ("mask_uscc", {}, "91330402MA2B1234", "****************"),
    ("mask_uscc", {}, None, None),
    ("mask_bank_card", {}, "6222021234567891234", "622202*********1234"),
    ("mask_bank_card", {}, "6222021234567890", "622202******7890"),
    ("mask_bank_card", {}, "62220212345", "***********"),
    ("mask_bank_card", {}, "", ""),
    ("mask_bank_card", {}, None, None),
    ("generalise_date", {}, "2021-03-15", "2021-03"),
    ("generalise_date", {"granularity": "year"}, "2021-03-15", "2021"),
    ("generalise_date", {}, "2021-03-15 10:30:00", "2021-03"),
    ("generalise_date", {}, "2021-02-30", None),  # no such day: NULL, never an error quoting the value
    ("generalise_date", {}, "三月", None),
    ("generalise_date", {}, "", None),
    ("generalise_date", {}, None, None),
    ("age_bucket", {"reference": "2024-06-30"}, "2006-06-30", "18-29"),
    ("age_bucket", {"reference": "2024-06-30"}, "2006-07-01", "0-17"),  # 18 tomorrow
    ("age_bucket", {"reference": "2024-06-30"}, "1994-07-01", "18-29"),
    ("age_bucket", {"reference": "2024-06-30"}, "1994-06-30", "30-39"),
    ("age_bucket", {"reference": "2024-06-30"}, "1930-01-01", "70+"),
    ("age_bucket", {"reference": "2024-06-30"}, "2024-06-30", "0-17"),
    ("age_bucket", {"reference": "2024-06-30"}, "2024-07-01", None),  # born after the reference
    ("age_bucket", {"reference": "2024-06-30"}, "not a date", None),
    ("age_bucket", {"reference": "2024-06-30"}, None, None),
    ("age_bucket", {"reference": "2024-06-30", "bounds": [65]}, "1950-01-01", "65+"),
    ("age_bucket", {"reference": "2024-06-30", "bounds": [65]}, "1980-01-01", "0-64"),
    ("age_bucket", {"reference": "2024-06-30", "source": "id_number"}, "33010219800101123X", "40-49"),
    ("age_bucket", {"reference": "2024-06-30", "source": "id_number"}, "330102199402301234", None),
    ("age_bucket", {"reference": "2024-06-30", "source": "id_number"}, "330102800101123", None),
    ("age_bucket", {"reference": "2024-06-30", "source": "id_number"}, "", None),
    ("generalise_division", {}, "330402001001", "330402000000"),
    ("generalise_division", {"level": "city"}, "330402001001", "330400000000"),
    ("generalise_division", {"level": "township"}, "330402001001", "330402001000"),
    ("generalise_division", {"level": "city"}, "330402", "330400"),
    ("generalise_division", {}, "33", "33"),
    ("generalise_division", {}, "", ""),
    ("generalise_division", {}, None, None),
    ("suppress", {}, "33010219800101123X", None),
    ("suppress", {}, None, None),
    ("pseudonym", {"slot": "g42"}, "33010219800101123X", hmac_token(KEY, "33010219800101123X")),
    ("pseudonym", {"slot": "g42", "length": 32}, "张三", hmac_token(KEY, "张三", 32)),
    ("pseudonym", {"slot": "g43"}, "33010219800101123X", hmac_token(OTHER_KEY, "33010219800101123X")),
    ("pseudonym", {"slot": "g42"}, "", hmac_token(KEY, "")),
    ("pseudonym", {"slot": "g42"}, None, None),
]


def _example_id(example: tuple[str, dict[str, Any], Any, Any]) -> str:
    name, params, value, _ = example
    return f"{name}{params or ''}:{value!r}"


@pytest.mark.req("REQ-32", "masking", "generalisation")
@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_documented_outputs(con: duckdb.DuckDBPyConnection, dialect: str) -> None:
    """Each example through DuckDB SQL, and through Spark SQL transpiled back, gives the documented value."""
    failures = []
    for example in EXAMPLES:
        name, params, value, expected = example
        got = evaluate(con, build(name, **params), [value], dialect=dialect)[0]
        if got != expected:
            failures.append(f"{_example_id(example)} gave {got!r}, expected {expected!r}")
    assert not failures, "\n".join(failures)


def test_every_function_has_examples() -> None:
    assert {name for name, *_ in EXAMPLES} == set(DEID_FUNCTIONS)


@pytest.mark.req("REQ-32", "masking", "generalisation")
def test_numeric_and_temporal_columns(con: duckdb.DuckDBPyConnection) -> None:
    assert evaluate(con, build("mask_mobile"), [13800138000, None], pa.int64()) == ["138****8000", None]
    assert evaluate(con, build("generalise_division", level="city"), [330402001001], pa.int64()) == [
        "330400000000"
    ]
    when = [dt.datetime(2021, 3, 15, 23, 59), None]
    assert evaluate(con, build("generalise_date"), when, pa.timestamp("us")) == ["2021-03", None]
    births = [dt.date(1980, 1, 1), dt.date(2010, 5, 5)]
    assert evaluate(con, build("age_bucket", reference=dt.date(2024, 1, 1)), births, pa.date32()) == [
        "40-49",
        "0-17",
    ]


@pytest.mark.req("REQ-32", "suppression")
def test_suppress_keeps_the_column_type(con: duckdb.DuckDBPyConnection) -> None:
    sql = f"SELECT typeof({build('suppress').sql('duckdb')}) FROM vals"
    cursor = con.cursor()
    cursor.register("vals", pa.table({"v": pa.array([7], pa.int64())}))
    assert cursor.execute(sql).fetchall() == [("BIGINT",)]


@pytest.mark.parametrize("name", sorted(DEID_FUNCTIONS))
def test_spark_sql_is_portable(name: str) -> None:
    """Spark SQL parses back, and no function relies on a regex (a backreference transpiles wrong)."""
    params = {"slot": "g42"} if name == "pseudonym" else {}
    expression = build(name, **params)
    for dialect in ("duckdb", "spark"):
        sql = expression.sql(dialect=dialect)
        parsed = sqlglot.parse_one(sql, read=dialect)
        assert parsed.sql(dialect=dialect) == sql
        assert not re.search(r"REGEXP|RLIKE|\\\d|\$\d", sql, re.IGNORECASE), sql


@pytest.mark.req("REQ-32", "keyed-pseudonyms")
def test_pseudonym_key_never_appears_in_sql() -> None:
    variables = pseudonym_variables("g42", KEY)
    expression = build("pseudonym", slot="g42")
    secrets = [KEY, *variables.values()]
    for dialect in ("duckdb", "spark"):
        sql = expression.sql(dialect=dialect)
        assert "GETVARIABLE('__pk_g42_i')" in sql and "GETVARIABLE('__pk_g42_o')" in sql
        for secret in secrets:
            for form in (secret.hex(), secret.hex().upper(), secret.decode("latin-1"), repr(secret)):
                assert form not in sql
    assert set(variables) == {"__pk_g42_i", "__pk_g42_o"}
    assert all(len(v) == 64 for v in variables.values())


# -- properties ------------------------------------------------------------------------------------

counties = st.sampled_from(["330102", "330103", "330402", "330411", "330483", "330211", "331002"])
births = st.dates(dt.date(1900, 1, 1), dt.date(2024, 12, 31)).map(lambda d: d.strftime("%Y%m%d"))
id_numbers = st.builds(make_id_number, counties, births, st.integers(0, 999))


@pytest.mark.req("REQ-32", "masking")
@settings(max_examples=40, deadline=None)
@given(st.lists(id_numbers, min_size=1, max_size=40))
def test_mask_id_number_keeps_only_ends(con: duckdb.DuckDBPyConnection, numbers: list[str]) -> None:
    for raw, masked in zip(numbers, evaluate(con, build("mask_id_number"), numbers), strict=True):
        assert len(masked) == 18 and masked != raw
        assert masked[:6] == raw[:6] and masked[-4:] == raw[-4:] and masked[6:14] == "*" * 8


@pytest.mark.req("REQ-32", "masking")
@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=30)), min_size=1, max_size=40))
def test_masks_never_return_a_raw_value(con: duckdb.DuckDBPyConnection, values: list[str | None]) -> None:
    """Any text, any length: each character is kept or starred, at least one is starred, and no
    more than the documented head and tail are kept."""
    kept_at_most = {
        "mask_id_number": 10,
        "mask_mobile": 7,
        "mask_bank_card": 10,
        "mask_uscc": 8,
        "mask_name": 2,
    }
    for name, most in kept_at_most.items():
        for raw, masked in zip(values, evaluate(con, build(name), values), strict=True):
            if raw is None:
                assert masked is None
                continue
            assert len(masked) == len(raw), (name, raw, masked)
            assert all(m in ("*", r) for m, r in zip(masked, raw, strict=True)), (name, raw, masked)
            assert not raw or "*" in masked
            assert sum(m != "*" for m in masked) <= most


@pytest.mark.req("REQ-32", "masking")
@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.text(alphabet="浙江省杭州市西湖区街道镇乡县村路号12", max_size=25)),
        min_size=1,
        max_size=40,
    )
)
def test_mask_address_is_a_prefix_cut_at_a_division_token(
    con: duckdb.DuckDBPyConnection, addresses: list[str | None]
) -> None:
    for raw, masked in zip(addresses, evaluate(con, build("mask_address"), addresses), strict=True):
        if raw is None:
            assert masked is None
        elif masked == "*" * len(raw):
            for word in NOT_COUNTY_WORDS:
                raw = raw.replace(word, "")
            assert not any(t in raw for t in ("街道", "镇", "乡", "区", "县", "市"))
        else:
            assert raw.startswith(masked) and masked.endswith(("街道", "镇", "乡", "区", "县", "市"))


@pytest.mark.req("REQ-32", "keyed-pseudonyms")
@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.text(max_size=40)), min_size=1, max_size=30),
    st.binary(min_size=16, max_size=100),
    st.integers(16, 64),
)
def test_pseudonym_is_hmac_sha256(
    con: duckdb.DuckDBPyConnection, values: list[str | None], key: bytes, length: int
) -> None:
    """Equal to Python's hmac for any text and any key, including keys longer than a block."""
    cursor = con.cursor()
    for name, value in pseudonym_variables("prop", key).items():
        cursor.execute(f"SET VARIABLE {name} = $1", [value])
    sql = f"SELECT {build('pseudonym', slot='prop', length=length).sql('duckdb')} FROM vals ORDER BY i"
    cursor.register("vals", pa.table({"i": pa.array(range(len(values))), "v": pa.array(values, pa.string())}))
    got = [row[0] for row in cursor.execute(sql).fetchall()]
    assert got == [None if v is None else hmac_token(key, v, length) for v in values]


@pytest.mark.req("REQ-32", "keyed-pseudonyms")
@settings(max_examples=20, deadline=None)
@given(st.lists(id_numbers, min_size=5, max_size=40, unique=True))
def test_pseudonyms_under_two_grants_do_not_link(con: duckdb.DuckDBPyConnection, numbers: list[str]) -> None:
    first = evaluate(con, build("pseudonym", slot="g42"), numbers)
    second = evaluate(con, build("pseudonym", slot="g43"), numbers)
    assert len(set(first)) == len(numbers)  # stable and distinct within a grant
    assert not set(first) & set(second)
    assert evaluate(con, build("pseudonym", slot="g42"), numbers) == first


def _python_age_bucket(born: dt.date, on: dt.date, bounds: tuple[int, ...]) -> str | None:
    if born > on:
        return None
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    lows = [0, *bounds]
    for lo, hi in zip(lows, bounds, strict=False):
        if age < hi:
            return f"{lo}-{hi - 1}"
    return f"{bounds[-1]}+"


@pytest.mark.req("REQ-32", "generalisation")
@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.dates(dt.date(1900, 1, 1), dt.date(2030, 12, 31)), min_size=1, max_size=40),
    st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31)),
    st.lists(st.integers(1, 110), min_size=1, max_size=8, unique=True).map(lambda b: tuple(sorted(b))),
)
def test_age_bucket_matches_completed_years(
    con: duckdb.DuckDBPyConnection, dates: list[dt.date], on: dt.date, bounds: tuple[int, ...]
) -> None:
    from_dates = evaluate(con, build("age_bucket", reference=on, bounds=bounds), dates, pa.date32())
    assert from_dates == [_python_age_bucket(d, on, bounds) for d in dates]
    numbers = [make_id_number("330402", d.strftime("%Y%m%d"), 1) for d in dates]
    from_ids = evaluate(con, build("age_bucket", source="id_number", reference=on, bounds=bounds), numbers)
    assert from_ids == from_dates


@pytest.mark.req("REQ-32", "generalisation")
@settings(max_examples=30, deadline=None)
@given(st.lists(st.from_regex(r"\A3[0-9]{11}\Z"), min_size=1, max_size=30))
def test_generalise_division_keeps_the_prefix(con: duckdb.DuckDBPyConnection, codes: list[str]) -> None:
    assert evaluate(con, build("generalise_division"), codes) == [c[:6] + "000000" for c in codes]
    assert evaluate(con, build("generalise_division", level="city"), codes) == [
        c[:4] + "0" * 8 for c in codes
    ]


# -- registry ----------------------------------------------------------------------------------------


def test_registry_describes_every_function() -> None:
    for name, function in DEID_FUNCTIONS.items():
        assert function.name == name
        assert re.search(r"[\u4e00-\u9fff]", function.label), name
        assert function.output and function.pii_kinds and function.levels
    assert [p.name for p in DEID_FUNCTIONS["pseudonym"].parameters] == ["slot", "length"]
    assert DEID_FUNCTIONS["pseudonym"].parameters[1].default == 20


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("mask_everything", {}, "unknown de-identification function"),
        ("mask_mobile", {"keep": 3}, "takes no parameter keep"),
        ("generalise_date", {"granularity": "week"}, "granularity"),
        ("generalise_division", {"level": "village"}, "level"),
        ("age_bucket", {"bounds": [30, 18]}, "increasing"),
        ("age_bucket", {"bounds": []}, "increasing"),
        ("age_bucket", {"reference": "30/06/2024"}, "ISO date"),
        ("age_bucket", {"source": "mobile"}, "source"),
        ("pseudonym", {}, "pseudonym"),
        ("pseudonym", {"slot": "x'; DROP"}, "slot"),
        ("pseudonym", {"slot": "g1", "length": 8}, "length"),
    ],
)
def test_bad_parameters_are_input_errors(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        build(name, **params)


def test_short_keys_are_refused() -> None:
    with pytest.raises(PubdataError, match="16 bytes"):
        pseudonym_variables("g1", b"short")


# -- default rules (REQ-27) -------------------------------------------------------------------------


@pytest.mark.req("REQ-27", "per-field-rules")
@pytest.mark.parametrize(
    ("level", "kind", "expected"),
    [
        (Level.L4, PiiKind.ID_NUMBER, "mask_id_number"),
        (Level.L1, PiiKind.ID_NUMBER, "mask_id_number"),
        (Level.L3, PiiKind.MOBILE, "mask_mobile"),
        (Level.L2, PiiKind.NAME, "mask_name"),
        (Level.L1, PiiKind.NAME, None),
        (Level.L3, PiiKind.ADDRESS, "mask_address"),
        (Level.L4, PiiKind.MEDICAL, "suppress"),
        (Level.L4, PiiKind.BIOMETRIC, "suppress"),
        (Level.L2, PiiKind.BANK_CARD, "mask_bank_card"),
        (Level.L2, PiiKind.USCC, None),
        (Level.L3, PiiKind.USCC, "mask_uscc"),
        (Level.L3, PiiKind.BIRTH_DATE, "generalise_date"),
        (Level.L4, PiiKind.BIRTH_DATE, "age_bucket"),
        (Level.L3, PiiKind.NONE, None),
        (Level.L4, PiiKind.NONE, "suppress"),
        ("L4", "身份证号", "mask_id_number"),
        (2, "mobile", "mask_mobile"),
    ],
)
def test_default_rules(level: Level | str | int, kind: PiiKind | str, expected: str | None) -> None:
    assert default_deid(level, kind) == expected


@pytest.mark.req("REQ-27", "per-field-rules")
def test_default_rules_cover_every_kind_and_name_registered_functions() -> None:
    assert {r.pii_kind for r in DEFAULT_RULES} == set(PiiKind)
    assert {r.function for r in DEFAULT_RULES} - {None} <= set(DEID_FUNCTIONS)
    for kind in PiiKind:
        for level in Level:
            name = default_deid(level, kind)
            assert name is None or build(name) is not None


@pytest.mark.req("REQ-27", "per-field-rules")
def test_default_rules_are_replaceable_data() -> None:
    stricter = (*DEFAULT_RULES, DeidRule(PiiKind.NAME, Level.L1, "suppress"))
    stricter = tuple(r for r in stricter if not (r.pii_kind is PiiKind.NAME and r.function != "suppress"))
    assert default_deid(Level.L2, PiiKind.NAME, stricter) == "suppress"
    only_names = (DeidRule(PiiKind.NAME, Level.L1, "mask_name"),)
    assert default_deid(Level.L1, PiiKind.MOBILE, only_names) == "suppress"  # an unruled kind is withheld
