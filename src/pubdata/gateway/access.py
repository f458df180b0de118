"""Access decisions (REQ-14, 17, 26, 27, 31): which rule lets a caller read an entry, and as what.

Deny unless a rule allows. For each entry a query names, the first rule that applies decides:

1. a draft, retired or classified entry is refused (a draft as an unknown entry: see `decide`);
2. the provider reading its own entry sees it raw — all fields, all rows (its own data is not shared);
3. national core or important data (REQ-31) is read only through a grant, whatever its sharing class;
4. a not-shared entry is refused: only its provider reads it (REQ-14);
5. a restricted entry is read only through a grant to the caller's organisation and application
   that is within its period, not revoked, and made for the stated purpose (REQ-17);
6. an unconditional entry may be read by any government organisation — every registered
   organisation is one of the four holder types of REQ-2 — de-identified by the default rules for
   each field's level and PII kind (REQ-27); a grant made for the stated purpose applies instead.

Purpose: the stated purpose matches a grant when, trimmed, with runs of white space made one and
case ignored, it equals the grant's purpose text, or when it names the grant as ``grant:<id>`` (the
grant's purpose code — each grant is made for exactly one purpose). A caller who holds a grant in
its period but states another purpose is refused as "outside purpose" (rule ``outside_purpose``),
which the audit report of REQ-41 lists. A preview (the entry page's sample rows) states no purpose
(``purpose=None``): it reads through the caller's newest grant in force for the application,
whatever that grant's purpose, since nobody claimed one.

Then REQ-26: when two or more of the entries show person-level data in the columns the caller gets
(a field of a person's PII kind, or any field of level L3 or above — see `assessments`), an approved,
unexpired security assessment must cover every one of them, else the query is refused.

Every refusal is an `AccessDenied` naming the entry and the rule, audited as ``access.decide`` with
outcome ``refused`` in a transaction of its own, so it stays on record when the request fails.
A decision that allows is not audited here: the call that uses it writes one event with its rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from pubdata.audit import record_refusal as _record_refusal
from pubdata.catalog.classes import EntryState, NationalLevel, OrgType, ShareClass
from pubdata.db.models import Application, CatalogEntry, Grant, Organisation, SecurityAssessment, aware
from pubdata.gateway.access_rules import AccessDenied, AccessRule
from pubdata.gateway.assessments import assess_level, find_covering, holds_person_data
from pubdata.gateway.compile_policy import compile_table_policy
from pubdata.gateway.grants import grant_state
from pubdata.gateway.policy_types import QueryPolicy, TablePolicy
from pubdata.gateway.raw_assessments import deid_below_floor
from pubdata.gateway.roles import Principal
from pubdata.gateway.visibility import QUERY_ROLES, SENSITIVE_NATIONAL, VisibleEntry, visible_page
from pubdata.keys import workspace_key
from pubdata.messages import Text, text
from pubdata.settings import Settings

__all__ = [
    "AccessDecision",
    "AccessDenied",
    "AccessRule",
    "VisibleEntry",
    "compile_table_policy",
    "decide",
    "purpose_matches",
    "visible_entries",
]

#: Organisations that count as government for unconditional sharing: the four holder types (REQ-2).
GOVERNMENT_TYPES = frozenset(OrgType)
#: Roles that may query shared data at all; an auditor or an administrator reads the audit trail.
_GRANT_CODE = re.compile(r"grant:(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class AccessDecision:
    """What one request may read: the policy for the rewrite and the secrets for the engine."""

    policy: QueryPolicy
    #: Session variables (pseudonym keys) the engine sets for this request; never shown to anyone.
    variables: Mapping[str, bytes] = field(repr=False)
    #: The grant that allowed each entry (lower-case code), None where no grant was needed.
    grants: Mapping[str, Grant | None]
    #: The rule that allowed each entry, with the REQ it implements.
    reasons: Mapping[str, str]
    #: The assessment that covered a combination of person-level entries (REQ-26), if one was needed.
    assessment: SecurityAssessment | None = None


# --- decisions ---------------------------------------------------------------------------------


def purpose_matches(grant: Grant, stated: str | None) -> bool:
    """The documented matching rule (see the module docstring); a preview (None) matches any grant."""
    if stated is None:
        return True
    code = _GRANT_CODE.fullmatch(stated.strip())
    if code:
        return int(code.group(1)) == grant.id
    return _normal(stated) == _normal(grant.purpose)


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass
class _Request:
    session: Session
    principal: Principal
    application: str
    purpose: str | None
    entries: Sequence[str]

    def refuse(self, message: Text, rule: AccessRule, req: str | None, entry: str | None = None) -> NoReturn:
        org = self.principal.organisation
        detail = {
            "reason": f"{message} ({req})" if req else str(message),
            "req": req,
            "rule": rule.value,
            "organisation": org.name if org else None,
            "application": self.application,
            "purpose": self.purpose,
            "entries": list(self.entries),
        }
        _record_refusal(self.session, self.principal.user.login, "access.decide", entry or "", **detail)
        raise AccessDenied(message, rule, req, entry)

    def organisation(self) -> Organisation:
        """The caller's organisation: shared data is for public bodies, so none is refused."""
        org = self.principal.organisation
        if org is None:
            self.refuse(
                text("shared data is for public bodies; this account has no organisation"),
                AccessRule.NO_ORGANISATION,
                "REQ-14",
            )
        return org


