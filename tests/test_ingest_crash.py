"""kill -9 of a real `pubdata ingest` process: the previous version stays, nothing half is listed.

The child is the CLI itself, ingesting a generated CSV with validation into an entry that already
has a version. It is killed at random moments (several seeds) while it reads, validates and writes.
Afterwards the listed versions are exactly the ones before and the current version reads back to
the same content — or, when the kill came after the commit was indexed, one more version that holds
the whole file. No quarantine file is left half-written, and the next ingest succeeds.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pubdata.catalog.classes import FieldType, OpenClass, OrgType, PiiKind, ShareClass
from pubdata.catalog.service import create_entry, get_entry, register_organisation
from pubdata.catalog.specs import EntrySpec, FieldSpec, OrganisationSpec
from pubdata.divisions import divisions
from pubdata.identifiers import make_id_number, make_uscc
from pubdata.ingest.pipeline import ingest_file
from pubdata.store.delta import DatasetStore
from pubdata.workspace import Workspace

CODE = "crash_enrolment"
BIG_ROWS = 250_000


def make_entry(workspace: Workspace) -> None:
    org = OrganisationSpec(
        name="浙江省人力资源和社会保障厅",
        org_type=OrgType.STATE_ORGAN,
        uscc=make_uscc("11", "330000", "00250240"),
        division_code="330000000000",
        head_name="负责人",
        security_officer_name="安全员",
    )
    entry = EntrySpec(
        code=CODE,
        name="参保信息",
        provider=org.name,
        fields=[
            FieldSpec("id_number", "身份证号", validator="id_number", pii_kind=PiiKind.ID_NUMBER, level=4),
            FieldSpec("enrol_date", "参保日期", data_type=FieldType.DATE, level=1),
            FieldSpec("amount", "缴费基数", data_type=FieldType.DECIMAL, level=2),
        ],
        share_class=ShareClass.RESTRICTED,
        legal_basis="《社会保险法》",
        share_conditions="按职责使用",
        open_class=OpenClass.PROHIBITED,
    )
    with workspace.sessions() as session, session.begin():
        register_organisation(session, org, "test")
        create_entry(session, entry, "test", workspace.settings.default)


def write_csv(path: Path, rows: int, seed: int) -> Path:
    rng = random.Random(seed)
    counties = divisions().county_codes()
    # A few thousand distinct valid numbers repeated: generation stays fast, validation is real.
    pool = [
        make_id_number(
            rng.choice(counties),
            f"19{rng.randint(50, 99)}0{rng.randint(1, 9)}1{rng.randint(0, 9)}",
            rng.randint(0, 999),
        )
        for _ in range(2000)
    ]
    lines = ["身份证号,参保日期,缴费基数"]
    lines += [f"{pool[i % len(pool)]},2021-0{1 + i % 9}-1{i % 10},{(i % 9000) + 1000}.5" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def snapshot(workspace: Workspace) -> tuple[list[int], list[tuple[object, ...]]]:
    store = DatasetStore(workspace.data_dir, workspace.sessions)
    with workspace.sessions() as session:
        entry = get_entry(session, CODE)
        listed = [v.version for v in store.versions(session, entry)]
    rows = store.read(entry).to_pylist()
    return listed, sorted(tuple(r.values()) for r in rows)


@pytest.mark.slow
def test_kill_minus_nine_during_ingest_leaves_the_previous_version(tmp_path: Path) -> None:
    workspace = Workspace.init(tmp_path / "home")
    make_entry(workspace)
    ingest_file(workspace, CODE, write_csv(tmp_path / "first.csv", 50, seed=1), operator="test")
    before = snapshot(workspace)
    big = write_csv(tmp_path / "big.csv", BIG_ROWS, seed=2)
    env = {**os.environ, "PUBDATA_HOME": str(workspace.home)}
    command = [sys.executable, "-m", "pubdata", "ingest", CODE, str(big), "--policy", "quarantine"]

    started = time.monotonic()
    subprocess.run(command, env=env, check=True, capture_output=True)
    full_run = time.monotonic() - started
    # That run succeeded: it is the version we now kill the next attempts against.
    before = snapshot(workspace)
    assert len(before[0]) == 2

    for seed in range(4):
        delay = random.Random(seed).uniform(0.05, 0.8) * full_run
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        after = snapshot(workspace)
        if after[0] == before[0]:
            assert after[1] == before[1], f"seed {seed}: current version content changed"
        else:
            # The kill came after the commit was indexed: then the new version must be whole.
            assert after[0][:-1] == before[0], f"seed {seed}: more than one version appeared"
            assert len(after[1]) == BIG_ROWS, f"seed {seed}: a listed version is partial"
            before = after
        leftovers = [p for p in (workspace.quarantine_dir / CODE).glob("*.parquet")]
        assert all(not p.name.startswith(".") for p in leftovers)

    result = ingest_file(workspace, CODE, big, operator="test")
    listed, rows = snapshot(workspace)
    assert listed[-1] == result.version.version
    assert len(rows) == BIG_ROWS
