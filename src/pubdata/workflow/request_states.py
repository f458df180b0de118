"""The states of a requested entry and the steps between them (REQ-16), as data.

A transition is a (state, action) pair with the state it leads to and the party who may take it.
The service, the API, the CLI and the tests all read `TRANSITIONS`, so a new step is a line here,
not a branch in four places. The competent department's check and its coordinated approval are the
steps whose outcome depends on the entry: `after_check` and `after_coordination` pick it from the
sharing class. A coordinated approval of a not-shared entry waits for a countersignature (会签) —
the provider's consent, or a second competent-department person, as `not_shared_consent` says —
so that no single person opens data its provider classed not shared.

Example:
    >>> transition(ItemState.PENDING_DECISION, Action.REFUSE).to
    (<ItemState.REFUSED: 'refused'>,)
    >>> after_check(ShareClass.UNCONDITIONAL, dispute_reason=None)
    <ItemState.APPROVED: 'approved'>
    >>> transition(ItemState.APPROVED, Action.APPROVE)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pubdata.errors.RuleViolation: the item is already decided: it is approved (已批准) now, ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from pubdata.catalog.classes import ShareClass
from pubdata.errors import RuleViolation
from pubdata.messages import text
from pubdata.vocabulary import Labelled


class ItemState(Labelled):
    """Where the decision about one requested entry stands."""

    DRAFT = "draft", "草稿"
    PENDING_CHECK = "pending_check", "待审核"
    PENDING_DECISION = "pending_decision", "待提供单位答复"
    IN_COORDINATION = "in_coordination", "协调中"
    APPROVED = "approved", "已批准"
    RETURNED = "returned", "已退回"
    REFUSED = "refused", "已拒绝"
    CLOSED = "closed", "协调维持拒绝"
    WITHDRAWN = "withdrawn", "已撤回"
    REVOKED = "revoked", "已撤销"
    PENDING_RENEWAL = "pending_renewal", "待续期答复"
    PENDING_CONSENT = "pending_consent", "待会签"
    EXPIRED = "expired", "已到期"


class Action(Labelled):
    """What a party does to an item; the value is the API's path segment and the audit suffix."""

    SUBMIT = "submit", "提交"
    CHECK = "check", "审核通过"
    RETURN = "return", "退回"
    APPROVE = "approve", "同意"
    REFUSE = "refuse", "拒绝"
    DISPUTE = "dispute", "提出异议"
    COORDINATE_APPROVE = "coordinate-approve", "协调同意"
    COORDINATE_UPHOLD = "coordinate-uphold", "协调维持拒绝"
    WITHDRAW = "withdraw", "撤回"
    REVOKE = "revoke", "撤销"
    RENEW = "renew", "申请续期"
    APPROVE_RENEWAL = "approve-renewal", "同意续期"
    REFUSE_RENEWAL = "refuse-renewal", "拒绝续期"
    CONSENT = "consent", "会签同意"
    WITHHOLD_CONSENT = "withhold-consent", "会签不同意"
    ESCALATE = "escalate", "超期督办"
    EXPIRE = "expire", "到期"


class Party(Labelled):
    """Who may act: a role of a particular organisation, never merely the role."""

    REQUESTER = "requester", "申请单位（使用单位）"
    PROVIDER = "provider", "提供单位"
    COMPETENT = "competent", "主管部门"
    PROVIDER_OR_COMPETENT = "provider_or_competent", "提供单位或主管部门"
    #: Who countersigns a coordinated approval of not-shared data: a setting chooses (`duties`).
    COUNTERSIGNER = "countersigner", "会签方（提供单位或另一名主管部门人员）"
    SYSTEM = "system", "平台定时任务"


@dataclass(frozen=True)
class Transition:
    #: The possible next states; only the check has more than one (see `after_check`).
    to: tuple[ItemState, ...]
    party: Party
    #: Whether the actor must say why (refusals, returns, disputes, revocations).
    needs_reason: bool = False
    #: Whether the step ends in a grant being made or changed.
    grants: bool = False


