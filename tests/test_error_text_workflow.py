"""Refusals of the sharing workflow read in Chinese on the portal, while the English sentence the API,
the CLI and the audit trail show stays exactly what it was."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from pubdata.clock import fixed_clock
from pubdata.db.models import RequestItem
from pubdata.demo.build import build_demo
from pubdata.errors import InputError, RuleViolation
from pubdata.gateway.roles import NotAuthorised, Role
from pubdata.settings import Deadlines
from pubdata.web.error_text import say
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.request_states import OPEN_STEPS, TRANSITIONS, Action, ItemState, transition
from pubdata.workflow.working_days import LOCAL_TZ, CalendarYearUnknown, deadline_for
from pubdata.workspace import Workspace
from requests_support import (
    COMPETENT,
    HRSS,
    NOW,
    PROVIDER,
    SOCIAL,
    UNTIL,
    ensure_user,
    file_request,
    principal,
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    home: Path = tmp_path_factory.mktemp("workflow-text") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(NOW))
    workspace = Workspace.open(home, clock=fixed_clock(NOW))
    ensure_user(workspace, PROVIDER, HRSS, Role.PROVIDER)
    return workspace


def test_an_application_of_another_organisation_is_refused_in_chinese(workspace: Workspace) -> None:
    with pytest.raises(RuleViolation) as refused:
        file_request(
            workspace, [{"entry_code": SOCIAL, "fields": ["status"]}], application="gat_population_service"
        )
    assert str(refused.value) == "application gat_population_service belongs to another organisation (REQ-15)"
    assert say(refused.value, "zh_CN") == "应用 gat_population_service 属于其他单位（REQ-15）"
    assert say(refused.value, "en") == str(refused.value)


def test_a_decision_by_another_organisation_or_beyond_the_period_is_refused_in_chinese(
    workspace: Workspace,
) -> None:
    request_id = file_request(workspace, [{"entry_code": SOCIAL, "fields": ["status"]}])
    with workspace.sessions() as session:
        item_id = session.query(RequestItem).filter_by(request_id=request_id).one().id
    act(workspace.sessions, principal(workspace, COMPETENT), item_id, Action.CHECK, Decision(),
        workspace.settings, NOW)  # fmt: skip

    with pytest.raises(NotAuthorised) as outsider:
        act(workspace.sessions, principal(workspace, "zj_gat"), item_id, Action.APPROVE, Decision(),
            workspace.settings, NOW)  # fmt: skip
    english = str(outsider.value)
    assert english.startswith("zj_gat may not ")
    assert english.endswith(": only 公共数据提供单位 staff of 浙江省人力资源和社会保障厅 may")
    step = english.removeprefix("zj_gat may not ").split(": only ")[0]
    assert say(outsider.value, "zh_CN") == (
        f"zj_gat 无权执行“{step}”：仅浙江省人力资源和社会保障厅的公共数据提供单位人员可以办理"
    )

    later = UNTIL + dt.timedelta(days=1)
    with pytest.raises(InputError) as wider:
        act(workspace.sessions, principal(workspace, PROVIDER), item_id, Action.APPROVE,
            Decision(valid_until=later), workspace.settings, NOW)  # fmt: skip
    assert str(wider.value) == (
        f"column valid_until: the period asked for ends {UNTIL:%Y-%m-%d}; a decision cannot extend it"
    )
    assert say(wider.value, "zh_CN") == (
        f"字段 valid_until：申请的使用期限截止于 {UNTIL:%Y-%m-%d}，审核决定不能延长"
    )


def _old_sentence(state: ItemState, action: Action) -> str:
    """The refusal as the workflow worded it before it could be said in Chinese."""
    if state is ItemState.DRAFT or state in OPEN_STEPS:
        possible = ", ".join(a.value for (s, a) in TRANSITIONS if s is state) or "nothing"
        return (
            f"the item is {state.value} ({state.label}); "
            f"{action.value} is not possible now (possible: {possible})"
        )
    return (
        f"the item is already decided: it is {state.value} ({state.label}) now, "
        f"and {action.value} is not possible from there"
    )


@pytest.mark.parametrize(
    ("state", "action"),
    [(s, a) for s in ItemState for a in Action if (s, a) not in TRANSITIONS],
)
def test_a_move_from_the_wrong_state_keeps_its_english_and_names_the_state_in_chinese(
    state: ItemState, action: Action
) -> None:
    with pytest.raises(RuleViolation) as refused:
        transition(state, action)
    assert str(refused.value) == f"{_old_sentence(state, action)} (REQ-16)"
    chinese = say(refused.value, "zh_CN")
    assert f"“{state.label}”（{state.value}）" in chinese and action.value in chinese
    assert chinese.endswith("（REQ-16）") and re.search(r"申请事项", chinese)


def test_a_deadline_in_an_unpublished_year_is_refused_in_chinese() -> None:
    start = dt.datetime(2026, 12, 30, 9, 0, tzinfo=LOCAL_TZ)
    with pytest.raises(CalendarYearUnknown) as unknown:
        deadline_for("decide", start, Deadlines(unknown_year="refuse"))
    assert str(unknown.value) == (
        "no official working-day calendar for 2027: the holidays and make-up working days of 2027 are "
        "not known yet; update the chinesecalendar package once the State Council has published them"
    )
    assert say(unknown.value, "zh_CN") == (
        "尚无 2027 年的官方工作日历：2027 年的节假日和调休上班日尚未公布；"
        "请在国务院公布后更新 chinesecalendar 软件包"
    )
