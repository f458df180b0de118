"""P3: validated ingestion of a large CSV vs DuckDB `read_csv` → Parquet of the same file.

Both sides run in a fresh subprocess so that peak RSS (``ru_maxrss``) is measured the same way.
Goals: ours ≥ 0.5x DuckDB's speed; peak RSS at 10 M rows ≤ 1.5x that at 1 M rows (memory follows
the batch, not the file).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb

from pubdata.catalog.classes import FieldType, OpenClass, OrgType, PiiKind, ShareClass
from pubdata.catalog.service import create_entry, register_organisation
from pubdata.catalog.specs import EntrySpec, FieldSpec, OrganisationSpec
from pubdata.divisions import divisions
from pubdata.identifiers import make_uscc
from pubdata.workspace import Workspace

_REPO = Path(__file__).resolve().parent.parent
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _id_number_sql(body: str) -> str:
    """SQL for an ISO 7064 MOD 11-2 check character over a 17-digit expression (constants only)."""
    total = " + ".join(f"substr({body}, {i + 1}, 1)::INT * {w}" for i, w in enumerate(_WEIGHTS))
    return f"{body} || substr('10X98765432', (({total}) % 11) + 1, 1)"


def prepare_entry(home: Path) -> Workspace:
    """A workspace with one person-level entry whose columns carry the validators under test."""
    workspace = Workspace.init(home)
    settings = workspace.settings.default
    org = OrganisationSpec(
        name="浙江省人力资源和社会保障厅",
        org_type=OrgType.STATE_ORGAN,
        uscc=make_uscc("11", "330000", "00250240"),
        division_code="330000000000",
        head_name="负责人",
        security_officer_name="安全员",
    )
    fields = [
        FieldSpec("id_number", "身份证号", validator="id_number", pii_kind=PiiKind.ID_NUMBER, level=4),
        FieldSpec("name", "姓名", pii_kind=PiiKind.NAME, level=2),
        FieldSpec("mobile", "手机号码", validator="mobile", pii_kind=PiiKind.MOBILE, level=3),
        FieldSpec("division_code", "行政区划代码", validator="division_code", level=1),
        FieldSpec("enrol_date", "参保日期", data_type=FieldType.DATE, level=1),
        FieldSpec("contribution_base", "缴费基数", data_type=FieldType.DECIMAL, level=2),
    ]
    entry = EntrySpec(
        code="bench_enrolment",
        name="社会保险参保信息",
        provider=org.name,
        fields=fields,
        share_class=ShareClass.RESTRICTED,
        legal_basis="《社会保险法》",
        share_conditions="按职责使用",
        open_class=OpenClass.PROHIBITED,
    )
    with workspace.sessions() as session, session.begin():
        register_organisation(session, org, "bench")
        create_entry(session, entry, "bench", settings)
    return workspace


def generate_csv(path: Path, rows: int) -> None:
    """A person-level CSV with valid IDs and mobiles, about 1 in 1,000 values bad."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    counties = divisions().county_codes()
    con = duckdb.connect()
    con.execute("CREATE TABLE counties AS SELECT unnest($1::VARCHAR[]) AS code", [counties])
    con.execute("CREATE TABLE c AS SELECT row_number() OVER (ORDER BY code) - 1 AS k, code FROM counties")
    body = (
        "c.code || strftime(DATE '1950-01-01' + (hash(i) % 25000)::INT, '%Y%m%d')"
        " || lpad((i % 1000)::VARCHAR, 3, '0')"
    )
    con.execute(
        f"""
        COPY (
          WITH b AS (SELECT i, {body} AS body FROM range({rows}) t(i) JOIN c ON c.k = i % {len(counties)})
          SELECT
            CASE WHEN i % 1000 = 7 THEN body || '0' ELSE {_id_number_sql("body")} END AS 身份证号,
            substr('王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗', (i % 20)::INT + 1, 1)
              || substr('伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚华建国红梅', (hash(i * 7) % 26)::INT + 1, 1)
              AS 姓名,
            CASE WHEN i % 1000 = 11 THEN '2' ELSE '1' || (3 + i % 7)::VARCHAR END
              || lpad((hash(i) % 1000000000)::VARCHAR, 9, '0') AS 手机号码,
            substr(body, 1, 6) || '000000' AS 行政区划代码,
            strftime(DATE '2015-01-01' + (i % 3000)::INT, '%Y-%m-%d') AS 参保日期,
            round((hash(i * 3) % 1000000) / 100.0, 2) AS 缴费基数
          FROM b
        ) TO '{path}' (HEADER, DELIMITER ',')
        """
    )


