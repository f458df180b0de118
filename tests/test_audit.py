"""The audit log as evidence: tampering of each kind is named, appends never fork, reports find
accesses by keyed hash only (REQ-40, REQ-41)."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlglot import exp
from typer.testing import CliRunner

from pubdata import audit
from pubdata.audit import events as audit_events
from pubdata.audit.chain import event_digest, naive_utc
from pubdata.cli.main import app
from pubdata.db.models import AuditCheckpoint, AuditEvent, AuditSubject
from pubdata.errors import InputError
from pubdata.identifiers import make_id_number, make_uscc
from pubdata.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
ID_NUMBER = make_id_number("330103", "19800101", 11)
USCC = make_uscc("11", "330000", "00250240")
runner = CliRunner()


def _append(workspace: Workspace, count: int, start: int = 0) -> None:
    with workspace.sessions() as s, s.begin():
        for i in range(start, start + count):
            audit.record(s, f"user{i % 3}", "catalog.update", f"E{i:03d}", rows=1000 + i, note="正常")


@pytest.fixture
def log(workspace: Workspace) -> Workspace:
    """Twelve events with a checkpoint every five (after events 5 and 10)."""
    audit.register_workspace(workspace.engine, workspace.home, checkpoint_every=5)
    _append(workspace, 12)
    return workspace


def _report(workspace: Workspace) -> audit.VerificationReport:
    with workspace.sessions() as s:
        return audit.verify(s, audit.public_key_pem(workspace.home))


def _tamper(workspace: Workspace, *statements: str) -> None:
    with workspace.engine.begin() as c:
        for statement in statements:
            c.execute(text(statement))


def _kinds(report: audit.VerificationReport) -> set[tuple[str, int | None]]:
    return {(p.kind, p.event_id) for p in report.problems}


# --- a clean log ---------------------------------------------------------------------------------


@pytest.mark.req("REQ-40", "tamper-evident")
def test_clean_log_verifies_with_checkpoints_every_n_events(log: Workspace) -> None:
    report = _report(log)
    assert report.ok, report.problems
    assert (report.events_checked, report.checkpoints_checked, report.unsigned_tail) == (12, 2, 2)
    assert report.signatures_checked and report.last_event_id == 12
    with log.sessions() as s:
        pinned = s.execute(select(AuditCheckpoint.last_event_id, AuditCheckpoint.event_count)).all()
        assert [tuple(p) for p in pinned] == [(5, 5), (10, 10)]
        assert audit.verify_chain(s) == (True, "12 events and 2 checkpoints verified")


def test_checkpoint_interval_comes_from_the_settings_file(workspace: Workspace) -> None:
    settings_file = workspace.home / "pubdata.toml"
    settings_file.write_text(
        settings_file.read_text("utf-8").replace(
            "audit_checkpoint_every = 1000", "audit_checkpoint_every = 4"
        ),
        "utf-8",
    )
    reopened = Workspace.open(workspace.home)  # a new engine: the link is found from the SQLite path
    _append(reopened, 9)
    with reopened.sessions() as s:
        assert list(s.scalars(select(AuditCheckpoint.last_event_id))) == [4, 8]
    assert _report(reopened).ok


@pytest.mark.req("REQ-40", "tamper-evident")
def test_verification_streams_in_batches_with_the_same_result(log: Workspace) -> None:
    _tamper(log, "UPDATE audit_events SET target = 'E999' WHERE id = 7")
    with log.sessions() as s:
        small = audit.verify(s, audit.public_key_pem(log.home), batch_size=2)
        large = audit.verify(s, audit.public_key_pem(log.home), batch_size=10_000)
    assert small == large and _kinds(small) == {("edited", 7)}


# --- tampering, one kind at a time ---------------------------------------------------------------

_LAST_CHAR = "substr({c}, 1, length({c}) - 1) || CASE WHEN substr({c}, -1) = '9' THEN '8' ELSE '9' END"


@pytest.mark.req("REQ-40", "tamper-evident")
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET detail = replace(detail, '1004', '1005') WHERE id = 5",
        "UPDATE audit_events SET actor = 'user9' WHERE id = 5",
        f"UPDATE audit_events SET at = {_LAST_CHAR.format(c='at')} WHERE id = 5",
        "UPDATE audit_events SET outcome = 'refused' WHERE id = 5",
    ],
    ids=["detail", "actor", "at", "outcome"],
)
def test_an_edited_byte_names_the_event(log: Workspace, statement: str) -> None:
    _tamper(log, statement)
    report = _report(log)
    assert not report.ok
    assert _kinds(report) == {("edited", 5)}
    assert "event 5 was edited" in report.problems[0].message


@pytest.mark.req("REQ-40", "tamper-evident")
def test_a_deleted_middle_event_is_a_gap(log: Workspace) -> None:
    _tamper(log, "DELETE FROM audit_events WHERE id = 7")
    report = _report(log)
    assert ("deleted", 8) in _kinds(report)
    assert "after event 6" in report.problems[0].message
    # The checkpoint after the gap no longer counts ten events.
    assert any(p.kind == "checkpoint-mismatch" and p.checkpoint_id == 2 for p in report.problems)


@pytest.mark.req("REQ-40", "tamper-evident")
def test_a_deleted_first_event_is_named(log: Workspace) -> None:
    _tamper(log, "DELETE FROM audit_events WHERE id = 1")
    assert ("deleted", 2) in _kinds(_report(log))


def _forge_after(workspace: Workspace, parent_id: int, new_id: int) -> None:
    """Insert an event that correctly chains to `parent_id`, as someone who knows the format would."""
    with workspace.engine.begin() as c:
        parent_hash = c.execute(
            text("SELECT hash FROM audit_events WHERE id = :i"), {"i": parent_id}
        ).scalar_one()
        at = c.execute(text("SELECT at FROM audit_events WHERE id = :i"), {"i": parent_id}).scalar_one()
    moment = dt.datetime.fromisoformat(at)
    detail = {"rows": 1}
    digest = event_digest(parent_hash, moment, "intruder", "query", "E001", "ok", detail)
    _tamper(
        workspace,
        "INSERT INTO audit_events (id, at, actor, action, target, outcome, detail, prev_hash, hash) "
        f"VALUES ({new_id}, '{at}', 'intruder', 'query', 'E001', 'ok', '{json.dumps(detail)}', "
        f"'{parent_hash}', '{digest}')",
    )


@pytest.mark.req("REQ-40", "tamper-evident")
def test_an_inserted_event_is_named(log: Workspace) -> None:
    _forge_after(log, parent_id=4, new_id=13)
    report = _report(log)
    assert _kinds(report) == {("inserted", 13)}
    assert report.problems[0].message == "event 13 was inserted: it and event 5 both follow event 4"


@pytest.mark.req("REQ-40", "tamper-evident")
def test_an_event_inserted_into_a_gap_is_named(log: Workspace) -> None:
    with log.engine.begin() as c:  # make room in the middle, as a renumbering intruder would
        for i in range(12, 6, -1):
            c.execute(text("UPDATE audit_events SET id = :n WHERE id = :i"), {"n": i + 1, "i": i})
    _forge_after(log, parent_id=6, new_id=7)
    report = _report(log)
    assert ("inserted", 7) in _kinds(report)


@pytest.mark.req("REQ-40", "tamper-evident")
def test_swapped_events_are_a_reordering(log: Workspace) -> None:
    _tamper(
        log,
        "UPDATE audit_events SET id = -1 WHERE id = 3",
        "UPDATE audit_events SET id = 3 WHERE id = 4",
        "UPDATE audit_events SET id = 4 WHERE id = -1",
    )
    report = _report(log)
    assert {p.kind for p in report.problems} == {"reordered"}
    assert {3, 4} <= {p.event_id for p in report.problems}


@pytest.mark.req("REQ-40", "tamper-evident")
def test_a_truncated_tail_before_a_checkpoint_is_caught(log: Workspace) -> None:
    _tamper(log, "DELETE FROM audit_events WHERE id > 7")
    report = _report(log)
    assert [(p.kind, p.checkpoint_id) for p in report.problems] == [("truncated", 2)]
    assert "ends at event 7" in report.problems[0].message


@pytest.mark.req("REQ-40", "tamper-evident")
def test_a_chain_rewritten_beneath_a_checkpoint_is_caught(log: Workspace) -> None:
    """Delete event 3 and re-hash everything after it: the chain is whole again, the checkpoints not."""
    _tamper(log, "DELETE FROM audit_events WHERE id = 3")
    with log.sessions() as s, s.begin():
        prev = s.scalar(select(AuditEvent.hash).where(AuditEvent.id == 2))
        for event in s.scalars(select(AuditEvent).where(AuditEvent.id > 3).order_by(AuditEvent.id)):
            digest = event_digest(
                prev,
                naive_utc(event.at),
                event.actor,
                event.action,
                event.target,
                event.outcome,
                event.detail,
            )
            s.execute(
                text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :i"),
                {"p": prev, "h": digest, "i": event.id},
            )
            prev = digest
    report = _report(log)
    assert {(p.kind, p.checkpoint_id) for p in report.problems} == {
        ("checkpoint-mismatch", 1),
        ("checkpoint-mismatch", 2),
    }


@pytest.mark.req("REQ-40", "tamper-evident")
def test_a_forged_checkpoint_signature_is_caught(log: Workspace) -> None:
    _tamper(log, f"UPDATE audit_checkpoints SET signature = {_LAST_CHAR.format(c='signature')} WHERE id = 1")
    report = _report(log)
    assert [(p.kind, p.checkpoint_id) for p in report.problems] == [("forged-checkpoint", 1)]


@pytest.mark.req("REQ-40", "tamper-evident")
def test_a_checkpoint_signed_by_another_key_is_caught(log: Workspace, tmp_path: Path) -> None:
    """An intruder signs a shorter chain with a key of their own."""
    _tamper(log, "DELETE FROM audit_checkpoints", "DELETE FROM audit_events WHERE id > 7")
    other = Workspace.init(tmp_path / "other")
    other_engine_home = other.home
    with log.sessions() as s, s.begin():
        audit.write_checkpoint(s, other_engine_home)
    report = _report(log)
    assert [p.kind for p in report.problems] == ["forged-checkpoint"]
    assert "another signing key" in report.problems[0].message


# --- concurrent appenders ------------------------------------------------------------------------

_WRITER = """
import sys
from sqlalchemy import select
from pubdata import audit
from pubdata.db.models import AuditEvent
from pubdata.workspace import Workspace
workspace = Workspace.open(sys.argv[1])
for i in range(int(sys.argv[2])):
    with workspace.sessions() as s, s.begin():
        s.execute(select(AuditEvent.id).limit(1)).all()  # a read before the append
        audit.record(s, sys.argv[3], "query", f"E{i}", n=i)