def _load_entries(session: Session, codes: Iterable[str]) -> dict[str, CatalogEntry]:
    lowered = sorted({c.strip().lower() for c in codes})
    query = (
        select(CatalogEntry)
        .where(func.lower(CatalogEntry.code).in_(lowered))
        .options(selectinload(CatalogEntry.fields), selectinload(CatalogEntry.provider))
    )
    return {e.code.lower(): e for e in session.scalars(query)}


def _grant_for(
    request: _Request,
    entry: CatalogEntry,
    app: Application,
    now: dt.datetime,
    *,
    needed: tuple[str, str] | None,
    coordinated_only: bool = False,
) -> Grant | None:
    """The newest active grant of this organisation + application for the stated purpose.

    When the entry can be read only through a grant (`needed`: why, and the REQ), a miss is refused with
    what would fix it: a grant for this purpose that expired, was revoked or has not started;
    grants in force for other purposes (outside purpose); or no grant for this application at all.
    """
    org = request.organisation()
    query = select(Grant).where(Grant.organisation_id == org.id, Grant.entry_id == entry.id)
    if coordinated_only:
        query = query.where(Grant.coordination.is_not(None))
    held = list(request.session.scalars(query.order_by(Grant.id.desc())))
    mine = [g for g in held if g.application_id == app.id]
    for_purpose = [g for g in mine if purpose_matches(g, request.purpose)]
    found = next((g for g in for_purpose if grant_state(g, now) == "active"), None)
    if found is not None or needed is None:
        return found
    code, (why, req) = entry.code, needed
    if for_purpose:
        newest = for_purpose[0]
        request.refuse(
            _not_active(why, code, newest, app.code, now), AccessRule.GRANT_NOT_ACTIVE, "REQ-17", code
        )
    active = [g for g in mine if grant_state(g, now) == "active"]
    if active:
        request.refuse(
            _outside_purpose(active, code, app.code, request.purpose or ""),
            AccessRule.OUTSIDE_PURPOSE,
            "REQ-17",
            code,
        )
    others = sorted({g.application.code for g in held if grant_state(g, now) == "active"} - {app.code})
    request.refuse(_no_grant(why, code, org.name, app.code, others), AccessRule.NO_GRANT, req, code)


#: Why an entry is read only through a grant: restricted sharing, or national core/important data.
_RESTRICTED = "restricted"


def _why(national: NationalLevel | None) -> str:
    return _RESTRICTED if national is None else national.label


def _not_active(why: str, code: str, grant: Grant, app: str, now: dt.datetime) -> Text:
    """The grant for this purpose exists but is not in force: say since or until when, and what to do."""
    state = grant_state(grant, now)
    values = {"code": code, "grant": grant.id, "app": app}
    if why == _RESTRICTED:
        if state == "revoked":
            return text(
                "entry {code} is restricted (受限共享); grant {grant} of {code} to {app} "
                "was revoked on {day:%Y-%m-%d}: renew it or apply again",
                day=aware(grant.revoked_at or now),
                **values,
            )
        if state == "expired":
            return text(
                "entry {code} is restricted (受限共享); grant {grant} of {code} to {app} "
                "expired on {day:%Y-%m-%d}: renew it or apply again",
                day=aware(grant.valid_until),
                **values,
            )
        return text(
            "entry {code} is restricted (受限共享); grant {grant} of {code} to {app} "
            "starts on {day:%Y-%m-%d}: renew it or apply again",
            day=aware(grant.valid_from),
            **values,
        )
    if state == "revoked":
        return text(
            "entry {code} holds {level}: only through a grant; grant {grant} of {code} to {app} "
            "was revoked on {day:%Y-%m-%d}: renew it or apply again",
            level=why,
            day=aware(grant.revoked_at or now),
            **values,
        )
    if state == "expired":
        return text(
            "entry {code} holds {level}: only through a grant; grant {grant} of {code} to {app} "
            "expired on {day:%Y-%m-%d}: renew it or apply again",
            level=why,
            day=aware(grant.valid_until),
            **values,
        )
    return text(
        "entry {code} holds {level}: only through a grant; grant {grant} of {code} to {app} "
        "starts on {day:%Y-%m-%d}: renew it or apply again",
        level=why,
        day=aware(grant.valid_from),
        **values,
    )


