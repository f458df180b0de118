"""A workspace: the metadata database, the Delta data directory and the settings file.

Layout of ``HOME``::

    pubdata.toml        settings (every [R] rule, per-tenant overrides)
    metadata.db         SQLite metadata (unless --db-url points elsewhere)
    data/<entry code>/  one Delta table per catalogue entry
    quarantine/         rows held back by ingestion, one Parquet file per version
    workspace.json      the database URL, so later commands find it (0600 when it holds a password)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from pubdata.audit import register_workspace
from pubdata.clock import Clock, system_clock
from pubdata.db.models import Tenant
from pubdata.db.session import current_revision, head_revision, make_engine, session_factory, upgrade
from pubdata.db.urls import password
from pubdata.divisions import divisions
from pubdata.errors import PubdataError
from pubdata.settings import SettingsFile, load_settings, write_default_settings

DEFAULT_HOME = "pubdata-home"


def resolve_home(home: str | Path | None) -> Path:
    """`--home`, else ``$PUBDATA_HOME``, else ``./pubdata-home``."""
    return Path(home or os.environ.get("PUBDATA_HOME") or DEFAULT_HOME).resolve()


@dataclass
class Workspace:
    home: Path
    #: May hold the database password: kept out of the repr (tracebacks, logs); shown only `masked`.
    db_url: str = field(repr=False)
    #: When "now" is for what is done in this workspace: the demo's cases, the app's deadlines.
    #: Commands keep the system clock; a test or a replay opens the workspace on a fixed one.
    clock: Clock = field(default=system_clock, repr=False, compare=False)

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def settings_path(self) -> Path:
        return self.home / "pubdata.toml"

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(self.db_url)
        # Audit appends find the signing key through the workspace, wherever the database lives.
        register_workspace(engine, self.home)
        return engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    @cached_property
    def settings(self) -> SettingsFile:
        return load_settings(self.settings_path)

    def table_path(self, entry_code: str) -> Path:
        return self.data_dir / entry_code

    @classmethod
    def init(
        cls, home: str | Path | None = None, db_url: str | None = None, clock: Clock = system_clock
    ) -> Workspace:
        """Create (or upgrade) a workspace; safe to run again."""
        path = resolve_home(home)
        path.mkdir(parents=True, exist_ok=True)
        marker = path / "workspace.json"
        if db_url is None and marker.exists():
            db_url = json.loads(marker.read_text("utf-8"))["db_url"]
        workspace = cls(path, db_url or f"sqlite:///{path / 'metadata.db'}", clock)
        workspace.data_dir.mkdir(exist_ok=True)
        workspace.quarantine_dir.mkdir(exist_ok=True)
        if not workspace.settings_path.exists():
            write_default_settings(workspace.settings_path)
        upgrade(workspace.engine)
        seed_tenants(workspace)
        write_marker(marker, workspace.db_url)
        return workspace

    @classmethod
    def open(cls, home: str | Path | None = None, clock: Clock = system_clock) -> Workspace:
        """Open an initialised workspace; a clear error when there is none or it is out of date."""
        path = resolve_home(home)
        marker = path / "workspace.json"
        if not marker.exists():
            raise PubdataError(f"no workspace at {path}: run `pubdata init --home {path}` first")
        workspace = cls(path, json.loads(marker.read_text("utf-8"))["db_url"], clock)
        if current_revision(workspace.engine) != head_revision():
            raise PubdataError(f"workspace {path} needs an upgrade: run `pubdata init --home {path}`")
        return workspace


def write_marker(marker: Path, db_url: str) -> None:
    """Write workspace.json; owner-only (0600) from its creation when the URL carries a password."""
    tmp = marker.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    mode = 0o600 if password(db_url) else 0o644  # the umask may take more away, never add
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "w", encoding="utf-8") as out:
        out.write(json.dumps({"db_url": db_url}))
    tmp.replace(marker)


def seed_tenants(workspace: Workspace) -> None:
    """Create the province → city → county tenants from the division table (idempotent)."""
    with workspace.sessions() as session, session.begin():
        existing = {t.division_code: t for t in session.scalars(select(Tenant))}
        for division in divisions():
            if division.level == "township" or division.abolished or division.code in existing:
                continue
            parent = existing.get(division.parent_code) if division.parent_code else None
            tenant = Tenant(
                division_code=division.code, name=division.name, level=division.level, parent=parent
            )
            session.add(tenant)
            existing[division.code] = tenant


def tenant_for(session: Session, division_code: str) -> Tenant:
    """The most specific tenant (county, else city, else province) containing a division."""
    for division in divisions().ancestors(division_code):
        tenant = session.scalar(select(Tenant).where(Tenant.division_code == division.code))
        if tenant is not None:
            return tenant
    raise PubdataError(f"no tenant covers division {division_code}")
