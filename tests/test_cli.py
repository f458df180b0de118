"""The command line, driven through Typer's runner on real workspaces in temporary directories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from typer.testing import CliRunner

from pubdata.cli.main import app
from pubdata.identifiers import make_id_number, make_uscc

runner = CliRunner()

PROVIDER_USCC = make_uscc("11", "330000", "00250001")


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def run_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def org_spec(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "浙江省人力资源和社会保障厅",
        "short_name": "省人社厅",
        "org_type": "国家机关",
        "uscc": PROVIDER_USCC,
        "division_code": "330000",
        "head_name": "王主任",
        "security_officer_name": "李安全",
    } | overrides


def entry_spec(**overrides: Any) -> dict[str, Any]:
    return {
        "code": "RS-SKILL-001",
        "name": "职业技能等级证书信息",
        "provider": "省人社厅",
        "abstract": "全省职业技能等级证书发放记录",
        "category_class": "社会保障",
        "share_class": "受限共享",
        "share_conditions": "仅用于就业补贴核验",
        "legal_basis": "《浙江省公共数据条例》第二十四条",
        "open_class": "禁止开放",
        "update_cycle": "monthly",
        "key_fields": ["certificate_no"],
        "fields": [
            {"name": "certificate_no", "title": "证书编号", "level": 1, "required": True},
            {
                "name": "holder_id",
                "title": "身份证号",
                "validator": "id_number",
                "level": 4,
                "pii_kind": "id_number",
                "element_code": "DE-ID-NUMBER",
            },
            {"name": "skill", "title": "职业工种", "level": 1},
            {"name": "issued_on", "title": "发证日期", "data_type": "date", "level": 1},
        ],
    } | overrides


def write_toml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(data), "utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    run("init", "--home", home)
    return home


@pytest.fixture
def published(home: Path, tmp_path: Path) -> Path:
    """A workspace with one organisation and one published entry."""
    run("orgs", "register", write_toml(tmp_path / "org.toml", org_spec()), "--home", home)
    spec = tmp_path / "entry.json"
    spec.write_text(json.dumps(entry_spec(), ensure_ascii=False), "utf-8")
    run("catalog", "register", spec, "--home", home)
    run("catalog", "publish", "RS-SKILL-001", "--home", home)
    return home


def skills_csv(path: Path, rows: int = 5, bad: int = 0) -> Path:
    lines = ["证书编号,身份证号,职业工种,发证日期"]
    for i in range(rows):
        id_number = make_id_number("330102", f"19{70 + i % 20}0315", 2 * i + 1)
        if i < bad:
            id_number = id_number[:-1] + ("0" if id_number[-1] != "0" else "1")
        lines.append(f"C{i:05d},{id_number},电工,2023年3月{1 + i % 28}日")
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_init_is_repeatable_and_reports_the_workspace(tmp_path: Path) -> None:
    home = tmp_path / "h"
    first = run_json("init", "--home", str(home))
    again = run_json("init", "--home", str(home))
    assert first == again
    assert first["home"] == str(home.resolve())
    assert (home / "pubdata.toml").exists()


def test_commands_need_a_workspace(tmp_path: Path) -> None:
    output = run("catalog", "list", "--home", tmp_path / "none", code=1)
    assert "pubdata init" in output
    assert "Traceback" not in output


def test_organisation_register_list_show(home: Path, tmp_path: Path) -> None:
    spec = write_toml(tmp_path / "org.toml", org_spec())
    assert "浙江省人力资源和社会保障厅" in run("orgs", "register", spec, "--home", home)
    listed = run_json("orgs", "list", "--home", str(home))
    assert [o["uscc"] for o in listed] == [PROVIDER_USCC]
    shown = run_json("orgs", "show", "省人社厅", "--home", str(home))
    assert shown["org_type"] == {"value": "state_organ", "label": "国家机关"}
    assert shown["division_name"] == "浙江省"


@pytest.mark.req("REQ-2", "credit-code")
def test_organisation_with_bad_credit_code_is_refused_without_traceback(home: Path, tmp_path: Path) -> None:
    bad = PROVIDER_USCC[:-1] + ("0" if PROVIDER_USCC[-1] != "0" else "1")
    output = run(
        "orgs", "register", write_toml(tmp_path / "org.toml", org_spec(uscc=bad)), "--home", home, code=2
    )
    assert "uscc" in output and "Traceback" not in output
    assert run_json("orgs", "list", "--home", str(home)) == []


def test_register_publish_list_show(published: Path) -> None:
    page = run_json("catalog", "list", "--home", str(published))
    assert page["total"] == 1
    item = page["items"][0]
    assert item["share_class"] == {"value": "restricted", "label": "受限共享"}
    assert item["open_class"]["label"] == "禁止开放"
    assert item["level"] == {"value": 4, "label": "L4 敏感"}
    assert item["state"]["value"] == "published"
    detail = run_json("catalog", "show", "RS-SKILL-001", "--home", str(published))
    assert [f["name"] for f in detail["fields"]] == ["certificate_no", "holder_id", "skill", "issued_on"]
    assert detail["fields"][1]["pii_kind"]["label"] == "身份证号"
    assert detail["versions"] == []
    table = run("catalog", "list", "--home", published)
    assert "受限共享" in table and "L4 敏感" in table


def test_listing_filters_accept_chinese_labels(published: Path) -> None:
    def total(*filters: str) -> int:
        return int(run_json("catalog", "list", "--home", str(published), *filters)["total"])

    assert total("--share", "有条件共享") == 1
    assert total("--share", "unconditional") == 0
    assert total("--level", "L4") == 1
    assert total("--level", "2") == 0
    assert total("--text", "技能") == 1
    assert total("--state", "草稿") == 0
    output = run("catalog", "list", "--share", "sometimes", "--home", published, code=2)
    assert "--share" in output


def test_json_output_keeps_chinese_readable(published: Path) -> None:
    result = runner.invoke(app, ["catalog", "show", "RS-SKILL-001", "--home", str(published), "--json"])
    assert "职业技能等级证书信息" in result.stdout
    assert "\\u" not in result.stdout


def test_unknown_entry_is_one_line_without_traceback(home: Path) -> None:
    result = runner.invoke(app, ["catalog", "show", "NOPE", "--home", str(home)])
    assert result.exit_code == 2
    assert "NOPE" in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_spec_file_names_the_file(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "broken.toml"
    spec.write_text('code = "X"\nname = \n', "utf-8")
    output = run("catalog", "register", spec, "--home", home, code=2)
    assert "broken.toml" in output and "Traceback" not in output
    unknown = write_toml(tmp_path / "extra.toml", entry_spec(colour="blue"))
    assert "colour" in run("catalog", "register", unknown, "--home", home, code=2)


@pytest.mark.req("REQ-14", "basis-required")
def test_rule_violation_is_refused_with_exit_code_1(home: Path, tmp_path: Path) -> None:
    run("orgs", "register", write_toml(tmp_path / "org.toml", org_spec()), "--home", home)
    spec = write_toml(tmp_path / "e.toml", entry_spec(legal_basis="", share_conditions=""))
    output = run("catalog", "register", spec, "--home", home, code=1)
    assert "REQ-14" in output
    assert run_json("catalog", "list", "--home", str(home))["total"] == 0


def test_retire_is_final(published: Path) -> None:
    assert run_json("catalog", "retire", "RS-SKILL-001", "--home", str(published))["state"] == "retired"
    output = run("catalog", "publish", "RS-SKILL-001", "--home", published, code=1)
    assert "RS-SKILL-001" in output


def test_unexpected_errors_hint_at_debug_mode(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "pubdata.toml").write_text("[tenants]\n", "utf-8")
    (home / "workspace.json").write_text("{}", "utf-8")  # a damaged marker: not a platform error
    result = runner.invoke(app, ["catalog", "list", "--home", str(home)])
    assert result.exit_code == 3
    assert "PUBDATA_DEBUG=1" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("PUBDATA_DEBUG", "1")
    assert isinstance(runner.invoke(app, ["catalog", "list", "--home", str(home)]).exception, KeyError)


def test_ingest_versions_and_quality(published: Path, tmp_path: Path) -> None:
    loaded = run_json(
        "ingest", "RS-SKILL-001", str(skills_csv(tmp_path / "skills.csv", rows=6)), "--home", str(published)
    )
    assert loaded["version"]["rows_written"] == 6
    run(
        "ingest",
        "RS-SKILL-001",
        skills_csv(tmp_path / "more.csv", rows=8, bad=2),
        "--policy",
        "quarantine",
        "--max-reject-ratio",
        "0.25",
        "--home",
        published,
    )
    versions = run_json("versions", "RS-SKILL-001", "--home", str(published))
    assert [v["rows_written"] for v in versions] == [6, 6]
    assert versions[-1]["rows_rejected"] == 2
    latest = run_json("quality", "RS-SKILL-001", "--home", str(published))
    assert latest["version"]["version"] == versions[-1]["version"]
    first = run_json(
        "quality", "RS-SKILL-001", "--version", str(versions[0]["version"]), "--home", str(published)
    )
    assert first["version"]["rows_rejected"] == 0
    text = run("quality", "RS-SKILL-001", "--home", published)
    assert "rejected 2" in text and "**********" in text
    bad_id = (
        skills_csv(tmp_path / "again.csv", rows=1, bad=1).read_text("utf-8").splitlines()[1].split(",")[1]
    )
    assert bad_id not in text
    assert run_json("catalog", "show", "RS-SKILL-001", "--home", str(published))["versions"] == versions


def test_quality_of_unknown_version_lists_the_known_ones(published: Path, tmp_path: Path) -> None:
    assert "no data yet" in run("quality", "RS-SKILL-001", "--home", published, code=2)
    run("ingest", "RS-SKILL-001", skills_csv(tmp_path / "s.csv"), "--home", published)
    assert "versions:" in run("quality", "RS-SKILL-001", "--version", "99", "--home", published, code=2)


def test_ingest_into_unknown_entry_fails_cleanly(home: Path, tmp_path: Path) -> None:
    output = run("ingest", "NOPE", skills_csv(tmp_path / "s.csv"), "--home", home, code=2)
    assert "NOPE" in output and "Traceback" not in output


@pytest.mark.req("REQ-9", "already-held")
def test_overlap_reports_elements_already_held(published: Path, tmp_path: Path) -> None:
    new = entry_spec(
        code="EDU-CERT-1",
        name="教师资格",
        fields=[
            {"name": "teacher_id", "title": "身份证号", "element_code": "DE-ID-NUMBER"},
            {"name": "subject", "title": "学科"},
        ],
    )
    hits = run_json(
        "catalog", "overlap", str(write_toml(tmp_path / "new.toml", new)), "--home", str(published)
    )
    assert any("RS-SKILL-001" in json.dumps(hit, ensure_ascii=False) for hit in hits)
    assert not any("学科" in json.dumps(hit, ensure_ascii=False) for hit in hits)
    from_file = run_json("catalog", "overlap", str(skills_csv(tmp_path / "s.csv")), "--home", str(published))
    assert from_file


@pytest.mark.req("REQ-30", "l4-content")
def test_suggest_proposes_kinds_and_levels_from_values(home: Path, tmp_path: Path) -> None:
    suggestions = run_json(
        "catalog", "suggest", str(skills_csv(tmp_path / "s.csv", rows=30)), "--home", str(home)
    )
    by_name = {s["name"]: s for s in suggestions}
    assert by_name["身份证号"]["pii_kind"] == "id_number"
    assert by_name["身份证号"]["level"] == 4
    assert by_name["职业工种"]["level"] == 1
    assert "L4 敏感" in run("catalog", "suggest", tmp_path / "s.csv", "--home", home)


@pytest.mark.slow
def test_demo_builds_without_serving_and_a_second_run_keeps_it(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    built = run_json("demo", "--home", str(home), "--scale", "0.01", "--no-serve")
    assert built["url"] is None
    assert Path(built["accounts"]).exists()
    assert (
        built["summary"]["entries"] >= 14 and built["summary"]["versions"] >= built["summary"]["entries"] - 1
    )
    page = run_json("catalog", "list", "--home", str(home), "--limit", "200")
    assert page["total"] == built["summary"]["entries"]
    again = run_json("demo", "--home", str(home), "--scale", "0.01", "--no-serve")
    assert again["summary"] is None and again["accounts"] == built["accounts"]
    assert run_json("catalog", "list", "--home", str(home), "--limit", "200")["total"] == page["total"]