def _outside_purpose(active: list[Grant], code: str, app: str, stated: str) -> Text:
    """Grants in force for other purposes: name each one's purpose, so the caller can state it."""
    if len(active) == 1:
        return text(
            "outside purpose: {code} is granted to {app} for grant {grant}: {granted!r}, not {purpose!r}",
            code=code,
            app=app,
            grant=active[0].id,
            granted=active[0].purpose,
            purpose=stated,
        )
    return text(
        "outside purpose: {code} is granted to {app} for {allowed}, not {purpose!r}",
        code=code,
        app=app,
        allowed="; ".join(f"grant {g.id}: {g.purpose!r}" for g in active),
        purpose=stated,
    )


def _no_grant(why: str, code: str, org: str, app: str, others: list[str]) -> Text:
    """No grant at all for this application and purpose; name the applications that hold one."""
    values = {"code": code, "org": org, "app": app}
    if why == _RESTRICTED and others:
        return text(
            "entry {code} is restricted (受限共享): {org} holds no grant of it for application {app} "
            "and this purpose (it is granted to application {others}); apply through a sharing request",
            others=", ".join(others),
            **values,
        )
    if why == _RESTRICTED:
        return text(
            "entry {code} is restricted (受限共享): {org} holds no grant of it for application {app} "
            "and this purpose; apply through a sharing request",
            **values,
        )
    if others:
        return text(
            "entry {code} holds {level}: only through a grant: {org} holds no grant of it for "
            "application {app} and this purpose (it is granted to application {others}); "
            "apply through a sharing request",
            level=why,
            others=", ".join(others),
            **values,
        )
    return text(
        "entry {code} holds {level}: only through a grant: {org} holds no grant of it for "
        "application {app} and this purpose; apply through a sharing request",
        level=why,
        **values,
    )


def _application(request: _Request) -> Application:
    org = request.organisation()
    app = request.session.scalar(select(Application).where(Application.code == request.application.strip()))
    if app is None or app.organisation_id != org.id:
        request.refuse(
            text("application {app!r} is not registered to {org}", app=request.application, org=org.name),
            AccessRule.APPLICATION,
            "REQ-17",
        )
    if not app.active:
        request.refuse(
            text("application {code} is deactivated", code=app.code), AccessRule.APPLICATION, "REQ-17"
        )
    return app


def _national_level(entry: CatalogEntry) -> NationalLevel | None:
    levels = {entry.national_level, *(f.national_level for f in entry.fields)}
    return next((level for level in SENSITIVE_NATIONAL if level in levels), None)


def _allow(
    request: _Request, entry: CatalogEntry, app: Application, now: dt.datetime
) -> tuple[Grant | None, str]:
    """The grant (or None) and the reason that let `entry` be read; refuses otherwise."""
    org = request.organisation()
    code = entry.code
    if entry.classified:
        request.refuse(
            text("entry {code} is classified (涉密): out of scope", code=code),
            AccessRule.CLASSIFIED,
            "REQ-1",
            code,
        )
    if entry.state is not EntryState.PUBLISHED:
        request.refuse(
            text("entry {code} is {state}, not published", code=code, state=entry.state.value),
            AccessRule.NOT_PUBLISHED,
            None,
            code,
        )
    if entry.provider_id == org.id:
        return None, f"{AccessRule.OWN_DATA}: {org.name} provides {code}"
    if entry.share_class is ShareClass.NOT_SHARED:
        # Only a grant the competent department coordinated opens it (REQ-16); a grant made while
        # the entry was restricted does not survive its reclassification.
        grant = _grant_for(request, entry, app, now, needed=None, coordinated_only=True)
        if grant is None:
            request.refuse(
                text(
                    "entry {code} is not shared (不予共享): only its provider {provider} reads it, "
                    "and others only through a grant coordinated by the competent department",
                    code=code,
                    provider=entry.provider.name,
                ),
                AccessRule.NOT_SHARED,
                "REQ-14",
                code,
            )
        return grant, f"{AccessRule.GRANT}: grant {grant.id} v{grant.policy_version}, coordinated (REQ-16)"
    national = _national_level(entry)
    if national is not None:
        needed: tuple[str, str] | None = (_why(national), "REQ-31")
    elif entry.share_class is ShareClass.UNCONDITIONAL and org.org_type in GOVERNMENT_TYPES:
        needed = None
    else:
        needed = (_why(None), "REQ-14")
    grant = _grant_for(request, entry, app, now, needed=needed)
    if grant is not None:
        return grant, f"{AccessRule.GRANT}: grant {grant.id} v{grant.policy_version} (REQ-17)"
    return None, f"{AccessRule.UNCONDITIONAL}: default de-identification (REQ-27)"