S, A, P = ItemState, Action, Party
#: (state, action) → transition. Everything the workflow allows is here, and nothing else.
TRANSITIONS: Final[Mapping[tuple[ItemState, Action], Transition]] = {
    (S.DRAFT, A.SUBMIT): Transition((S.PENDING_CHECK,), P.REQUESTER),
    (S.PENDING_CHECK, A.CHECK): Transition(
        (S.APPROVED, S.PENDING_DECISION, S.IN_COORDINATION), P.COMPETENT, grants=True
    ),
    (S.PENDING_CHECK, A.RETURN): Transition((S.RETURNED,), P.COMPETENT, needs_reason=True),
    (S.PENDING_DECISION, A.APPROVE): Transition((S.APPROVED,), P.PROVIDER, grants=True),
    (S.PENDING_DECISION, A.REFUSE): Transition((S.REFUSED,), P.PROVIDER, needs_reason=True),
    (S.REFUSED, A.DISPUTE): Transition((S.IN_COORDINATION,), P.REQUESTER, needs_reason=True),
    (S.IN_COORDINATION, A.COORDINATE_APPROVE): Transition(
        (S.APPROVED, S.PENDING_CONSENT), P.COMPETENT, grants=True
    ),
    (S.IN_COORDINATION, A.COORDINATE_UPHOLD): Transition((S.CLOSED,), P.COMPETENT, needs_reason=True),
    (S.PENDING_CHECK, A.WITHDRAW): Transition((S.WITHDRAWN,), P.REQUESTER),
    (S.PENDING_DECISION, A.WITHDRAW): Transition((S.WITHDRAWN,), P.REQUESTER),
    (S.IN_COORDINATION, A.WITHDRAW): Transition((S.WITHDRAWN,), P.REQUESTER),
    (S.PENDING_CONSENT, A.CONSENT): Transition((S.APPROVED,), P.COUNTERSIGNER, grants=True),
    (S.PENDING_CONSENT, A.WITHHOLD_CONSENT): Transition((S.CLOSED,), P.COUNTERSIGNER, needs_reason=True),
    (S.PENDING_CONSENT, A.WITHDRAW): Transition((S.WITHDRAWN,), P.REQUESTER),
    (S.APPROVED, A.REVOKE): Transition((S.REVOKED,), P.PROVIDER_OR_COMPETENT, needs_reason=True),
    (S.PENDING_RENEWAL, A.REVOKE): Transition((S.REVOKED,), P.PROVIDER_OR_COMPETENT, needs_reason=True),
    (S.APPROVED, A.RENEW): Transition((S.PENDING_RENEWAL,), P.REQUESTER),
    (S.PENDING_RENEWAL, A.APPROVE_RENEWAL): Transition((S.APPROVED,), P.PROVIDER, grants=True),
    (S.PENDING_RENEWAL, A.REFUSE_RENEWAL): Transition((S.APPROVED,), P.PROVIDER, needs_reason=True),
    (S.APPROVED, A.EXPIRE): Transition((S.EXPIRED,), P.SYSTEM),
    (S.PENDING_RENEWAL, A.EXPIRE): Transition((S.EXPIRED,), P.SYSTEM),
}
del S, A, P

#: States with a step in progress, each with the deadline step (`working_days.STEP_DEADLINES`).
OPEN_STEPS: Final[Mapping[ItemState, str]] = {
    ItemState.PENDING_CHECK: "check",
    ItemState.PENDING_DECISION: "decide",
    ItemState.IN_COORDINATION: "coordinate",
    ItemState.PENDING_RENEWAL: "decide",
    ItemState.PENDING_CONSENT: "decide",
}
#: States in which an item holds a grant that the expiry task watches.
GRANTED: Final = frozenset({ItemState.APPROVED, ItemState.PENDING_RENEWAL})


def actions_from(state: ItemState, party: Party | None = None) -> list[Action]:
    """The actions possible in `state` (of one party when given), in table order."""
    return [a for (s, a), t in TRANSITIONS.items() if s is state and (party is None or t.party is party)]


def transition(state: ItemState, action: Action) -> Transition:
    """The transition of `action` from `state`, or a refusal saying where the item stands."""
    found = TRANSITIONS.get((state, action))
    if found is not None:
        return found
    if state is ItemState.DRAFT or state in OPEN_STEPS:
        possible = ", ".join(a.value for a in actions_from(state)) or "nothing"
        why = text(
            "the item is {state} ({label}); {action} is not possible now (possible: {possible})",
            state=state.value,
            label=state.label,
            action=action.value,
            possible=possible,
        )
    else:
        why = text(
            "the item is already decided: it is {state} ({label}) now, "
            "and {action} is not possible from there",
            state=state.value,
            label=state.label,
            action=action.value,
        )
    raise RuleViolation(why, "REQ-16")


def after_check(share_class: ShareClass | None, dispute_reason: str | None) -> ItemState:
    """Where a passed check leads: unconditional → granted at once; restricted → the provider
    decides; not shared → only through coordination, and only with a reason for the dispute."""
    if share_class is ShareClass.UNCONDITIONAL:
        return ItemState.APPROVED
    if share_class is ShareClass.NOT_SHARED:
        if not (dispute_reason or "").strip():
            raise RuleViolation(
                text("a not-shared (不予共享) entry is shared only through a dispute: give a dispute reason"),
                "REQ-16",
            )
        return ItemState.IN_COORDINATION
    return ItemState.PENDING_DECISION


def after_coordination(share_class: ShareClass | None) -> ItemState:
    """Where a coordinated approval leads: a not-shared entry waits for its countersignature; any
    other entry (a disputed refusal of restricted data) is granted at once."""
    if share_class is ShareClass.NOT_SHARED:
        return ItemState.PENDING_CONSENT
    return ItemState.APPROVED
