"""Notifications: an in-app inbox for every user, and e-mail when the workspace has an SMTP server.

The inbox row is written in the caller's transaction, so a notification exists exactly when the
change it reports does. E-mail is an outbox: `notify` queues a row in ``outbound_mail`` in that same
transaction, and the mail is sent only after the commit (right away, and again by `deliver_pending`
from ``pubdata tick`` while it keeps failing). A slow or dead mail server therefore never holds a
transaction open nor undoes a workflow step, and every unsent mail stays visible with its reason.

Ways of reaching a user are channels in `CHANNELS`; the built-in inbox and e-mail are two of them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from pubdata.db.models import MailRecipient, Notification, OutboundMail, User
from pubdata.settings import Settings
from pubdata.workflow.notify_smtp import MailError, build_message, send_message

log = logging.getLogger(__name__)

_QUEUED = "pubdata.notify.queued_mail"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Channel(Protocol):
    """A way of reaching users about notifications already added to the session (and flushed)."""

    def deliver(self, session: Session, notifications: Sequence[Notification], settings: Settings) -> None:
        """Record or queue delivery inside the caller's transaction; never touch the network here."""


class InboxChannel:
    """The notification rows are the inbox: nothing more to do than keep them."""

    def deliver(self, session: Session, notifications: Sequence[Notification], settings: Settings) -> None:
        return None


class EmailChannel:
    """Queues one mail per notification whose user has an enabled address, sent after the commit."""

    def deliver(self, session: Session, notifications: Sequence[Notification], settings: Settings) -> None:
        if settings.smtp is None or not notifications:
            return
        rows = session.execute(
            select(MailRecipient.user_id, MailRecipient.address).where(
                MailRecipient.user_id.in_({n.user_id for n in notifications}),
                MailRecipient.enabled.is_(True),
            )
        )
        addresses = {user_id: address for user_id, address in rows}
        mails = [
            OutboundMail(
                notification_id=n.id, recipient=addresses[n.user_id], subject=n.subject, body=_mail_body(n)
            )
            for n in notifications
            if n.user_id in addresses
        ]
        session.add_all(mails)
        session.flush()
        _send_after_commit(session, [m.id for m in mails], settings)


def _mail_body(notification: Notification) -> str:
    return notification.body + (f"\n\n{notification.link}" if notification.link else "")


CHANNELS: dict[str, Channel] = {"inbox": InboxChannel(), "email": EmailChannel()}


def notify(
    session: Session,
    users: Iterable[User],
    kind: str,
    subject: str,
    body: str,
    link: str | None = None,
    settings: Settings | None = None,
) -> list[Notification]:
    """Tell `users` about a change made in `session`'s transaction, through every channel."""
    settings = settings or Settings()
    recipients = {user.id: user for user in users}
    notifications = [
        Notification(user_id=uid, kind=kind, subject=subject, body=body, link=link) for uid in recipients
    ]
    session.add_all(notifications)
    session.flush()
    for channel in CHANNELS.values():
        channel.deliver(session, notifications, settings)
    return notifications


def inbox(session: Session, user: User, unread_only: bool = False) -> list[Notification]:
    """The user's notifications, newest first."""
    query = select(Notification).where(Notification.user_id == user.id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(session.scalars(query.order_by(Notification.created_at.desc(), Notification.id.desc())))


def mark_read(session: Session, user: User, notification_ids: Iterable[int] | None = None) -> int:
    """Mark the user's own notifications read (all of them when no ids are given); returns how many."""
    statement = update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    if notification_ids is not None:
        statement = statement.where(Notification.id.in_(list(notification_ids)))
    result = session.execute(
        statement.values(read_at=_now()), execution_options={"synchronize_session": "fetch"}
    )
    return int(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    failed: int
    retrying: int


def _send_after_commit(session: Session, mail_ids: list[int], settings: Settings) -> None:
    """Hand the queued ids to a send that runs once the session's transaction has committed."""
    if not mail_ids:
        return
    batches: list[tuple[list[int], Settings]] | None = session.info.get(_QUEUED)
    if batches is None:
        batches = session.info[_QUEUED] = []
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)
    batches.append((mail_ids, settings))


def _after_commit(session: Session) -> None:
    batches: list[tuple[list[int], Settings]] = session.info.get(_QUEUED, [])
    taken, batches[:] = list(batches), []
    bind = session.get_bind()
    for ids, settings in taken:
        try:
            deliver_pending(lambda: Session(bind), settings, ids=ids)
        except Exception:
            # The change is committed; the mail stays queued for the next tick.
            log.exception("notification mail %s left for the next tick", ids)


def _after_rollback(session: Session) -> None:
    session.info.get(_QUEUED, []).clear()


def _claim(sessions: Callable[[], Session], mail_id: int, now: dt.datetime) -> OutboundMail | None:
    """Take one due mail for this sender only, pushing its next attempt back before sending.

    The conditional UPDATE makes the after-commit send and a concurrent tick never send it twice.
    """
    with sessions() as s, s.begin():
        mail = s.get(OutboundMail, mail_id)
        if mail is None:
            return None
        pause = dt.timedelta(minutes=2**mail.attempts)
        claimed = s.execute(
            update(OutboundMail)
            .where(
                OutboundMail.id == mail_id,
                OutboundMail.status == "pending",
                OutboundMail.attempts == mail.attempts,
                OutboundMail.next_attempt_at <= now,
            )
            .values(attempts=mail.attempts + 1, next_attempt_at=now + pause),
            execution_options={"synchronize_session": False},
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return None
        s.refresh(mail)
        s.expunge(mail)
        return mail


def deliver_pending(
    sessions: Callable[[], Session],
    settings: Settings,
    *,
    ids: Iterable[int] | None = None,
    now: dt.datetime | None = None,
) -> DeliveryReport:
    """Send every due queued mail (or only `ids`); safe to run from cron and from several processes."""
    smtp = settings.smtp
    now = now or _now()
    with sessions() as s:
        query = select(OutboundMail.id).where(
            OutboundMail.status == "pending", OutboundMail.next_attempt_at <= now
        )
        if ids is not None:
            query = query.where(OutboundMail.id.in_(list(ids)))
        due = list(s.scalars(query.order_by(OutboundMail.id)))
    sent = failed = retrying = 0
    if smtp is None:
        return DeliveryReport(0, 0, len(due))
    for mail_id in due:
        mail = _claim(sessions, mail_id, now)
        if mail is None:
            continue
        values: dict[str, object]
        try:
            send_message(smtp, build_message(smtp, mail.recipient, mail.subject, mail.body))
            values = {"status": "sent", "sent_at": _now(), "last_error": None}
            sent += 1
        except MailError as exc:
            exhausted = mail.attempts >= settings.mail_max_attempts
            values = {"status": "failed" if exhausted else "pending", "last_error": str(exc)}
            failed, retrying = failed + exhausted, retrying + (not exhausted)
            log.warning(
                "notification mail %s to %s not sent (attempt %s): %s",
                mail_id,
                mail.recipient,
                mail.attempts,
                exc,
            )
        with sessions() as s, s.begin():
            s.execute(update(OutboundMail).where(OutboundMail.id == mail_id).values(**values))
    return DeliveryReport(sent, failed, retrying)
