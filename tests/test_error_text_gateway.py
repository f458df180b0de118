"""Refusals of the gateway said in Chinese on the portal: real refusals of the access decision,
the grants and the query rewrite, in the page's language with their values, the English unchanged."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from pubdata.errors import InputError, RuleViolation
from pubdata.gateway.access import AccessDenied, AccessRule, decide
from pubdata.gateway.grants import renew_grant, revoke_grant
from pubdata.gateway.identity import find_user
from pubdata.gateway.policy_types import PolicyViolation
from pubdata.gateway.rewrite.parse_single_query import parse_single_query
from pubdata.gateway.roles import Principal, Scope
from pubdata.web.error_text import say
from pubdata.workspace import Workspace
from test_grants import NOW, SETTINGS, World, build_world, make_grant


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(Workspace.init(tmp_path_factory.mktemp("error_text_gateway") / "home"))
    yield built
    built.workspace.engine.dispose()


def denied(world: World, app: str, purpose: str, codes: list[str]) -> tuple[AccessDenied, str]:
    """The refusal `decide` raises for union.clerk, and the clerk's organisation."""
    with world.workspace.sessions() as s, s.begin():
        user = find_user(s, "union.clerk")
        assert user.organisation is not None
        principal = Principal(user, user.organisation, user.roles, frozenset(Scope))
        with pytest.raises(AccessDenied) as caught:
            decide(s, principal, app, purpose, codes, NOW, SETTINGS, world.home)
        return caught.value, user.organisation.name


def test_a_missing_grant_is_refused_in_chinese_with_the_rule(world: World) -> None:
    error, org = denied(world, "union_care", "没有授权的用途", ["reserves"])
    assert error.rule is AccessRule.NO_GRANT
    assert str(error) == (
        f"entry reserves holds 重要数据: only through a grant: {org} holds no grant of it for application "
        "union_care and this purpose; apply through a sharing request (REQ-31)"
    )
    assert say(error, "zh_CN") == (
        f"目录 reserves 含重要数据，须经授权访问：{org} 没有该目录用于应用 union_care 及本用途的授权；"
        "请通过共享申请办理（REQ-31）"
    )
    assert say(error, "en") == str(error)


def test_a_purpose_outside_the_grant_names_the_granted_one(world: World) -> None:
    grant = make_grant(world, application="union_other", purpose="职工 慰问")
    error, _ = denied(world, "union_other", "商业营销", ["people"])
    assert error.rule is AccessRule.OUTSIDE_PURPOSE
    assert str(error) == (
        f"outside purpose: people is granted to union_other for grant {grant.id}: '职工 慰问', "
        "not '商业营销' (REQ-17)"
    )
    assert say(error, "zh_CN") == (
        f"超出授权用途：目录 people 通过授权 {grant.id} 授予应用 union_other，用途为 '职工 慰问'，"
        "而非 '商业营销'（REQ-17）"
    )


def test_an_unknown_entry_is_named_as_it_was_written(world: World) -> None:
    error, _ = denied(world, "union_care", "x", ["ghosts"])
    assert str(error) == "no catalogue entry 'ghosts'"
    assert say(error, "zh_CN") == "找不到目录 'ghosts'"


def test_grant_refusals_keep_their_rule_and_say_where(world: World) -> None:
    grant = make_grant(world, purpose="期限说明")
    with world.workspace.sessions() as s, s.begin(), pytest.raises(RuleViolation) as too_long:
        renew_grant(
            s, grant.id, valid_until=NOW + dt.timedelta(days=500), actor="hr.head", settings=SETTINGS, now=NOW
        )
    assert str(too_long.value) == "a grant lasts at most 365 days (max_grant_days) (REQ-15)"
    assert say(too_long.value, "zh_CN") == "授权期限最长 365 天（max_grant_days）（REQ-15）"
    with world.workspace.sessions() as s, s.begin(), pytest.raises(InputError) as no_reason:
        revoke_grant(s, grant.id, actor="hr.head", reason=" ", now=NOW)
    assert str(no_reason.value) == "column reason: say why the grant is revoked"
    assert say(no_reason.value, "zh_CN") == "字段 reason：请说明撤销授权的理由"


def test_a_query_the_console_refuses_is_said_in_chinese() -> None:
    with pytest.raises(PolicyViolation) as caught:
        parse_single_query("SELECT 1; SELECT 2")
    assert str(caught.value) == "exactly one statement is allowed, found 2"
    assert say(caught.value, "zh_CN") == "只允许一条语句，当前有 2 条"