"""


@pytest.mark.req("REQ-40", "tamper-evident")
def test_two_processes_appending_at_once_keep_one_chain(workspace: Workspace) -> None:
    per_writer = 150
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(workspace.home), str(per_writer), name])
        for name in ("writer-a", "writer-b")
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    with workspace.sessions() as s:
        report = audit.verify(s, audit.public_key_pem(workspace.home))
        actors = list(s.scalars(select(AuditEvent.actor)))
    assert report.ok, report.problems[:3]
    assert report.events_checked == 2 * per_writer
    assert actors.count("writer-a") == actors.count("writer-b") == per_writer


def _threads_append(workspace: Workspace, per_writer: int) -> None:
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(name: str) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                with workspace.sessions() as s, s.begin():
                    audit.record(s, name, "query", f"E{i}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in ("t1", "t2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.req("REQ-40", "tamper-evident")
def test_two_threads_on_postgresql_keep_one_chain(pg_workspace: Workspace) -> None:
    audit.register_workspace(pg_workspace.engine, pg_workspace.home, checkpoint_every=25)
    _threads_append(pg_workspace, 60)
    with pg_workspace.sessions() as s:
        report = audit.verify(s, audit.public_key_pem(pg_workspace.home))
    assert report.ok, report.problems[:3]
    assert (report.events_checked, report.checkpoints_checked) == (120, 4)


# --- the subject index and the reports (REQ-41) ----------------------------------------------------


def _access(
    workspace: Workspace, subjects: list[str], outcome: str = "ok", action: str = "query", **detail: object
) -> int:
    with workspace.sessions() as s, s.begin():
        return audit.record_access(
            s, "consumer", action, "E001", outcome, subjects, home=workspace.home, **detail
        ).id


@pytest.mark.req("REQ-41", "subject-access")
def test_who_accessed_finds_events_without_storing_the_number(workspace: Workspace) -> None:
    first = _access(workspace, [ID_NUMBER, ID_NUMBER.lower(), " " + ID_NUMBER, USCC], rows=3)
    _access(workspace, [make_id_number("330102", "19900202", 21)], rows=1)
    third = _access(workspace, [ID_NUMBER], action="query.export", rows=1)
    with workspace.sessions() as s:
        found = audit.who_accessed(s, workspace.home, id_number=ID_NUMBER.lower())
        by_uscc = audit.who_accessed(s, workspace.home, uscc=USCC)
        subject_rows = s.scalar(
            select(AuditSubject.id)
            .where(AuditSubject.event_id == first)
            .order_by(AuditSubject.id.desc())
            .limit(1)
        )
    assert [e.id for e in found] == [first, third]
    assert [e.id for e in by_uscc] == [first]
    assert subject_rows is not None
    with sqlite3.connect(workspace.home / "metadata.db") as raw:
        dump = "\n".join(raw.iterdump())
    assert ID_NUMBER not in dump and ID_NUMBER.lower() not in dump and USCC not in dump
    assert audit.subject_hash(workspace.home, ID_NUMBER) in dump


@pytest.mark.req("REQ-41", "subject-access")
def test_subjects_are_deduplicated_and_hashes_checked(workspace: Workspace) -> None:
    digest = audit.subject_hash(workspace.home, ID_NUMBER)
    with workspace.sessions() as s, s.begin():
        event = audit.record_access(
            s, "consumer", "query", "E001", "ok", [ID_NUMBER], subject_hashes=[digest]
        )
        assert list(
            s.scalars(select(AuditSubject.subject_hash).where(AuditSubject.event_id == event.id))
        ) == [digest]
        with pytest.raises(InputError):
            audit.record_access(s, "consumer", "query", "E001", "ok", [], subject_hashes=[ID_NUMBER])


@pytest.mark.req("REQ-41", "subject-access")
@pytest.mark.parametrize("backend", ["workspace", "pg_workspace"])
def test_engine_hashes_are_indexed_once_each_on_both_databases(
    request: pytest.FixtureRequest, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The query path hands over the engine's hashes as one Arrow array, repeats included; a long
    list goes in several statements (here of 16 hashes)."""
    monkeypatch.setattr(audit_events, "_PER_STATEMENT", 16)
    workspace: Workspace = request.getfixturevalue(backend)
    numbers = [make_id_number("330102", "19900202", n) for n in range(1, 40)]
    hashes = [audit.subject_hash(workspace.home, n) for n in numbers]
    with workspace.sessions() as s, s.begin():
        event = audit.record_access(
            s, "consumer", "query", "E001", "ok", [ID_NUMBER], subject_hashes=pa.array(hashes + hashes[:5])
        )
    with workspace.sessions() as s:
        stored = s.scalars(select(AuditSubject.subject_hash).where(AuditSubject.event_id == event.id))
        assert sorted(stored) == sorted({*hashes, audit.subject_hash(workspace.home, ID_NUMBER)})
        assert [e.id for e in audit.who_accessed(s, workspace.home, id_number=numbers[7])] == [event.id]
    with workspace.sessions() as s, s.begin(), pytest.raises(InputError):
        with_null = pa.array([hashes[0], None])
        audit.record_access(s, "consumer", "query", "E001", "ok", [], subject_hashes=with_null)