def decide(
    session: Session,
    principal: Principal,
    application_code: str,
    purpose: str | None,
    entry_codes: Iterable[str],
    now: dt.datetime,
    settings: Settings,
    home: Path,
    *,
    row_limit: int | None = 10_000,
) -> AccessDecision:
    """Allow the request as a whole, or raise `AccessDenied` (audited) for the first rule it breaks.

    `purpose` None is a preview's: no purpose stated, so none is checked (see the module docstring).
    """
    codes = list(dict.fromkeys(c.strip() for c in entry_codes if c.strip()))
    request = _Request(session, principal, application_code, purpose, codes)
    org = request.organisation()
    if not principal.has_role(*QUERY_ROLES):
        request.refuse(
            text("{login} holds neither the consumer nor the provider role", login=principal.user.login),
            AccessRule.ROLE,
            "REQ-4",
        )
    if purpose is not None and not purpose.strip():
        request.refuse(text("state the purpose of the request"), AccessRule.PURPOSE_MISSING, "REQ-17")
    app = _application(request)
    found = _load_entries(session, codes)
    master = workspace_key(home, "pseudonym")
    tables: list[TablePolicy] = []
    variables: dict[str, bytes] = {}
    grants: dict[str, Grant | None] = {}
    reasons: dict[str, str] = {}
    person_level: list[CatalogEntry] = []
    for code in codes:
        entry = found.get(code.lower())
        # A draft is the provider's work in progress, absent from the public catalogue (its routes
        # answer 404): the gateway must not confirm that it exists either, so it is refused with
        # the unknown entry's words and rule, byte for byte.
        if entry is None or entry.state is EntryState.DRAFT:
            request.refuse(
                text("no catalogue entry {code!r}", code=code), AccessRule.UNKNOWN_ENTRY, None, code
            )
        grant, reason = _allow(request, entry, app, now)
        # A grant made before the floor, or under an assessment since expired, serves no more than it.
        below = deid_below_floor(session, entry, org.id, grant.fields, grant.deid, now) if grant else None
        if below is not None:
            request.refuse(below.sentence, AccessRule.DEID_FLOOR, below.req, entry.code)
        policy, needed = compile_table_policy(entry, grant, org, master, now)
        tables.append(policy)
        variables.update(needed)
        grants[entry.code.lower()], reasons[entry.code.lower()] = grant, reason
        if holds_person_data(entry, policy.columns):
            person_level.append(entry)
    assessment = None
    if len(person_level) >= 2:
        combined = [e.code for e in person_level]
        assessment = find_covering(session, combined, now, org.id)
        if assessment is None:
            request.refuse(
                text(
                    "combining {entries} (person-level data, result level L{level}) needs an approved "
                    "security assessment covering them; none is on record",
                    entries=", ".join(combined),
                    level=assess_level(person_level),
                ),
                AccessRule.ASSESSMENT,
                "REQ-26",
                ",".join(combined),
            )
    return AccessDecision(
        QueryPolicy.of(*tables, row_limit=row_limit), variables, grants, reasons, assessment
    )


# --- the catalogue a caller may query -----------------------------------------------------------


def visible_entries(session: Session, principal: Principal, now: dt.datetime) -> list[VisibleEntry]:
    """Published entries the principal's organisation may query now, by code; [] without one.

    The whole list; the catalogue pages use `visibility.visible_page`, which pages in SQL.
    """
    return visible_page(session, principal, now, limit=None)
