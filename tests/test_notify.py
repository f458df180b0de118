"""Notifications: the in-app inbox, and e-mail to a real SMTP server on loopback."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword
from aiosmtpd.smtp import Session as SmtpSession
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select, update

from pubdata.db.models import MailRecipient, Notification, OutboundMail, User
from pubdata.settings import Settings
from pubdata.workflow.notify import CHANNELS, deliver_pending, inbox, mark_read, notify
from pubdata.workspace import Workspace

SUBJECT = "共享申请已批准：社会保险参保信息"
BODY = "嘉兴市总工会的申请已由人社厅批准，身份证号已脱敏。"


class Sink:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd hook
        self.envelopes.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def _mail_settings(port: int, **extra: object) -> Settings:
    return replace(
        Settings(),
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_sender="noreply@pubdata.example",
        smtp_starttls=False,
        smtp_timeout_seconds=5,
        **extra,  # type: ignore[arg-type]
    )


def _users(workspace: Workspace, *logins: str, mail: bool = True) -> list[User]:
    with workspace.sessions() as s, s.begin():
        users = [User(login=login, display_name=login) for login in logins]
        s.add_all(users)
        s.flush()
        if mail:
            s.add_all(MailRecipient(user_id=u.id, address=f"{u.login}@example.cn") for u in users)
    return users


def test_inbox_lists_newest_first_and_marks_only_own_rows_read(workspace: Workspace) -> None:
    alice, bob = _users(workspace, "alice", "bob", mail=False)
    with workspace.sessions() as s, s.begin():
        notify(s, [alice, bob], "request.submitted", "第一条", "body 1")
        notify(s, [alice], "request.decided", "第二条", "body 2", link="/requests/7")
    with workspace.sessions() as s, s.begin():
        rows = inbox(s, alice)
        assert [n.subject for n in rows] == ["第二条", "第一条"]
        assert rows[0].link == "/requests/7" and rows[0].kind == "request.decided"
        # Bob's notification id cannot be marked read by Alice.
        bobs = inbox(s, bob)[0]
        assert mark_read(s, alice, [rows[1].id, bobs.id]) == 1
        assert [n.subject for n in inbox(s, alice, unread_only=True)] == ["第二条"]
        assert inbox(s, bob, unread_only=True) == [bobs]
        assert mark_read(s, alice) == 1
        assert inbox(s, alice, unread_only=True) == []
        assert mark_read(s, alice) == 0


def test_inbox_row_belongs_to_the_callers_transaction(workspace: Workspace) -> None:
    (alice,) = _users(workspace, "alice", mail=False)
    with workspace.sessions() as s:
        with s.begin():
            notify(s, [alice], "request.submitted", "s", "b")
            s.rollback()
        assert inbox(s, alice) == []


def test_duplicate_users_get_one_notification(workspace: Workspace) -> None:
    (alice,) = _users(workspace, "alice", mail=False)
    with workspace.sessions() as s, s.begin():
        assert len(notify(s, [alice, alice], "k", "s", "b")) == 1


def test_channels_registry_holds_the_built_ins() -> None:
    assert {"inbox", "email"} <= set(CHANNELS)


def test_without_smtp_no_mail_is_queued(workspace: Workspace) -> None:
    (alice,) = _users(workspace, "alice")
    with workspace.sessions() as s, s.begin():
        notify(s, [alice], "k", "s", "b", settings=Settings())
    with workspace.sessions() as s:
        assert s.scalars(select(OutboundMail)).all() == []


def test_mail_is_sent_after_commit_with_chinese_intact(workspace: Workspace, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    alice, bob, carol = _users(workspace, "alice", "bob", "carol")
    with workspace.sessions() as s, s.begin():
        s.execute(update(MailRecipient).where(MailRecipient.user_id == carol.id).values(enabled=False))
    settings = _mail_settings(port)
    with workspace.sessions() as s, s.begin():
        notify(
            s,
            [alice, bob, carol],
            "request.decided",
            SUBJECT,
            BODY,
            link="/requests/1",
            settings=settings,
        )
        assert handler.envelopes == [], "nothing may leave before the commit"
    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == ["alice@example.cn", "bob@example.cn"]
    for envelope in handler.envelopes:
        assert envelope.mail_from == "noreply@pubdata.example"
        assert isinstance(envelope.content, bytes)
        message = message_from_bytes(envelope.content)
        assert str(make_header(decode_header(message["Subject"]))) == SUBJECT
        text = message.get_payload(decode=True)
        assert isinstance(text, bytes)
        assert BODY in text.decode(message.get_content_charset() or "ascii")
        assert "/requests/1" in text.decode("utf-8")
    with workspace.sessions() as s:
        mails = s.scalars(select(OutboundMail)).all()
        assert {(m.status, m.attempts, m.last_error) for m in mails} == {("sent", 1, None)}
        assert len(inbox(s, carol)) == 1, "no address: inbox only"


def test_a_rolled_back_change_sends_no_mail(workspace: Workspace, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    (alice,) = _users(workspace, "alice")
    with workspace.sessions() as s:
        s.begin()
        notify(s, [alice], "k", SUBJECT, BODY, settings=_mail_settings(port))
        s.rollback()
        with s.begin():
            notify(s, [alice], "k", "later", "b", settings=Settings())
    assert handler.envelopes == []


def test_unreachable_server_keeps_inbox_and_records_failure_without_secret(
    workspace: Workspace,
    sink: tuple[Sink, int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "s3cr3t-口令-9f2"
    monkeypatch.setenv("PUBDATA_SMTP_PASSWORD", secret)
    (alice,) = _users(workspace, "alice")
    dead = _mail_settings(_free_port(), smtp_username="pubdata", mail_max_attempts=2)
    with caplog.at_level(logging.DEBUG), workspace.sessions() as s, s.begin():
        notify(s, [alice], "request.decided", SUBJECT, BODY, settings=dead)
    with workspace.sessions() as s:
        assert [n.subject for n in inbox(s, alice)] == [SUBJECT]
        (mail,) = s.scalars(select(OutboundMail)).all()
        assert (mail.status, mail.attempts) == ("pending", 1)
        assert mail.last_error and "127.0.0.1" in mail.last_error
        retry_at = mail.next_attempt_at
    # Not due yet: a tick right away does not hammer the server.
    assert deliver_pending(workspace.sessions, dead).retrying == 0
    report = deliver_pending(workspace.sessions, dead, now=retry_at)
    assert (report.sent, report.failed) == (0, 1)
    with workspace.sessions() as s:
        (mail,) = s.scalars(select(OutboundMail)).all()
        assert (mail.status, mail.attempts) == ("failed", 2)
        dump = repr([(m.recipient, m.subject, m.body, m.last_error) for m in s.scalars(select(OutboundMail))])
    assert secret not in dump
    assert secret not in caplog.text
    assert "not sent" in caplog.text


def test_a_later_tick_sends_what_failed(workspace: Workspace, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    (alice,) = _users(workspace, "alice")
    with workspace.sessions() as s, s.begin():
        notify(s, [alice], "k", SUBJECT, BODY, settings=_mail_settings(_free_port()))
    with workspace.sessions() as s:
        retry_at = s.scalars(select(OutboundMail.next_attempt_at)).one()
    live = _mail_settings(port)
    assert deliver_pending(workspace.sessions, live, now=retry_at).sent == 1
    assert deliver_pending(workspace.sessions, live, now=retry_at).sent == 0, "idempotent"
    assert [e.rcpt_tos for e in handler.envelopes] == [["alice@example.cn"]]


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subject=st.text(min_size=1, max_size=120), body=st.text(max_size=400))
def test_any_text_round_trips_through_the_inbox(workspace: Workspace, subject: str, body: str) -> None:
    subject, body = subject.replace("\x00", ""), body.replace("\x00", "")
    with workspace.sessions() as s, s.begin():
        user = s.scalars(select(User).where(User.login == "h")).one_or_none() or User(login="h")
        s.add(user)
        s.flush()
        (n,) = notify(s, [user], "k", subject, body)
        assert s.get(Notification, n.id) is n
    with workspace.sessions() as s:
        fresh = s.get(Notification, n.id)
        assert fresh is not None and (fresh.subject, fresh.body) == (subject, body)


SECRET = "pw-a1b2c3-x9"


class LoginSink(Sink):
    """A sink that asks for a login and accepts only `SECRET`."""

    def __init__(self) -> None:
        super().__init__()
        self.logins: list[tuple[bytes, bytes]] = []

    def authenticate(
        self, server: SMTP, session: SmtpSession, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == SECRET.encode())


@pytest.fixture
def login_sink() -> Iterator[tuple[LoginSink, int]]:
    handler, port = LoginSink(), _free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=handler.authenticate, auth_require_tls=False
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def test_login_uses_the_password_from_the_environment_and_stores_it_nowhere(
    workspace: Workspace,
    login_sink: tuple[LoginSink, int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, port = login_sink
    (alice,) = _users(workspace, "alice")
    settings = _mail_settings(port, smtp_username="pubdata", smtp_password_env="PUBDATA_TEST_SMTP_PW")
    monkeypatch.setenv("PUBDATA_TEST_SMTP_PW", SECRET)
    with caplog.at_level(logging.DEBUG), workspace.sessions() as s, s.begin():
        notify(s, [alice], "k", SUBJECT, BODY, settings=settings)
    assert handler.logins == [(b"pubdata", SECRET.encode())]
    assert [e.rcpt_tos for e in handler.envelopes] == [["alice@example.cn"]]
    with workspace.sessions() as s:
        rows = repr(s.execute(select(OutboundMail.__table__)).all())
    assert SECRET not in rows and "sent" in rows
    assert SECRET not in caplog.text


def test_a_non_ascii_password_is_a_recorded_failure_not_a_crash(
    workspace: Workspace, login_sink: tuple[LoginSink, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, port = login_sink
    monkeypatch.setenv("PUBDATA_SMTP_PASSWORD", "口令")
    (alice,) = _users(workspace, "alice")
    with workspace.sessions() as s, s.begin():
        notify(s, [alice], "k", SUBJECT, BODY, settings=_mail_settings(port, smtp_username="u"))
    with workspace.sessions() as s:
        (mail,) = s.scalars(select(OutboundMail)).all()
    assert mail.status == "pending" and mail.last_error and "ASCII" in mail.last_error
    assert "口令" not in mail.last_error
    assert handler.envelopes == []