WORKER = r"""
import json, resource, sys, time
from pathlib import Path
from bench.ingest import prepare_entry
from pubdata.ingest.pipeline import ingest_file
home, csv = Path(sys.argv[1]), Path(sys.argv[2])
workspace = prepare_entry(home)
start = time.perf_counter()
result = ingest_file(workspace, "bench_enrolment", csv, operator="bench", policy="quarantine")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": result.version.rows_written,
                  "rejected": result.version.rows_rejected,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

BASELINE = r"""
import json, resource, sys, time
import duckdb
csv, out = sys.argv[1], sys.argv[2]
start = time.perf_counter()
duckdb.connect().execute(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{out}' (FORMAT parquet)")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=False, cwd=_REPO
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(workdir: Path, scale: float, repeat: int) -> dict[str, Any]:
    sizes = [max(1000, int(1_000_000 * scale)), max(10_000, int(10_000_000 * scale))]
    cases = []
    for rows in sizes:
        csv = workdir / f"persons-{rows}.csv"
        print(f"P3: generating {rows:,} rows …", flush=True)
        generate_csv(csv, rows)
        ours, base = [], []
        for attempt in range(repeat):
            home = workdir / f"home-{rows}-{attempt}"
            subprocess.run(["rm", "-rf", str(home)], check=True)
            base.append(_run(BASELINE, str(csv), str(workdir / "baseline.parquet")))
            ours.append(_run(WORKER, str(home), str(csv)))
        case = {
            "rows": rows,
            "csv_mb": round(csv.stat().st_size / 2**20, 1),
            "ours_s": statistics.median(r["seconds"] for r in ours),
            "duckdb_s": statistics.median(r["seconds"] for r in base),
            "ours_rss_mb": max(r["rss_mb"] for r in ours),
            "duckdb_rss_mb": max(r["rss_mb"] for r in base),
            "rejected": ours[0]["rejected"],
        }
        case["speed_ratio"] = round(case["duckdb_s"] / case["ours_s"], 3)
        cases.append(case)
    rss_ratio = round(cases[1]["ours_rss_mb"] / cases[0]["ours_rss_mb"], 3)
    _print(cases, rss_ratio)
    return {
        "benchmark": "P3 ingest",
        "cases": cases,
        "rss_ratio_large_to_small": rss_ratio,
        "goals": {"speed_ratio": ">= 0.5", "rss_ratio": "<= 1.5"},
    }


def _print(cases: list[dict[str, Any]], rss_ratio: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="P3 ingest (validated) vs DuckDB read_csv → Parquet, medians")
    for column in (
        "rows",
        "CSV MB",
        "ours s",
        "DuckDB s",
        "speed ratio (goal ≥ 0.5)",
        "ours RSS MB",
        "DuckDB RSS MB",
        "rejected",
    ):
        table.add_column(column, justify="right")
    for c in cases:
        table.add_row(
            f"{c['rows']:,}",
            str(c["csv_mb"]),
            f"{c['ours_s']:.2f}",
            f"{c['duckdb_s']:.2f}",
            f"{c['speed_ratio']:.2f}",
            f"{c['ours_rss_mb']:.0f}",
            f"{c['duckdb_rss_mb']:.0f}",
            f"{c['rejected']:,}",
        )
    Console().print(table)
    Console().print(f"peak RSS ratio, large / small: {rss_ratio:.2f} (goal ≤ 1.5)")
