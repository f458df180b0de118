"""Tenant settings: every reconstructed ([R]) rule of the regulation is a setting with a default.

The workspace keeps them in ``pubdata.toml``. A tenant (a division code prefix) may override any
value in a ``[tenants."3304"]`` table; the most specific prefix wins. Settings are plain frozen
dataclasses so that mypy checks every use and a typo in the file is an error, not a silent default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal

import tomli_w

from pubdata.errors import PubdataError

BadRowPolicy = Literal["reject", "quarantine", "flag"]


@dataclass(frozen=True)
class Deadlines:
    """Working-day deadlines of the sharing workflow (REQ-16) and objections (REQ-13)."""

    preset: Literal["zhejiang", "national", "custom"] = "zhejiang"
    check_wd: int = 2
    decide_wd: int = 5
    coordinate_wd: int = 10
    objection_accept_wd: int = 1
    objection_verify_wd: int = 5
    #: Official holidays (ISO dates) of years the calendar package does not know yet.
    holidays: tuple[str, ...] = ()
    #: Official make-up working days (调休, ISO dates) of those years.
    workdays: tuple[str, ...] = ()
    #: A year with no official data: ``estimate`` counts the holidays the State Council's usual
    #: pattern gives, ``weekdays`` counts Monday–Friday (both mark deadlines provisional);
    #: ``refuse`` makes every deadline in it an error.
    unknown_year: Literal["estimate", "weekdays", "refuse"] = "estimate"

    def __post_init__(self) -> None:
        if self.unknown_year not in ("estimate", "weekdays", "refuse"):
            raise PubdataError(
                f"deadlines.unknown_year is 'estimate', 'weekdays' or 'refuse', not {self.unknown_year!r}"
            )
        for name in ("holidays", "workdays"):
            for day in getattr(self, name):
                try:
                    date.fromisoformat(str(day))
                except ValueError:
                    raise PubdataError(f"deadlines.{name}: {day!r} is not a date (YYYY-MM-DD)") from None


PRESETS: dict[str, Deadlines] = {
    "zhejiang": Deadlines("zhejiang", 2, 5, 10),
    "national": Deadlines("national", 1, 10, 20),
}


@dataclass(frozen=True)
class LevelRule:
    """One row of the default-level table (REQ-30): a PII kind and the level it implies."""

    pii_kind: str
    level: int


@dataclass(frozen=True)
class Smtp:
    """How to reach the mail server for notifications (REQ-16, REQ-28).

    The password is never in the settings file, a row or a log: only the name of the environment
    variable that holds it is.
    """

    host: str
    port: int = 25
    sender: str = ""
    starttls: bool = True
    username: str = ""
    password_env: str = "PUBDATA_SMTP_PASSWORD"  # noqa: S105 - a variable name
    timeout_seconds: float = 10.0

    def password(self) -> str | None:
        return os.environ.get(self.password_env) if self.password_env else None


@dataclass(frozen=True)
class Settings:
    """All tunable rules. Field docstrings live in docs/settings.md, checked by a test."""

    deadlines: Deadlines = field(default_factory=Deadlines)
    #: REQ-6: datasets opened outside the portal need a filing record.
    require_filing_for_external_opening: bool = True
    #: REQ-25: publishing is blocked while a provider has no head or no security officer.
    require_responsible_persons: bool = True
    #: REQ-30: level implied by each PII kind found in a field.
    level_rules: tuple[LevelRule, ...] = (
        LevelRule("id_number", 4),
        LevelRule("bank_card", 4),
        LevelRule("medical", 4),
        LevelRule("biometric", 4),
        LevelRule("precise_location", 4),
        LevelRule("mobile", 3),
        LevelRule("name", 2),
        LevelRule("address", 3),
        LevelRule("uscc", 1),
    )
    #: REQ-30: a table holding a name, an ID number and a mobile together is at least this level.
    combined_identity_level: int = 3
    #: REQ-30: cells of aggregates below this count are suppressed.
    small_cell_threshold: int = 10
    #: REQ-40: minimum audit retention, days.
    audit_retention_days: int = 183
    #: REQ-40: a signed audit checkpoint is written every this many events (0: only on demand).
    audit_checkpoint_every: int = 1000
    #: REQ-15: the longest period of use a grant may have, days.
    max_grant_days: int = 365
    #: REQ-5: the longest an API token of the gateway may live before it expires, days.
    max_token_days: int = 90
    #: REQ-16: who countersigns (会签) a coordinated approval of a not-shared entry before its grant is
    #: made: the ``provider``'s consent, or a ``second_competent`` person of a competent department.
    not_shared_consent: Literal["provider", "second_competent"] = "provider"
    #: ``pubdata users add`` given roles that let one person both ask and decide: ``warn`` or ``refuse``.
    conflicting_roles: Literal["warn", "refuse"] = "warn"
    #: Ingestion: what to do with rows that fail validation when an entry does not say.
    default_bad_row_policy: BadRowPolicy = "quarantine"
    #: Ingestion: rows per batch; peak memory follows this, not the file size.
    ingest_batch_rows: int = 65_536
    #: Ingestion: how many rejected values are listed one by one in a quality report.
    quality_examples_per_column: int = 20
    #: Ingestion: above this share of rejected rows nothing is written (a wrong file, not bad rows).
    ingest_max_reject_ratio: float = 0.1
    #: Ingestion: an upsert whose file lacks a field's column ``keep``s the stored values or ``refuse``s.
    upsert_missing_columns: Literal["keep", "refuse"] = "keep"
    #: REQ-11: grace period before an entry past its update cycle is flagged overdue, days.
    overdue_grace_days: int = 0
    #: REQ-16, REQ-28: the SMTP server notifications are mailed through; empty: in-app inbox only.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_sender: str = ""
    smtp_starttls: bool = True
    smtp_username: str = ""
    #: The environment variable holding the SMTP password (the file never holds it).
    smtp_password_env: str = "PUBDATA_SMTP_PASSWORD"  # noqa: S105 - a variable name
    smtp_timeout_seconds: int = 10
    #: How many times a notification e-mail is tried before it is marked failed.
    mail_max_attempts: int = 5
    #: Seconds between two runs of the periodic tasks inside ``pubdata serve``; 0: cron runs ``pubdata tick``.
    tick_interval_seconds: int = 300
    #: REQ-5: seconds a query (and the stream of its answer) may run before it is stopped; server-wide.
    query_time_budget_seconds: int = 30
    #: DuckDB's memory for all queries together, MB (it spills to disk beyond); server-wide.
    query_memory_limit_mb: int = 1024
    #: Resident memory of the server process, MB, above which running queries are stopped; 0: off.
    query_process_memory_mb: int = 4096
    #: Most joins one query may make (each table after the first in FROM counts one).
    query_max_joins: int = 64
    #: Largest total size of the values a query builds from its own arguments (``repeat``, ``lpad`` …).
    query_max_generated_bytes: int = 64_000_000
    #: REQ-12: most records one objection may name.
    objection_max_records: int = 50
    #: REQ-12: the window, in hours, over which the two objection limits below count.
    objection_window_hours: int = 24
    #: REQ-12: most objections one person may raise in the window.
    objection_max_per_user: int = 10
    #: REQ-12: most objections one entry takes in the window, from everyone together.
    objection_max_per_entry: int = 50

    @property
    def smtp(self) -> Smtp | None:
        """The mail server, or None when e-mail is not configured."""
        if not self.smtp_host:
            return None
        return Smtp(
            host=self.smtp_host,
            port=self.smtp_port,
            sender=self.smtp_sender,
            starttls=self.smtp_starttls,
            username=self.smtp_username,
            password_env=self.smtp_password_env,
            timeout_seconds=float(self.smtp_timeout_seconds),
        )


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise PubdataError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name == "deadlines":
            preset = value.get("preset", "custom")
            base = PRESETS.get(preset, Deadlines(preset="custom"))
            given: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
            values[name] = replace(base, **given)
        elif name == "level_rules":
            values[name] = tuple(LevelRule(**rule) for rule in value)
        else:
            values[name] = value
    return cls(**values)


@dataclass(frozen=True)
class SettingsFile:
    """The parsed ``pubdata.toml``: defaults plus per-tenant overrides keyed by division prefix."""

    default: Settings
    tenants: dict[str, dict[str, Any]]

    def for_tenant(self, division_code: str) -> Settings:
        """Settings of the most specific tenant prefix that `division_code` starts with."""
        merged = self.default
        for prefix in sorted(self.tenants, key=len):
            if division_code.startswith(prefix):
                override = self.tenants[prefix]
                merged = _build(Settings, {**_as_toml(merged), **override}, f"tenant {prefix}")
        return merged


def _as_toml(settings: Settings) -> dict[str, Any]:
    data = asdict(settings)
    data["level_rules"] = [dict(rule) for rule in data["level_rules"]]
    return data


def load_settings(path: Path) -> SettingsFile:
    if not path.exists():
        return SettingsFile(Settings(), {})
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PubdataError(f"{path}: {exc}") from exc
    tenants = raw.pop("tenants", {})
    return SettingsFile(_build(Settings, raw, str(path)), tenants)


def write_default_settings(path: Path) -> None:
    """Write every setting with its default so that a person can see and change each one."""
    data = _as_toml(Settings())
    data["tenants"] = {"33": {}}
    path.write_text(
        "# pubdata settings. Every reconstructed rule of the regulation is a setting here.\n"
        '# Override per tenant under [tenants."<division prefix>"].\n\n' + tomli_w.dumps(data),
        "utf-8",
    )
