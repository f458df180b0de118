"""The states of an objection (REQ-12) and the moves between them, as data.

``submitted → accepted | rejected``; an accepted objection is flagged at once (its records are now
disputed in every gateway answer); the provider verifies the records as ``corrected`` (a new
dataset version) or ``upheld`` (they were right), and either way they are ``unflagged``; then the
objection is ``archived``. A rejected objection may be archived too. Each move names who may make
it; the steps with a working-day deadline (REQ-13) name their deadline step and who waits on it.

Example:
    >>> transition("accept", ObjectionState.SUBMITTED).target
    <ObjectionState.ACCEPTED: 'accepted'>
    >>> transition("accept", ObjectionState.FLAGGED)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pubdata.errors.RuleViolation: an objection that is flagged (已标注异议) cannot be accepted; ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pubdata.errors import RuleViolation
from pubdata.gateway.disputed import FLAGGED
from pubdata.messages import text
from pubdata.vocabulary import Labelled


class ObjectionState(Labelled):
    SUBMITTED = "submitted", "已提交"
    ACCEPTED = "accepted", "已受理"
    REJECTED = "rejected", "不予受理"
    FLAGGED = FLAGGED, "已标注异议"
    CORRECTED = "corrected", "已更正"
    UPHELD = "upheld", "经核实无误"
    UNFLAGGED = "unflagged", "已撤销标注"
    ARCHIVED = "archived", "已归档"


class Actor(StrEnum):
    """Who makes a move: staff of a competent department over the provider, the provider's staff,
    or the platform itself (a move that follows another in the same transaction, or a tick task)."""

    COMPETENT = "competent"
    PROVIDER = "provider"
    PLATFORM = "platform"


class RaiserKind(Labelled):
    CONSUMER = "consumer", "数据使用方"
    DATA_SUBJECT = "data_subject", "数据主体"


@dataclass(frozen=True)
class Transition:
    action: str
    source: ObjectionState
    target: ObjectionState
    actor: Actor
    #: A refusal or an "it was right" needs a reason the raiser can read.
    needs_reason: bool = False


_S = ObjectionState
TRANSITIONS: tuple[Transition, ...] = (
    Transition("accept", _S.SUBMITTED, _S.ACCEPTED, Actor.COMPETENT),
    Transition("reject", _S.SUBMITTED, _S.REJECTED, Actor.COMPETENT, needs_reason=True),
    Transition("flag", _S.ACCEPTED, _S.FLAGGED, Actor.PLATFORM),
    Transition("correct", _S.FLAGGED, _S.CORRECTED, Actor.PROVIDER),
    Transition("uphold", _S.FLAGGED, _S.UPHELD, Actor.PROVIDER, needs_reason=True),
    Transition("unflag", _S.CORRECTED, _S.UNFLAGGED, Actor.PLATFORM),
    Transition("unflag", _S.UPHELD, _S.UNFLAGGED, Actor.PLATFORM),
    Transition("archive", _S.UNFLAGGED, _S.ARCHIVED, Actor.COMPETENT),
    Transition("archive", _S.REJECTED, _S.ARCHIVED, Actor.COMPETENT),
)

#: States with a working-day deadline: the step of `working_days.deadline_for` and who it waits on.
DEADLINE_STEPS: Mapping[ObjectionState, tuple[str, Actor]] = {
    _S.SUBMITTED: ("objection_accept", Actor.COMPETENT),
    _S.FLAGGED: ("objection_verify", Actor.PROVIDER),
}
#: States in which someone still has to act, and who.
WAITING_ON: Mapping[ObjectionState, Actor] = {
    _S.SUBMITTED: Actor.COMPETENT,
    _S.FLAGGED: Actor.PROVIDER,
    _S.UNFLAGGED: Actor.COMPETENT,
    _S.REJECTED: Actor.COMPETENT,
}
#: States the automatic archiving (a tick task) closes after `ARCHIVE_AFTER_DAYS` calendar days.
ARCHIVABLE = (_S.UNFLAGGED, _S.REJECTED)
ARCHIVE_AFTER_DAYS = 30


def transition(action: str, state: ObjectionState) -> Transition:
    """The move `action` from `state`; a `RuleViolation` naming the state it needs otherwise."""
    moves = [t for t in TRANSITIONS if t.action == action]
    if not moves:
        raise RuleViolation(text("unknown objection action {action!r}", action=action), "REQ-12")
    for move in moves:
        if move.source is state:
            return move
    needed = " or ".join(m.source.value for m in moves)
    raise RuleViolation(
        text(
            "an objection that is {state} ({label}) cannot be {done}; it must be {needed}",
            state=state.value,
            label=state.label,
            done=PAST.get(action, action),
            needed=needed,
        ),
        "REQ-12",
    )


#: Past participles of the actions, for messages.
PAST: Mapping[str, str] = {
    "accept": "accepted",
    "reject": "rejected",
    "flag": "flagged",
    "correct": "corrected",
    "uphold": "upheld",
    "unflag": "unflagged",
    "archive": "archived",
}
