"""Refusals of bad input, and asks for other organisations' items, on the audit log (REQ-40).

The services audit a refusal by a rule (`RuleViolation`) where they raise it, but bad input — a
decision wider than the request, a period beyond the one asked, a revocation without a reason, a
token for longer than ``max_token_days`` — is refused with `InputError` before anything is written,
and the rollback left no trace that someone tried. Each face (API, portal, command line) wraps its
workflow, grant and token actions in `refusals_audited`, which writes the refusal in a transaction
of its own once the action's has rolled back: who (login and organisation), through which face, and
why — the error's code, its sentence as the constant template the code wrote (never the values it
was filled with: they may be a secret or a policy's literal), and the input it points at.

A request, grant, objection or incident the caller may not see answers 404 exactly like one that
does not exist; `denials_audited` writes who asked for which id (``access.denied``) and lets the
same 404 through, so the log shows the probing while the answer still tells the prober nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from pubdata import audit
from pubdata.errors import InputError, NotFound, PubdataError
from pubdata.gateway.roles import Principal

#: The faces an action comes through, as the events name them.
API, PORTAL, CLI = "api", "portal", "cli"
#: The action of an ask for an item the caller may not see (or that does not exist).
DENIED = "access.denied"
#: What a refusal without a sentence of its own says (the error carried no template).
_UNSAID = "the input was refused"


@dataclass(frozen=True)
class Asker:
    """Who acts, for the record: their login, their organisation, the face they came through."""

    actor: str
    organisation: str | None
    channel: str

    @classmethod
    def of(cls, principal: Principal, channel: str) -> Asker:
        organisation = principal.organisation
        return cls(principal.user.login, organisation.name if organisation else None, channel)


def error_code(error: PubdataError) -> str:
    """The code the API and the command line answer with for these refusals."""
    return "not_found" if isinstance(error, NotFound) else "invalid"


def safe_reason(error: PubdataError) -> str:
    """The error's sentence as its template: a constant of the code, without the values filled in.

    >>> from pubdata.messages import text
    >>> safe_reason(InputError(text("a token lives 1 to {most} days, not {days}", most=90, days=91)))
    'a token lives 1 to {most} days, not {days}'
    """
    said = error.text
    return said.template if said is not None else _UNSAID


def _unaudited(error: PubdataError) -> bool:
    """Bad input, a thing not there, or a plain platform error: the refusals no service audits.

    A rule's refusal (`RuleViolation`) and a wrong role or organisation (`NotAuthorised`) are
    audited where they are raised; writing them here too would record each attempt twice.
    """
    return isinstance(error, InputError | NotFound) or type(error) is PubdataError


def _write(sessions: Callable[[], Session], asker: Asker, action: str, target: str, **detail: Any) -> None:
    with sessions() as session, session.begin():
        audit.record(
            session, asker.actor, action, target, "refused",
            organisation=asker.organisation, channel=asker.channel, **detail,
        )  # fmt: skip


@contextmanager
def refusals_audited(
    sessions: Callable[[], Session], asker: Asker, action: str, target: str
) -> Iterator[None]:
    """Audit `action` on `target` as refused when the block raises bad input, then re-raise.

    Wrap the whole transaction of the action, so that the refusal is written after its rollback.
    """
    try:
        yield
    except PubdataError as error:
        if not _unaudited(error):
            raise
        column = error.column if isinstance(error, InputError) else None
        _write(
            sessions, asker, action, target,
            code=error_code(error), reason=safe_reason(error), **({"column": column} if column else {}),
        )  # fmt: skip
        raise


@contextmanager
def denials_audited(
    sessions: Callable[[], Session], asker: Asker, kind: str, ident: int | str
) -> Iterator[None]:
    """Audit an ask for the `kind` item `ident` that the block answers as not found, then re-raise.

    Whether the item exists is not written down here either: the event is the same for an id that
    belongs to another organisation and for one that was never given out.
    """
    try:
        yield
    except NotFound:
        _write(sessions, asker, DENIED, f"{kind}:{ident}", code="not_found", kind=kind, id=str(ident))
        raise
