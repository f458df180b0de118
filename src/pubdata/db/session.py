"""Engines and sessions for the metadata database; the schema comes only from Alembic migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from pubdata.db.urls import masked, unreachable
from pubdata.errors import InputError
from pubdata.messages import text

#: Seconds a PostgreSQL connection attempt may take before the command says the database is down.
CONNECT_TIMEOUT = 10


def make_engine(url: str) -> Engine:
    """An engine with SQLite set up for concurrent readers and enforced foreign keys.

    A URL SQLAlchemy cannot read and a driver that is not installed are the user's to fix (exit 2),
    said without the password, instead of a traceback.
    """
    try:
        return _make_engine(url)
    except ArgumentError:
        raise InputError(text("SQLAlchemy cannot use the database URL {url}", url=masked(url))) from None
    except ModuleNotFoundError as exc:
        raise InputError(
            text(
                "the database driver {module} is not installed "
                "(for PostgreSQL: pip install 'pubdata[postgres]')",
                module=exc.name or "?",
            )
        ) from None


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    options = (
        {}
        if "connect_timeout" in url or not url.startswith("postgresql")
        else {"connect_timeout": CONNECT_TIMEOUT}
    )
    return create_engine(url, pool_pre_ping=True, connect_args=options)


def connect(engine: Engine) -> Connection:
    """A connection, or `DatabaseUnreachable` naming the masked URL (never a driver traceback)."""
    try:
        return engine.connect()
    except DBAPIError as exc:
        raise unreachable(engine.url.render_as_string(hide_password=False), exc) from None


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("pubdata.db") / "migrations"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (creating it on an empty database)."""
    config = _alembic_config()
    with connect(engine) as connection, connection.begin():
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with connect(engine) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits as one unit, or not at all."""
    with factory() as session, session.begin():
        yield session