_ID_CHARS = st.text(alphabet="0123456789Xx ", min_size=1, max_size=20)


@pytest.mark.req("REQ-41", "subject-access")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_ID_CHARS)
def test_engine_subject_hash_equals_the_index_hash(workspace: Workspace, value: str) -> None:
    """The query path may hash a result's identity column in DuckDB: it must find the same events."""
    con = duckdb.connect()
    for name, secret in audit.subject_hash_variables(workspace.home).items():
        con.execute(f"SET VARIABLE {name} = $1", [secret])
    sql = audit.subject_hash_sql(exp.column("v")).sql("duckdb")
    assert "audit" not in sql.replace("__pk_audit_subject", "")
    got = con.execute(f"SELECT {sql} FROM (SELECT $1::VARCHAR AS v)", [value]).fetchone()
    assert got is not None and got[0] == audit.subject_hash(workspace.home, value)


@pytest.mark.req("REQ-41", "outside-purpose")
def test_outside_purpose_lists_refusals_beyond_grant_and_purpose_drift(workspace: Workspace) -> None:
    def event(action: str, outcome: str, **detail: object) -> int:
        with workspace.sessions() as s, s.begin():
            return audit.record(s, "consumer", action, "E001", outcome, **detail).id

    listed = [
        event("query", "refused", reason_kind="outside_purpose", purpose="营销", grant_purpose="社保核验"),
        event("query", "ok", purpose="营销", grant_purpose="社保核验", grant_id=3),
        event("export.csv", "refused", reason_kind="outside_fields", reason="field mobile not granted"),
    ]
    for args in [
        ("query", "refused", {"reason_kind": "no_grant"}),
        ("query", "ok", {"purpose": "社保核验", "grant_purpose": "社保核验"}),
        ("query", "ok", {"purpose": "统计"}),  # no grant applied: nothing to drift from
        ("catalog.update", "refused", {"reason_kind": "outside_purpose"}),
        ("queryx", "refused", {"reason_kind": "outside_purpose"}),
    ]:
        event(args[0], args[1], **args[2])
    with workspace.sessions() as s:
        assert [e.id for e in audit.outside_purpose(s)] == listed
        last_at = s.scalar(select(AuditEvent.at).where(AuditEvent.id == listed[-1]))
        assert last_at is not None
        assert [e.id for e in audit.outside_purpose(s, since=last_at)] == listed[-1:]


