"""Default kinds and levels by content (REQ-30): the rule table in catalog.suggest."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pubdata.catalog.classes import PiiKind
from pubdata.catalog.suggest import HINTS, suggest_field, suggest_fields
from pubdata.divisions import divisions
from pubdata.identifiers import make_id_number, make_uscc
from pubdata.settings import LevelRule, Settings

SETTINGS = Settings()
COUNTIES = divisions().county_codes()

id_numbers = st.builds(
    lambda county, born, seq: make_id_number(county, born.strftime("%Y%m%d"), seq),
    st.sampled_from(COUNTIES),
    st.dates(dt.date(1920, 1, 1), dt.date(2020, 12, 31)),
    st.integers(0, 999),
)
mobiles = st.builds(lambda p, rest: f"1{p}{rest:09d}", st.sampled_from("3456789"), st.integers(0, 10**9 - 1))


def luhn_complete(body: str) -> str:
    """Append the Luhn check digit, as card issuers do."""
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char) * (2 if index % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return body + str((10 - total % 10) % 10)


bank_cards = st.builds(
    lambda prefix, rest, length: luhn_complete((prefix + f"{rest:018d}")[: length - 1]),
    st.sampled_from(["62", "45", "52"]),
    st.integers(0, 10**18 - 1),
    st.sampled_from([16, 19]),
)
person_names = st.builds(
    lambda surname, given_name: surname + given_name,
    st.sampled_from("王李张刘陈杨黄赵吴周徐孙"),
    st.text("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超", min_size=1, max_size=2),
)
usccs = st.builds(lambda body: make_uscc("11", "330100", body), st.text("0123456789ABCDEFGH", min_size=8,
                                                                        max_size=8))  # fmt: skip


@pytest.mark.req("REQ-30", "l4-content")
@given(samples=st.lists(id_numbers, min_size=1, max_size=20))
def test_identity_numbers_are_recognised_by_value_whatever_the_column_is_called(samples: list[str]) -> None:
    found = suggest_field("col_7", "", samples, SETTINGS)
    assert (found.pii_kind, found.level) == (PiiKind.ID_NUMBER, 4)
    assert "100%" in found.reason


@given(samples=st.lists(mobiles, min_size=1, max_size=20))
def test_mobiles_are_recognised_by_value(samples: list[str]) -> None:
    found = suggest_field("c", "", ["+86 " + samples[0], *samples[1:]], SETTINGS)
    assert (found.pii_kind, found.level) == (PiiKind.MOBILE, 3)


@pytest.mark.req("REQ-30", "l4-content")
@given(samples=st.lists(bank_cards, min_size=2, max_size=20))
def test_bank_cards_pass_luhn_and_are_l4(samples: list[str]) -> None:
    found = suggest_field("c", "", samples, SETTINGS)
    assert (found.pii_kind, found.level) == (PiiKind.BANK_CARD, 4)
    broken = [s[:-1] + str((int(s[-1]) + 1) % 10) for s in samples]
    assert suggest_field("c", "", broken, SETTINGS).pii_kind is not PiiKind.BANK_CARD


@given(names=st.lists(person_names, min_size=3, max_size=20), codes=st.lists(usccs, min_size=1, max_size=5))
def test_person_names_and_credit_codes_by_value(names: list[str], codes: list[str]) -> None:
    assert suggest_field("c", "", names, SETTINGS).pii_kind is PiiKind.NAME
    assert suggest_field("c", "", codes, SETTINGS).pii_kind is PiiKind.USCC
    assert suggest_field("c", "", ["杭州市", "嘉兴市", "湖州市"], SETTINGS).pii_kind is PiiKind.NONE


def test_values_decide_only_when_most_of_them_agree() -> None:
    half = ["13800138000", "n/a", "", None, "unknown"]
    assert suggest_field("c", "", half, SETTINGS).pii_kind is PiiKind.NONE
    assert suggest_field("remark", "备注", [None, "  "], SETTINGS).level == 1
    addresses = ["杭州市上城区解放路100号", "嘉兴市南湖区东栅街道1幢", "温州市鹿城区五马街3号"]
    assert suggest_field("c", "", addresses, SETTINGS).pii_kind is PiiKind.ADDRESS


@pytest.mark.req("REQ-30", "l4-content")
@pytest.mark.parametrize(
    ("name", "title", "kind", "level"),
    [
        ("sfzh", "", PiiKind.ID_NUMBER, 4),
        ("id_card", "", PiiKind.ID_NUMBER, 4),
        ("zjhm", "证件号码", PiiKind.ID_NUMBER, 4),
        ("c1", "公民身份号码", PiiKind.ID_NUMBER, 4),
        ("sjh", "", PiiKind.MOBILE, 3),
        ("mobile", "", PiiKind.MOBILE, 3),
        ("contact_phone", "", PiiKind.MOBILE, 3),
        ("xm", "", PiiKind.NAME, 2),
        ("name", "", PiiKind.NAME, 2),
        ("c2", "法定代表人", PiiKind.NAME, 2),
        ("jzdz", "居住地址", PiiKind.ADDRESS, 3),
        ("tyshxydm", "", PiiKind.USCC, 1),
        ("uscc", "", PiiKind.USCC, 1),
        ("yhkh", "银行卡号", PiiKind.BANK_CARD, 4),
        ("zdmc", "诊断名称", PiiKind.MEDICAL, 4),
        ("c3", "慢性病种类", PiiKind.MEDICAL, 4),
        ("diagnosis_code", "", PiiKind.MEDICAL, 4),
        ("face_image", "人脸照片", PiiKind.BIOMETRIC, 4),
        ("lng", "经度", PiiKind.PRECISE_LOCATION, 4),
        ("csrq", "出生日期", PiiKind.BIRTH_DATE, 2),
        ("company_name", "企业名称", PiiKind.NONE, 1),
        ("entry_name", "", PiiKind.NONE, 1),
        ("park_area", "公园面积", PiiKind.NONE, 1),
        ("telescope", "", PiiKind.NONE, 1),
    ],
)
def test_name_and_title_hints(name: str, title: str, kind: PiiKind, level: int) -> None:
    found = suggest_field(name, title, [], SETTINGS)
    assert (found.pii_kind, found.level) == (kind, level), found.reason


@pytest.mark.req("REQ-30", "l4-content")
def test_values_outweigh_a_misleading_name() -> None:
    found = suggest_field("remark", "备注", [make_id_number("330102", "19800101", 1)], SETTINGS)
    assert found.pii_kind is PiiKind.ID_NUMBER


@pytest.mark.req("REQ-30", "rule-table")
def test_levels_come_from_the_settings_table() -> None:
    stricter = dataclasses.replace(
        SETTINGS, level_rules=(LevelRule("name", 3), LevelRule("uscc", 2), LevelRule("mobile", 4))
    )
    assert suggest_field("xm", "", [], stricter).level == 3
    assert suggest_field("uscc", "", [], stricter).level == 2
    assert suggest_field("sfzh", "", [], stricter).level == 2  # not in this table: personal information
    assert suggest_field("note", "", [], stricter).level == 1


@pytest.mark.req("REQ-30", "combination-l3")
@given(ids=st.lists(id_numbers, min_size=1, max_size=5), phones=st.lists(mobiles, min_size=1, max_size=5))
def test_name_id_and_mobile_together_raise_each_other(ids: list[str], phones: list[str]) -> None:
    table = {"full": ["张伟", "李娜"], "number": ids, "contact": phones, "note": ["x"]}
    found = {s.name: s for s in suggest_fields(table, SETTINGS)}
    assert [s.name for s in suggest_fields(table, SETTINGS)] == list(table)
    assert found["full"].pii_kind is PiiKind.NAME and found["full"].level == SETTINGS.combined_identity_level
    assert "raised" in found["full"].reason
    assert found["number"].level == 4 and found["contact"].level == 3 and found["note"].level == 1
    higher = dataclasses.replace(SETTINGS, combined_identity_level=4)
    assert {s.level for s in suggest_fields(table, higher) if s.name != "note"} == {4}
    without_mobile = {k: v for k, v in table.items() if k != "contact"}
    assert {s.name: s.level for s in suggest_fields(without_mobile, SETTINGS)}["full"] == 2


def test_titles_can_be_passed_to_suggest_fields() -> None:
    found = suggest_fields({"c1": [], "c2": []}, SETTINGS, titles={"c1": "身份证号"})
    assert [s.pii_kind for s in found] == [PiiKind.ID_NUMBER, PiiKind.NONE]


def test_every_kind_but_none_has_a_row_in_the_rule_table() -> None:
    assert {h.kind for h in HINTS} == set(PiiKind) - {PiiKind.NONE}
