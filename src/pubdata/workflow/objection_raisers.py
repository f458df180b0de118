"""Who may raise an objection (REQ-12), and which records a data subject may name.

A consumer objects for an organisation: staff (consumer or provider role) of an organisation that
may read the entry — it holds a grant, or the entry is shared unconditionally.

A data subject objects as a person, to records about that person. That needs to know who the
person is: a verified identity (REQ-7), which arrives with open data. Until an account carries one,
`verified_identity` answers None and a data-subject objection is refused (`IdentityNotVerified`,
audited), so a private account (a citizen, an open-data user) cannot object at all. Were an
unverified "data subject" allowed, anyone signed in could flag any record: 26 objections of 1,000
arbitrary identity numbers were enough to mark a whole population entry as disputed.

Once `User` holds a verified identity number in the attribute `VERIFIED_IDENTITY` (filled only by
the verification step, never by the person), `verified_identity` returns it and
`require_own_records` holds the subject to records whose identity-number key equals it.

Example:
    >>> from pubdata.db.models import CatalogEntry, CatalogField
    >>> entry = CatalogEntry(
    ...     code="persons", key_fields=["id_number"],
    ...     fields=[CatalogField(name="id_number", validator="id_number")],
    ... )
    >>> require_own_records("alice", "11010519491231002X", entry, [{"id_number": "11010519491231002X"}])
    >>> require_own_records("alice", "11010519491231002X", entry, [{"id_number": "330103198001010011"}])
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pubdata.workflow.objection_raisers.NotOwnRecords: alice may object ... record 1 is about someone else
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pubdata.catalog.classes import ShareClass
from pubdata.db.models import CatalogEntry, Grant, User
from pubdata.gateway.grants import grant_state
from pubdata.gateway.roles import NotAuthorised, Principal, Role
from pubdata.messages import text
from pubdata.workflow.objection_states import RaiserKind

#: The `User` attribute that will hold the identity number the verification step (REQ-7) confirmed.
VERIFIED_IDENTITY = "verified_id_number"
#: The validator that marks a key field as a person's identity number.
IDENTITY_VALIDATOR = "id_number"
#: Roles that object for an organisation.
ORGANISATION_ROLES = (Role.CONSUMER, Role.PROVIDER)


class IdentityNotVerified(NotAuthorised):
    """A data-subject objection from an account whose identity nobody verified (REQ-7)."""


class NotOwnRecords(NotAuthorised):
    """A data subject named a record that is not about them."""


def verified_identity(user: User) -> str | None:
    """The identity number verified for `user`, or None (every account, until REQ-7 lands)."""
    found = getattr(user, VERIFIED_IDENTITY, None)
    return found.strip().upper() if isinstance(found, str) and found.strip() else None


def may_raise(
    session: Session, principal: Principal, entry: CatalogEntry, kind: RaiserKind, now: dt.datetime
) -> str | None:
    """The caller's verified identity for a data-subject objection (None for a consumer's), once the
    caller may object to `entry` as `kind`; `NotAuthorised` otherwise."""
    login = principal.user.login
    if kind is RaiserKind.DATA_SUBJECT:
        identity = verified_identity(principal.user)
        if identity is None:
            raise IdentityNotVerified(
                text(
                    "{login} may not object as a data subject: that needs a verified identity (REQ-7), "
                    "which this account does not have; objections are raised by staff of an "
                    "organisation that may read the entry",
                    login=login,
                )
            )
        return identity
    org = principal.organisation
    if principal.has_role(*ORGANISATION_ROLES) and org is not None:
        if entry.share_class is ShareClass.UNCONDITIONAL:
            return None
        grants = session.scalars(
            select(Grant).where(Grant.entry_id == entry.id, Grant.organisation_id == org.id)
        )
        # Held: neither revoked nor expired (a grant that starts later is held already).
        if any(grant_state(g, now) in {"active", "pending"} for g in grants):
            return None
    raise NotAuthorised(
        text(
            "{login} may not object to {code}: only staff of an organisation holding a grant on it "
            "(any organisation for an unconditionally shared entry) may",
            login=login,
            code=entry.code,
        )
    )


def require_own_records(
    login: str, identity: str, entry: CatalogEntry, records: Sequence[Mapping[str, Any]]
) -> None:
    """Refuse unless every record's identity-number key fields equal `identity` (records as stored:
    `objection_records.check_records` has normalised them)."""
    identity = identity.strip().upper()
    fields = {f.name: f for f in entry.fields}
    keys = [
        str(k)
        for k in entry.key_fields
        if getattr(fields.get(str(k)), "validator", None) == IDENTITY_VALIDATOR
    ]
    if not keys:
        raise NotOwnRecords(
            text(
                "{login} may not object to {code} as a data subject: its records are not keyed by a "
                "person's identity number",
                login=login,
                code=entry.code,
            )
        )
    for row, record in enumerate(records, start=1):
        if any(str(record.get(k, "")).upper() != identity for k in keys):
            raise NotOwnRecords(
                text(
                    "{login} may object as a data subject only to records about themselves: "
                    "record {row} is about someone else",
                    login=login,
                    row=row,
                )
            )