# --- no update or delete path ----------------------------------------------------------------------

_FORBIDDEN = [
    re.compile(
        r"(?i)\b(update|delete\s+from|truncate(\s+table)?)\s+[\"'`]?audit_(events|checkpoints|subjects)\b"
    ),
    re.compile(r"\b(update|delete)\(\s*Audit(Event|Checkpoint|Subject)\b"),
    re.compile(r"\bsession\.delete\(\s*(event|checkpoint|subject)\w*"),
    re.compile(r"ForeignKey\(\s*[\"']audit_\w+\.id[\"']\s*,\s*ondelete"),
]


def _violations(source: str) -> list[str]:
    return [m.group(0) for pattern in _FORBIDDEN for m in pattern.finditer(source)]


@pytest.mark.req("REQ-40", "append-only")
def test_no_code_path_updates_or_deletes_audit_rows() -> None:
    assert _violations("conn.execute(text('DELETE FROM audit_events WHERE id=1'))")
    assert _violations("session.execute(update(AuditEvent).values(actor='x'))")
    assert _violations('c.exec_driver_sql("update audit_checkpoints set signature=1")')
    assert _violations('ForeignKey("audit_events.id", ondelete="CASCADE")')
    found = {
        str(path.relative_to(ROOT)): hits
        for path in (ROOT / "src").rglob("*.py")
        if (hits := _violations(path.read_text("utf-8")))
    }
    assert found == {}


