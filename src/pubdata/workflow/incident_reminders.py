"""The tick task that keeps grave incidents in front of the competent department (REQ-28).

An incident graded major (重大) or especially major (特别重大) that is still reported or being
remediated `REMIND_AFTER_WORKING_DAYS` working days after it was reported is told to the competent
department again, at most once per working day, and not at all on days off.

``Incident.notified_at`` is the last time the department was told (the report, then each reminder);
the first notice stays in the audit log as ``incident.report``. A reminder claims the incident by a
conditional UPDATE of ``notified_at`` (set only if it is still before today), so two ticks running at
once remind once. It does not touch ``lock_version``: a reminder must never make a concurrent step
of the organisation fail.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, update

from pubdata import audit
from pubdata.db.models import Incident, aware
from pubdata.workflow.incidents import IncidentState, Severity, tell_about
from pubdata.workflow.parties import competent_people
from pubdata.workflow.working_days import LOCAL_TZ, is_working_day, working_days_between
from pubdata.workspace import Workspace

#: Working days after the report before a grave, unresolved incident is brought up again. A week
#: of work: time to contain and remediate, short enough that a stalled case does not go unnoticed.
REMIND_AFTER_WORKING_DAYS = 5
#: Grades that are brought up again.
GRAVE = (Severity.ESPECIALLY_MAJOR, Severity.MAJOR)
#: States in which remediation is not finished.
UNRESOLVED = (IncidentState.REPORTED, IncidentState.REMEDIATING)
ACTOR = "system:tick"


def remind_grave_incidents(workspace: Workspace, now: dt.datetime) -> int:
    """Remind the competent department of grave incidents left unresolved; returns how many."""
    now = now.astimezone(dt.UTC)  # SQLite drops the zone: store and compare UTC only
    today = now.astimezone(LOCAL_TZ).date()
    if not is_working_day(today):
        return 0
    start_of_today = dt.datetime.combine(today, dt.time(), tzinfo=LOCAL_TZ).astimezone(dt.UTC)
    with workspace.sessions() as session:
        candidates = session.execute(
            select(Incident.id, Incident.reported_at).where(
                Incident.severity.in_([s.value for s in GRAVE]),
                Incident.state.in_([s.value for s in UNRESOLVED]),
            )
        ).all()
    due = [i for i, at in candidates if working_days_between(aware(at), now) >= REMIND_AFTER_WORKING_DAYS]
    reminded = 0
    for incident_id in due:
        with workspace.sessions() as session, session.begin():
            claimed = session.execute(
                update(Incident)
                .where(
                    Incident.id == incident_id,
                    Incident.state.in_([s.value for s in UNRESOLVED]),
                    or_(Incident.notified_at.is_(None), Incident.notified_at < start_of_today),
                )
                .values(notified_at=now)
                .execution_options(synchronize_session=False)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                continue
            incident = session.get_one(Incident, incident_id)
            org = incident.organisation
            told = competent_people(session, org.division_code)
            settings = workspace.settings.for_tenant(org.division_code)
            tell_about(session, told, incident, "incident.reminder", org.name, settings)
            audit.record(
                session,
                ACTOR,
                "incident.remind",
                f"incident:{incident.id}",
                severity=incident.severity,
                state=incident.state,
                working_days_open=working_days_between(aware(incident.reported_at), now),
                notified=[u.login for u in told],
                req="REQ-28",
            )
            reminded += 1
    return reminded
