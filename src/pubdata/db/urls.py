"""The metadata database's URL is a secret when it carries a password: where it may come from, how
it is shown, and the error when the database cannot be reached.

A password given as ``--db-url`` is visible to every local user in the process list (``ps``), so
the command line is for password-less URLs; a URL with a password comes from ``$PUBDATA_DB_URL`` or
from a file only its owner can read (``--db-url-file``), like ``~/.pgpass``. Wherever a URL is shown
— the output of ``pubdata init``, an error, a log line — it is `masked`.

Example:
    >>> masked("postgresql+psycopg://app:s3cret@db.example:5432/pubdata")
    'postgresql+psycopg://app:***@db.example:5432/pubdata'
    >>> masked("nonsense:/app:s3cret@db")
    '***@db'
    >>> scrub("could not parse 'postgresql://app:s3cret@db/x'")
    "could not parse 'postgresql://app:***@db/x'"
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pubdata.errors import InputError, PubdataError
from pubdata.messages import text

#: The environment variable `pubdata init` reads the URL from when no option gives one.
DB_URL_ENV = "PUBDATA_DB_URL"

#: ``scheme://user:password@`` anywhere in a text, for messages that quote a URL they were handed.
_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s'\"]*):[^@\s'\"]*@")


class DatabaseUnreachable(PubdataError):
    """The metadata database refused or did not answer a connection (down, wrong host, bad login)."""


def password(url: str) -> str | None:
    """The URL's password, or None (also for a URL SQLAlchemy cannot parse)."""
    try:
        return make_url(url).password
    except ArgumentError:
        return None


def masked(url: str) -> str:
    """The URL with its password replaced by ``***``: safe to print, log and store in messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Unreadable, so where a password ends is a guess: everything before the last "@" goes.
        return "***@" + url.rsplit("@", 1)[1] if "@" in url else url


def scrub(message: str, secret: str | None = None) -> str:
    """`message` with the passwords of the URLs it quotes (and `secret` itself) replaced by ``***``."""
    if secret:
        message = message.replace(secret, "***")
    return _CREDENTIALS.sub(r"\g<head>:***@", message)


def read_url_file(path: Path) -> str:
    """The URL kept in `path`; refused when the file holds a password that others could read."""
    try:
        url = path.read_text("utf-8").strip()
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            text("cannot read the database URL file: {reason}", reason=exc.__class__.__name__), file=str(path)
        ) from None
    if not url:
        raise InputError(text("the database URL file is empty"), file=str(path))
    if password(url) and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(
            text("the database URL file holds a password and others may read it: chmod 600 it"),
            file=str(path),
        )
    return url


def unreachable(url: str, error: BaseException) -> DatabaseUnreachable:
    """The error for a failed connection: the masked URL and the driver's first line, no password."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    said = scrub(reason[0] if reason else type(error).__name__, password(url))
    return DatabaseUnreachable(
        text("the metadata database {url} cannot be reached: {reason}", url=masked(url), reason=said)
    )
