"""Refusals of the catalogue and of loading files, as the portal says them in Chinese."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from pubdata.catalog.classes import OpenClass, OrgType, ShareClass, UpdateCycle
from pubdata.catalog.service import create_entry, register_organisation, update_entry
from pubdata.catalog.specs import EntrySpec, FieldSpec, OrganisationSpec
from pubdata.errors import InputError, PubdataError, RuleViolation
from pubdata.identifiers import make_uscc
from pubdata.ingest.readers import open_source
from pubdata.settings import Settings
from pubdata.web.error_text import say

POLICE = OrganisationSpec(
    "杭州市公安局", OrgType.STATE_ORGAN, make_uscc("11", "330100", "00250240"), "330100", "市公安局",
    head_name="张局长", security_officer_name="李安全",
)  # fmt: skip


def population() -> EntrySpec:
    return EntrySpec(
        code="population",
        name="户籍人口",
        provider="市公安局",
        fields=[FieldSpec("sfzh", "公民身份号码"), FieldSpec("xm", "姓名")],
        abstract="本市户籍人口基本信息",
        category_class="基础信息",
        share_class=ShareClass.RESTRICTED,
        legal_basis="《浙江省公共数据条例》第二十三条",
        share_conditions="仅用于政务服务身份核验",
        open_class=OpenClass.PROHIBITED,
        update_cycle=UpdateCycle.DAILY,
    )


def test_a_second_organisation_with_the_same_name_is_refused_in_chinese(session: Session) -> None:
    register_organisation(session, POLICE, "admin")
    with pytest.raises(PubdataError) as caught:
        register_organisation(session, POLICE, "admin")
    assert str(caught.value) == "organisation 杭州市公安局 already has this name or USCC"
    assert say(caught.value, "zh_CN") == "单位 杭州市公安局 已使用此名称或统一社会信用代码"
    assert say(caught.value, "en") == str(caught.value)


def test_dropping_the_legal_basis_is_refused_in_chinese_with_its_rule(session: Session) -> None:
    register_organisation(session, POLICE, "admin")
    create_entry(session, population(), "clerk", Settings())
    with pytest.raises(RuleViolation) as caught:
        update_entry(session, "population", {"legal_basis": ""}, "clerk", Settings())
    assert str(caught.value) == "受限共享 entry population must state its legal basis (REQ-14)"
    assert say(caught.value, "zh_CN") == "受限共享目录 population 须注明法律依据（REQ-14）"


def test_a_file_problem_is_said_in_chinese_with_where_it_is(tmp_path: Path) -> None:
    empty = tmp_path / "参保.csv"
    empty.write_bytes(b"\xef\xbb\xbf\r\n")
    with pytest.raises(InputError) as caught:
        open_source(empty)
    assert str(caught.value) == "file 参保.csv: the file is empty"
    assert say(caught.value, "zh_CN") == "文件 参保.csv：文件为空"
    short = tmp_path / "rows.csv"
    short.write_text("xm,sfzh,dz\n张三,1,杭州\n李四,2\n", "utf-8")
    with pytest.raises(InputError) as caught:
        for _ in open_source(short).batches(100):
            pass
    assert str(caught.value) == "file rows.csv, row 3, column dz: the row has 2 field(s) but the header has 3"
    assert say(caught.value, "zh_CN") == "文件 rows.csv，第 3 行，字段 dz：该行有 2 个字段，表头有 3 个"