# --- the command line ------------------------------------------------------------------------------


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.req("REQ-40", "tamper-evident")
def test_cli_verify_passes_then_fails_after_one_changed_byte(log: Workspace) -> None:
    home = str(log.home)
    code, output = _cli("audit", "verify", "--home", home)
    assert code == 0, output
    assert "12 events and 2 checkpoints verified" in output and "2 event(s) after" in output
    _tamper(log, "UPDATE audit_events SET detail = replace(detail, '1008', '1009') WHERE id = 9")
    code, output = _cli("audit", "verify", "--home", home)
    assert code == 1 and "edited" in output and "event 9" in output
    code, output = _cli("audit", "verify", "--home", home, "--json")
    assert code == 1
    report = json.loads(output)
    assert report["ok"] is False and report["problems"][0]["event_id"] == 9


@pytest.mark.req("REQ-40", "tamper-evident")
def test_cli_checkpoint_and_exported_public_key(log: Workspace, tmp_path: Path) -> None:
    home = str(log.home)
    code, output = _cli("audit", "checkpoint", "--home", home, "--json")
    assert code == 0, output
    assert json.loads(output)["event_count"] == 12
    code, pem = _cli("audit", "public-key", "--home", home)
    assert code == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----")
    key_file = tmp_path / "audit.pem"
    key_file.write_text(pem, "ascii")
    code, output = _cli("audit", "verify", "--home", home, "--public-key", str(key_file), "--json")
    assert code == 0, output
    assert json.loads(output)["unsigned_tail"] == 0
    other = Workspace.init(tmp_path / "other")
    code, other_pem = _cli("audit", "public-key", "--home", str(other.home))
    key_file.write_text(other_pem, "ascii")
    code, output = _cli("audit", "verify", "--home", home, "--public-key", str(key_file))
    assert code == 1 and "forged-checkpoint" in output


