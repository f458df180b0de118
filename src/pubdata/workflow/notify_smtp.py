"""Sending one notification e-mail through SMTP.

Kept apart from the inbox so that the only code touching the network and the password is here. A
failure is raised as `MailError` whose text never contains the password, because callers store it
in ``outbound_mail.last_error`` and log it.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from pubdata.errors import PubdataError
from pubdata.messages import text
from pubdata.settings import Smtp


class MailError(PubdataError):
    """The mail server could not be reached or refused the message; the text says why."""


def build_message(smtp: Smtp, recipient: str, subject: str, body: str) -> EmailMessage:
    """A plain-text UTF-8 message; headers are RFC 2047 encoded so that Chinese survives any relay."""
    message = EmailMessage()
    message["From"] = smtp.sender or f"pubdata@{smtp.host}"
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = make_msgid(domain=smtp.host or None)
    message.set_content(body, charset="utf-8")
    return message


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def send_message(smtp: Smtp, message: EmailMessage) -> None:
    """Deliver `message` to the server, within `smtp.timeout_seconds` per network operation."""
    password = smtp.password()
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as server:
            if smtp.starttls:
                server.starttls(context=ssl.create_default_context())
            if smtp.username:
                if password is None:
                    raise MailError(
                        text(
                            "SMTP login {username!r} needs ${variable} to be set",
                            username=smtp.username,
                            variable=smtp.password_env,
                        )
                    )
                server.login(smtp.username, password)
            server.send_message(message)
    except MailError:
        raise
    except UnicodeError:
        # smtplib encodes logins and addresses as ASCII; its message could quote the password.
        raise MailError(
            text("SMTP {host}:{port}: login and addresses must be ASCII", host=smtp.host, port=smtp.port)
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        reason = _redact(f"{type(exc).__name__}: {exc}", password)
        raise MailError(
            text("SMTP {host}:{port}: {reason}", host=smtp.host, port=smtp.port, reason=reason)
        ) from None
