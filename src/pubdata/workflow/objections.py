"""Objections (异议, REQ-12) and their deadlines (REQ-13): the moves, who may make them, and the
periodic work.

Staff of an organisation that may read an entry (a grant, or an unconditionally shared entry), or a
data subject with a verified identity about their own records (`objection_raisers`), names records
of the entry by its key fields and says what is wrong, within the limits of `objection_limits`.
The competent department covering the provider accepts it within ``objection_accept``
working days — and the records are flagged at once, disputed in every gateway answer — or rejects it
with a reason. The provider then verifies within ``objection_verify`` working days: *corrected*
(a newer dataset version carries the fix, ingested through the normal path) or *upheld* (with a
reason: the record was right); either way the records are unflagged. The competent department
archives the objection, or the tick task ``objections.archive`` does after `ARCHIVE_AFTER_DAYS`
calendar days without a move.

Every move is one audit event ``objection.<action>`` on ``objection:<id>`` and a notification to
whoever acts next and to the raiser; a refusal (wrong role or organisation, wrong state) is audited
too. An objection the caller may not see is refused as a missing one (`objection_access`), for
moves as for reads. A move is a conditional UPDATE on the state and ``lock_version`` seen, so of two
people deciding at once exactly one wins. ``objections.escalate`` tells the competent department,
once per step, about a step past its deadline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from pubdata import audit
from pubdata.catalog.classes import EntryState, WriteMode
from pubdata.catalog.service import get_entry
from pubdata.db.models import CatalogEntry, DatasetVersion, Objection, iso_or_none
from pubdata.errors import InputError, NotFound, PubdataError, RuleViolation
from pubdata.gateway.roles import NotAuthorised, Principal, Role
from pubdata.messages import text
from pubdata.settings import SettingsFile
from pubdata.workflow.objection_access import may_see, unknown_objection
from pubdata.workflow.objection_limits import bureau_already_told, check_rate, check_record_count
from pubdata.workflow.objection_notices import tell
from pubdata.workflow.objection_raisers import may_raise, require_own_records
from pubdata.workflow.objection_records import check_records
from pubdata.workflow.objection_states import (
    DEADLINE_STEPS,
    TRANSITIONS,
    Actor,
    ObjectionState,
    RaiserKind,
    Transition,
    transition,
)
from pubdata.workflow.parties import require_competent, require_member
from pubdata.workflow.working_days import deadline_for
from pubdata.workspace import Workspace

#: Who the audit log names for moves the platform makes by itself.
PLATFORM = "platform"


def target(objection_id: int) -> str:
    return f"objection:{objection_id}"


def get_objection(session: Session, objection_id: int) -> Objection:
    found = session.scalar(
        select(Objection)
        .where(Objection.id == objection_id)
        .options(selectinload(Objection.entry).selectinload(CatalogEntry.provider))
        .execution_options(populate_existing=True)
    )
    if found is None:
        raise NotFound(text("no objection {objection_id}", objection_id=objection_id))
    return found


def _refuse(session: Session, actor: str, action: str, where: str, error: PubdataError) -> NoReturn:
    req = getattr(error, "req", None) or "REQ-12"
    audit.record_refusal(session, actor, f"objection.{action}", where, reason=str(error), req=req)
    raise error


# --- raising ------------------------------------------------------------------------------------


def raise_objection(
    session: Session,
    principal: Principal,
    entry_code: str,
    records: Sequence[Mapping[str, Any]],
    description: str,
    *,
    kind: RaiserKind | str = RaiserKind.CONSUMER,
    now: dt.datetime,
    settings: SettingsFile,
) -> Objection:
    """A new objection in ``submitted``, due for acceptance within ``objection_accept`` working days."""
    login = principal.user.login
    raiser = RaiserKind.parse(kind)
    entry = get_entry(session, entry_code)
    if entry.state is EntryState.DRAFT:
        # A draft is the provider's work in progress, absent from the public catalogue: answered
        # exactly as an unknown code, so that an objection cannot probe for it.
        raise NotFound(text("no catalogue entry {code!r}", code=entry_code))
    if not description.strip():
        raise InputError(
            text("an objection needs a description of what is wrong with the records"), column="description"
        )
    tenant = settings.for_tenant(entry.provider.division_code)
    try:
        if entry.state is not EntryState.PUBLISHED:
            raise RuleViolation(
                text(
                    "entry {code} is not published; only published data can be objected to", code=entry.code
                ),
                "REQ-12",
            )
        identity = may_raise(session, principal, entry, raiser, now)
        check_record_count(len(records), tenant)  # before each record costs a validation
        check_rate(session, login, entry, now, tenant)
    except (NotAuthorised, RuleViolation) as refusal:
        _refuse(session, login, "raise", f"entry:{entry.code}", refusal)
    checked = check_records(entry, records)
    if identity is not None:
        try:
            require_own_records(login, identity, entry, checked)
        except NotAuthorised as refusal:
            _refuse(session, login, "raise", f"entry:{entry.code}", refusal)
    objection = Objection(
        entry_id=entry.id,
        raised_by=login,
        raiser_org_id=principal.organisation.id if principal.organisation is not None else None,
        raiser_kind=raiser.value,
        record_keys=checked,
        description=description.strip(),
        state=ObjectionState.SUBMITTED.value,
        step_started_at=now,
        due_at=_due(ObjectionState.SUBMITTED, now, settings, entry),
        lock_version=0,
        created_at=now,  # the rate limits count from it (`objection_limits`)
    )
    session.add(objection)
    session.flush()
    audit.record(
        session, login, "objection.raise", target(objection.id),
        entry=entry.code, kind=raiser.value, records=len(checked), due_at=iso_or_none(objection.due_at),
    )  # fmt: skip
    told = bureau_already_told(session, entry, objection.id, now, tenant)
    tell(session, objection, entry, "raise", ObjectionState.SUBMITTED, tenant, next_actor=not told)
    return objection


# --- moving -------------------------------------------------------------------------------------


def _due(
    state: ObjectionState, now: dt.datetime, settings: SettingsFile, entry: CatalogEntry
) -> dt.datetime | None:
    step = DEADLINE_STEPS.get(state)
    if step is None:
        return None
    deadlines = settings.for_tenant(entry.provider.division_code).deadlines
    return deadline_for(step[0], now, deadlines).astimezone(dt.UTC)


def _authorise(principal: Principal, move: Transition, entry: CatalogEntry) -> None:
    step = f"{move.action} objections on {entry.code}"
    if move.actor is Actor.COMPETENT:
        require_competent(principal, entry.provider.division_code, step)
    elif move.actor is Actor.PROVIDER:
        require_member(principal, entry.provider, Role.PROVIDER, step)
    else:
        raise NotAuthorised(
            text(
                "{login} may not {step}: the platform does that by itself",
                login=principal.user.login,
                step=step,
            )
        )


def _permitted(
    session: Session, principal: Principal, objection_id: int, action: str
) -> tuple[Objection, Transition]:
    """The objection and the move, once the caller's role and the objection's state allow it
    (refusals audited). An objection the caller may not see is refused exactly as a missing one,
    before anything of it (its entry, its state) can show in the answer."""
    login = principal.user.login
    try:
        objection = get_objection(session, objection_id)
        if not may_see(principal, objection):
            raise unknown_objection(objection_id)
    except NotFound as hidden:
        _refuse(session, login, action, target(objection_id), hidden)
    try:
        first = next((t for t in TRANSITIONS if t.action == action), None)
        if first is None:
            raise RuleViolation(text("unknown objection action {action!r}", action=action), "REQ-12")
        _authorise(principal, first, objection.entry)
        return objection, transition(action, ObjectionState(objection.state))
    except (NotAuthorised, RuleViolation) as refusal:
        _refuse(session, login, action, target(objection.id), refusal)


def move_objection(
    session: Session,
    objection: Objection,
    move: Transition,
    actor: str,
    now: dt.datetime,
    settings: SettingsFile,
    *,
    reason: str | None = None,
    **detail: Any,
) -> Objection:
    """One move: the conditional UPDATE, its audit event and its notifications."""
    values: dict[str, Any] = {
        "state": move.target.value,
        "step_started_at": now,
        "due_at": _due(move.target, now, settings, objection.entry),
        "escalated_at": None,
        "handled_by": actor,
        "lock_version": objection.lock_version + 1,
        "updated_at": now,
    }
    if reason is not None:
        values["reason"] = reason
    values.update({k: v for k, v in detail.items() if k == "corrected_version"})
    moved = session.execute(
        update(Objection)
        .where(
            Objection.id == objection.id,
            Objection.state == move.source.value,
            Objection.lock_version == objection.lock_version,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise RuleViolation(
            text(
                "objection {objection_id} was already decided by someone else; look at it again",
                objection_id=objection.id,
            ),
            "REQ-12",
        )
    session.refresh(objection)
    facts = {k: v for k, v in detail.items() if v is not None}
    if reason is not None:
        facts["reason"] = reason
    audit.record(
        session, actor, f"objection.{move.action}", target(objection.id),
        entry=objection.entry.code, state_from=move.source.value, state=move.target.value,
        due_at=iso_or_none(objection.due_at), **facts,
    )  # fmt: skip
    tenant = settings.for_tenant(objection.entry.provider.division_code)
    tell(session, objection, objection.entry, move.action, move.target, tenant)
    return objection


def accept(
    session: Session, principal: Principal, objection_id: int, *, now: dt.datetime, settings: SettingsFile
) -> Objection:
    """Accept and, in the same transaction, flag: the records are disputed from this commit on."""
    objection, move = _permitted(session, principal, objection_id, "accept")
    login = principal.user.login
    move_objection(session, objection, move, login, now, settings)
    return move_objection(
        session, objection, transition("flag", ObjectionState(objection.state)), login, now, settings,
        data_version=_current_version(session, objection.entry_id), records=len(objection.record_keys),
    )  # fmt: skip


def reject(
    session: Session,
    principal: Principal,
    objection_id: int,
    reason: str,
    *,
    now: dt.datetime,
    settings: SettingsFile,
) -> Objection:
    return _decide_with_reason(session, principal, objection_id, "reject", reason, now, settings)


def uphold(
    session: Session,
    principal: Principal,
    objection_id: int,
    reason: str,
    *,
    now: dt.datetime,
    settings: SettingsFile,
) -> Objection:
    """The provider found the records right: upheld, then unflagged."""
    objection = _decide_with_reason(session, principal, objection_id, "uphold", reason, now, settings)
    return move_objection(
        session,
        objection,
        transition("unflag", ObjectionState(objection.state)),
        principal.user.login,
        now,
        settings,
    )


def _decide_with_reason(
    session: Session,
    principal: Principal,
    objection_id: int,
    action: str,
    reason: str,
    now: dt.datetime,
    settings: SettingsFile,
) -> Objection:
    if not reason or not reason.strip():
        raise InputError(
            text("to {action} an objection, give the reason the raiser will read", action=action),
            column="reason",
        )
    objection, move = _permitted(session, principal, objection_id, action)
    return move_objection(
        session, objection, move, principal.user.login, now, settings, reason=reason.strip()
    )


def archive(
    session: Session, principal: Principal, objection_id: int, *, now: dt.datetime, settings: SettingsFile
) -> Objection:
    objection, move = _permitted(session, principal, objection_id, "archive")
    return move_objection(session, objection, move, principal.user.login, now, settings)


# --- correcting: a new dataset version through the normal ingest path --------------------------


def _current_version(session: Session, entry_id: int) -> int | None:
    return session.scalar(select(func.max(DatasetVersion.version)).where(DatasetVersion.entry_id == entry_id))


def _version_at_flag(session: Session, objection_id: int) -> int | None:
    events = audit.list_events(session, "objection.flag")
    found = [e for e in events if e.target == target(objection_id)]
    version = found[-1].detail.get("data_version") if found else None
    return int(version) if version is not None else None


def correct(
    workspace: Workspace,
    principal: Principal,
    objection_id: int,
    *,
    file: Path | None = None,
    version: int | None = None,
    now: dt.datetime,
) -> Objection:
    """The provider corrected the records: `file` is ingested now (upsert) or `version` names a
    version ingested after the flagging; then corrected and unflagged in one transaction."""
    if (file is None) == (version is None):
        raise InputError(
            text("give exactly one of a corrected file and the version that corrected the records")
        )
    login = principal.user.login
    with workspace.sessions() as session:
        objection, _ = _permitted(session, principal, objection_id, "correct")
        entry_code = objection.entry.code
        if version is not None:
            flagged_at = _version_at_flag(session, objection_id)
            exists = session.scalar(
                select(DatasetVersion.id).where(
                    DatasetVersion.entry_id == objection.entry_id, DatasetVersion.version == version
                )
            )
            if exists is None or (flagged_at is not None and version <= flagged_at):
                why = RuleViolation(
                    text(
                        "version {version} of {code} did not correct objection {objection_id}: name a "
                        "version ingested after the records were flagged (after version {flagged_at})",
                        version=version,
                        code=entry_code,
                        objection_id=objection_id,
                        flagged_at=flagged_at,
                    ),
                    "REQ-12",
                )
                _refuse(session, login, "correct", target(objection_id), why)
    if file is not None:
        from pubdata.ingest.pipeline import ingest_file  # the ingest path is heavy; only this move needs it

        version = ingest_file(
            workspace, entry_code, file, operator=login, mode=WriteMode.UPSERT
        ).version.version
    settings = workspace.settings
    with workspace.sessions() as session, session.begin():
        objection, move = _permitted(session, principal, objection_id, "correct")
        move_objection(session, objection, move, login, now, settings, corrected_version=version)
        unflag = transition("unflag", ObjectionState(objection.state))
        return move_objection(session, objection, unflag, login, now, settings)
