"""Workspace, divisions, identifiers, settings and the audit chain."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from pubdata.audit import record, verify_chain
from pubdata.db.models import Tenant
from pubdata.db.session import current_revision, head_revision
from pubdata.divisions import divisions, is_within
from pubdata.identifiers import id_number_problem, make_id_number, make_uscc, mobile_problem, uscc_problem
from pubdata.settings import load_settings
from pubdata.workspace import Workspace


def test_init_is_idempotent_and_at_head(tmp_path: Path) -> None:
    first = Workspace.init(tmp_path / "h")
    again = Workspace.init(tmp_path / "h")
    assert current_revision(again.engine) == head_revision() is not None
    with first.sessions() as s:
        tenants = s.scalar(select(func.count()).select_from(Tenant))
    with again.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Tenant)) == tenants
    assert (first.home / "pubdata.toml").exists()


@pytest.mark.req("REQ-5", "tenant-hierarchy")
def test_tenants_form_the_division_hierarchy(workspace: Workspace) -> None:
    with workspace.sessions() as s:
        nanhu = s.scalar(select(Tenant).where(Tenant.division_code == "330402000000"))
        assert nanhu is not None and nanhu.parent is not None
        assert nanhu.parent.name == "嘉兴市"
        assert nanhu.parent.parent is not None and nanhu.parent.parent.name == "浙江省"


@pytest.mark.req("REQ-33", "abolished-codes", "parent", "is-within")
def test_divisions_lookup_parent_and_within() -> None:
    d = divisions()
    assert d.get("3304").name == "嘉兴市"
    parent = d.parent("330402000000")
    assert parent is not None and parent.code == "330400000000"
    assert is_within("330402001000", "3304") and not is_within("330502001000", "3304")
    assert d.get("330103").abolished and d.is_valid_at_issue("330103")
    assert d.level("331023") == "county"


@given(
    county=st.sampled_from(divisions().county_codes()),
    born=st.dates(dt.date(1900, 1, 1), dt.date(2020, 12, 31)),
    seq=st.integers(0, 999),
)
def test_generated_id_numbers_validate_and_any_digit_change_is_caught(
    county: str, born: dt.date, seq: int
) -> None:
    number = make_id_number(county, born.strftime("%Y%m%d"), seq)
    assert id_number_problem(number) is None
    assert id_number_problem(number.lower()) is None
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    assert id_number_problem(wrong) == "check character"


def test_id_number_rejections() -> None:
    assert id_number_problem("12345") == "format"
    assert id_number_problem(make_id_number("999999", "19800101", 1)) == "division code"
    assert id_number_problem(make_id_number("330102", "19800231", 1)) == "birth date"


@given(body=st.text("0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=8, max_size=8))
def test_generated_usccs_validate(body: str) -> None:
    code = make_uscc("11", "330000", body)
    assert uscc_problem(code) is None
    assert uscc_problem(code[:-1] + ("0" if code[-1] != "0" else "1")) is not None


def test_mobile_normalisation() -> None:
    assert mobile_problem("+86 138-0013-8000") is None
    assert mobile_problem("１３８００１３８０００") is None
    assert mobile_problem("12800138000") == "format"


def test_tenant_settings_override(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'max_grant_days = 100\n[deadlines]\npreset = "national"\n[tenants."3304"]\nmax_grant_days = 30\n',
        "utf-8",
    )
    settings = load_settings(path)
    assert settings.default.deadlines.decide_wd == 10
    assert settings.for_tenant("330402000000").max_grant_days == 30
    assert settings.for_tenant("330100000000").max_grant_days == 100


@pytest.mark.req("REQ-40", "tamper-evident")
def test_audit_chain_detects_edit_and_deletion(workspace: Workspace) -> None:
    with workspace.sessions() as s, s.begin():
        for i in range(5):
            record(s, "tester", "catalog.create", f"e{i}", n=i)
    with workspace.sessions() as s:
        assert verify_chain(s)[0]
    with workspace.engine.begin() as c:
        c.execute(text("UPDATE audit_events SET target='forged' WHERE id=3"))
    with workspace.sessions() as s:
        ok, message = verify_chain(s)
        assert not ok and "3" in message
    with workspace.engine.begin() as c:
        c.execute(text("UPDATE audit_events SET target='e2' WHERE id=3"))
        c.execute(text("DELETE FROM audit_events WHERE id=2"))
    with workspace.sessions() as s:
        assert not verify_chain(s)[0]
