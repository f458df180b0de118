"""Who hears of an objection's move (REQ-12): whoever acts next, and the raiser.

A notification is written in the move's own transaction (`workflow.notify`), so it exists exactly
when the move does. Raising an objection may leave the next actor out (`next_actor=False`) when an
earlier objection on the same entry already sent them to its waiting list (`objection_limits`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from pubdata.db.models import CatalogEntry, Objection, User
from pubdata.gateway.roles import Role
from pubdata.settings import Settings
from pubdata.workflow.notify import notify
from pubdata.workflow.objection_states import WAITING_ON, Actor, ObjectionState
from pubdata.workflow.parties import competent_people, people


def tell(
    session: Session,
    objection: Objection,
    entry: CatalogEntry,
    action: str,
    state: ObjectionState,
    settings: Settings,
    *,
    next_actor: bool = True,
) -> None:
    """The next actor (if any, unless `next_actor` is false) and the raiser learn of the move."""
    users = actors(session, WAITING_ON.get(state), entry) if next_actor else []
    raiser = session.scalar(select(User).where(User.login == objection.raised_by))
    if raiser is not None:
        users.append(raiser)
    body = f"{entry.name}（{entry.code}）的数据异议 #{objection.id} 现为「{state.label}」。"
    if objection.reason and state in (
        ObjectionState.REJECTED,
        ObjectionState.UPHELD,
        ObjectionState.UNFLAGGED,
    ):
        body += f"\n理由：{objection.reason}"
    notify(
        session, users, f"objection.{action}", f"数据异议 #{objection.id}：{state.label}", body,
        f"/objections/{objection.id}", settings,
    )  # fmt: skip


def actors(session: Session, actor: Actor | None, entry: CatalogEntry) -> list[User]:
    if actor is Actor.COMPETENT:
        return competent_people(session, entry.provider.division_code)
    if actor is Actor.PROVIDER:
        return people(session, [entry.provider], Role.PROVIDER)
    return []