@pytest.mark.req("REQ-41", "subject-access", "outside-purpose")
def test_cli_reports(workspace: Workspace) -> None:
    home = str(workspace.home)
    served = _access(workspace, [ID_NUMBER], purpose="营销", grant_purpose="社保核验")
    _access(workspace, [USCC], outcome="refused", reason_kind="no_grant")
    code, output = _cli("audit", "who-accessed", "--home", home, "--id-number", ID_NUMBER, "--json")
    assert code == 0, output
    assert [e["id"] for e in json.loads(output)] == [served]
    code, output = _cli("audit", "outside-purpose", "--home", home, "--json")
    assert code == 0 and [e["id"] for e in json.loads(output)] == [served]
    code, output = _cli("audit", "list", "--home", home, "--action", "audit", "--json")
    assert code == 0
    lookups = json.loads(output)
    assert [(e["action"], e["target"]) for e in lookups] == [("audit.who_accessed", "id_number")]
    assert ID_NUMBER not in output
    code, output = _cli("audit", "list", "--home", home, "--limit", "2")
    assert code == 0 and "audit.who_accessed" in output
    code, output = _cli("audit", "who-accessed", "--home", home)
    assert code == 2 and "exactly one" in output


@pytest.mark.req("REQ-40", "tamper-evident")
def test_appends_in_one_transaction_stay_linked_through_savepoints_and_commits(workspace: Workspace) -> None:
    """The chain's tail is remembered within a transaction only: a rolled-back savepoint or a commit
    forgets it, so the next event links to what the database really holds."""
    with workspace.sessions() as s:
        with s.begin():
            audit.record(s, "t", "bulk.a", "1")
            nested = s.begin_nested()
            audit.record(s, "t", "bulk.lost", "2")
            nested.rollback()
            audit.record(s, "t", "bulk.b", "3")
            audit.record(s, "t", "bulk.c", "4")
        with s.begin():
            audit.record(s, "t", "bulk.d", "5")
        actions = list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
        assert actions[-4:] == ["bulk.a", "bulk.b", "bulk.c", "bulk.d"] and "bulk.lost" not in actions
        report = audit.verify(s, audit.public_key_pem(workspace.home))
        assert report.ok, report.summary()
