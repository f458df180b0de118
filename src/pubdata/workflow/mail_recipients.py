"""Where a user wants notifications by e-mail: opt-in, one address, switchable off without losing it."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from pubdata import audit
from pubdata.db.models import MailRecipient
from pubdata.errors import InputError
from pubdata.gateway.identity import find_user
from pubdata.messages import text

#: A plain ``local@domain.tld`` address: no display name, no spaces, no header-breaking characters.
_ADDRESS = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")


def set_mail_address(
    session: Session, login: str, address: str | None, actor: str, *, enabled: bool = True
) -> MailRecipient | None:
    """Mail `login`'s notifications to `address` (None: stop mailing and forget the address).

    >>> _ADDRESS.match("li.na@example.cn") is not None, _ADDRESS.match("x@y\\nBcc: z@w") is None
    (True, True)
    """
    user = find_user(session, login)
    row = session.get(MailRecipient, user.id)
    if address is None:
        if row is not None:
            session.delete(row)
            session.flush()
            audit.record(session, actor, "user.mail", user.login, address=None)
        return None
    address = address.strip()
    if len(address) > 254 or not _ADDRESS.match(address):
        raise InputError(
            text("{address!r} is not an e-mail address (name@domain)", address=address), column="address"
        )
    if row is None:
        row = MailRecipient(user_id=user.id, address=address, enabled=enabled)
        session.add(row)
    else:
        row.address, row.enabled = address, enabled
    session.flush()
    # The address is personal information: the log keeps that it changed and its domain only.
    audit.record(session, actor, "user.mail", user.login, domain=address.rsplit("@", 1)[1], enabled=enabled)
    return row
