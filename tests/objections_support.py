"""What the objection tests share: a demo province with a provider account, principals, and an
objection brought to any state by the parties allowed to move it."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import tomli_w

from gateway_support import JIAXING, PARK_APP, PARK_PURPOSE, SOCIAL, raw_rows
from pubdata.db.models import Objection
from pubdata.gateway.identity import create_user, find_user
from pubdata.gateway.roles import Principal, Role, Scope
from pubdata.workflow import objections
from pubdata.workspace import Workspace

__all__ = ["JIAXING", "NOW", "PARK_APP", "PARK_PURPOSE", "SOCIAL", "corrected_file", "served_record"]

#: A Monday in 2026: deadlines stay inside the years the working-day calendar knows.
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
CONSUMER, COMPETENT, PROVIDER = "jx_zgh", "zj_dsj", "hrss_staff"
CITIZEN = "citizen"
#: A consumer of an organisation without a grant on the social-insurance entry.
STRANGER = "gat_consumer"


def add_accounts(workspace: Workspace) -> None:
    """The provider account the demo lacks, and a consumer whose organisation holds no grant."""
    with workspace.sessions() as session, session.begin():
        create_user(
            session, PROVIDER, roles=[Role.PROVIDER], organisation="浙江省人力资源和社会保障厅",
            password=None, actor="test",
        )  # fmt: skip
        create_user(
            session, STRANGER, roles=[Role.CONSUMER], organisation="浙江省公安厅", password=None, actor="test"
        )


def lift_objection_limits(workspace: Workspace, **limits: int) -> None:
    """Objection limits (docs/settings.md) set in the workspace's settings file: by default high
    enough for tests that raise dozens of objections from one account at one pinned instant."""
    path = workspace.settings_path
    data = tomllib.loads(path.read_text("utf-8"))
    data.update({"objection_max_per_user": 1000, "objection_max_per_entry": 1000, **limits})
    path.write_text(tomli_w.dumps(data), "utf-8")
    vars(workspace).pop("settings", None)  # the workspace reads its settings file once; read it again


def principal(workspace: Workspace, login: str) -> Principal:
    with workspace.sessions() as session:
        user = find_user(session, login)
        return Principal(user, user.organisation, user.roles, frozenset(Scope))


def served_record(workspace: Workspace, offset: int = 0) -> dict[str, Any]:
    """A raw record of the social-insurance entry that the 嘉兴 grant serves."""
    rows = [r for r in raw_rows(workspace, SOCIAL).to_pylist() if str(r["division_code"]).startswith(JIAXING)]
    rows.sort(key=lambda r: (r["id_number"], r["insurance_type"]))
    return rows[offset]


def key_of(record: dict[str, Any]) -> dict[str, str]:
    return {"id_number": record["id_number"], "insurance_type": record["insurance_type"]}


def raise_on(workspace: Workspace, record: dict[str, Any], login: str = CONSUMER, **kw: Any) -> int:
    with workspace.sessions() as session, session.begin():
        found = objections.raise_objection(
            session,
            principal(workspace, login),
            SOCIAL,
            [key_of(record)],
            kw.pop("description", "参保状态与实际不符"),
            now=kw.pop("now", NOW),
            settings=workspace.settings,
            **kw,
        )
        return found.id


def move(workspace: Workspace, login: str, action: str, objection_id: int, **kw: Any) -> Objection:
    with workspace.sessions() as session, session.begin():
        step = getattr(objections, action)
        return step(  # type: ignore[no-any-return]
            session,
            principal(workspace, login),
            objection_id,
            now=kw.pop("now", NOW),
            settings=workspace.settings,
            **kw,
        )


def state_of(workspace: Workspace, objection_id: int) -> str:
    with workspace.sessions() as session:
        return objections.get_objection(session, objection_id).state


#: How to bring a fresh objection to each state, by the parties allowed to.
ROUTES: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "submitted": [],
    "flagged": [(COMPETENT, "accept", {})],
    "rejected": [(COMPETENT, "reject", {"reason": "记录无误"})],
    "unflagged": [(COMPETENT, "accept", {}), (PROVIDER, "uphold", {"reason": "经核实参保状态正确"})],
}


def objection_in(workspace: Workspace, state: str, record: dict[str, Any]) -> int:
    objection_id = raise_on(workspace, record)
    for login, action, kw in ROUTES[state]:
        move(workspace, login, action, objection_id, **kw)
    assert state_of(workspace, objection_id) == state
    return objection_id


def corrected_file(workspace: Workspace, record: dict[str, Any], folder: Path) -> Path:
    """A one-row file of the entry with the record's status corrected, as its provider would send."""
    row = {k: v for k, v in record.items() if not k.startswith("_")}
    row["status"] = "暂停参保"
    path = folder / "corrected.parquet"
    pq.write_table(pa.Table.from_pylist([row]), path)
    return path
