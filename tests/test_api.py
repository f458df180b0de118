"""The read-only catalogue API, through FastAPI's in-process client on a real workspace."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pubdata.api.app import ROUTERS, create_app
from pubdata.catalog import service
from pubdata.catalog.specs import entry_from_dict, organisation_from_dict
from pubdata.identifiers import make_id_number, make_uscc
from pubdata.workspace import Workspace

HRSS = make_uscc("11", "330000", "00250001")
SAMR = make_uscc("11", "330000", "00250002")
JX = make_uscc("11", "330400", "00250003")


def _org(name: str, short: str, uscc: str, division: str) -> dict[str, Any]:
    return {
        "name": name,
        "short_name": short,
        "org_type": "state_organ",
        "uscc": uscc,
        "division_code": division,
        "head_name": "负责人",
        "security_officer_name": "安全员",
    }


def _entry(code: str, name: str, provider: str, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": name,
        "provider": provider,
        "abstract": f"{name}摘要",
        "category_class": "综合",
        "update_cycle": "monthly",
    } | extra


ENTRIES = [
    _entry(
        "RS-ENROL",
        "社会保险参保信息",
        "省人社厅",
        share_class="restricted",
        open_class="prohibited",
        share_conditions="就业补贴核验",
        legal_basis="社会保险法",
        key_fields=["person_id"],
        fields=[
            {
                "name": "person_id",
                "title": "身份证号",
                "level": 4,
                "pii_kind": "id_number",
                "validator": "id_number",
                "element_code": "DE-ID",
            },
            {"name": "insured_since", "title": "参保日期", "level": 1, "data_type": "date"},
        ],
    ),
    _entry(
        "SC-ENTERPRISE",
        "企业登记信息",
        "省市场监管局",
        share_class="unconditional",
        open_class="unconditional",
        update_cycle="daily",
        fields=[
            {
                "name": "uscc",
                "title": "统一社会信用代码",
                "level": 1,
                "pii_kind": "uscc",
                "element_code": "DE-USCC",
                "authoritative": True,
            },
            {"name": "company", "title": "企业名称", "level": 1},
        ],
    ),
    _entry(
        "JX-UNION",
        "嘉兴市工会会员",
        "嘉兴市数据局",
        region_code="330400000000",
        share_class="restricted",
        open_class="prohibited",
        share_conditions="工会服务",
        legal_basis="工会法",
        fields=[{"name": "member", "title": "姓名", "level": 2, "pii_kind": "name"}],
    ),
]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """Three organisations, two published entries (one overdue) and one draft."""
    workspace = Workspace.init(tmp_path_factory.mktemp("api") / "home")
    with workspace.sessions() as session, session.begin():
        for org in (
            _org("浙江省人力资源和社会保障厅", "省人社厅", HRSS, "330000"),
            _org("浙江省市场监督管理局", "省市场监管局", SAMR, "330000"),
            _org("嘉兴市数据局", "嘉兴市数据局", JX, "330400"),
        ):
            service.register_organisation(session, organisation_from_dict(org), "test")
        settings_ = workspace.settings.default
        for data in ENTRIES:
            service.create_entry(session, entry_from_dict(data), "test", settings_)
        for code in ("RS-ENROL", "SC-ENTERPRISE"):
            service.publish_entry(session, code, "test", settings_)
        service.get_entry(session, "SC-ENTERPRISE").published_at = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    return workspace


def _id_number(n: int, valid: bool = True) -> str:
    good = make_id_number("330102", "19800101", 2 * n + 1)
    return good if valid else good[:-1] + ("1" if good[-1] == "0" else "0")


@pytest.fixture(scope="module")
def loaded(catalogue: Workspace) -> Workspace:
    """RS-ENROL with two versions: 4 clean rows, then 5 rows of which one has a bad check character."""
    from pubdata.ingest.pipeline import ingest_file

    folder = catalogue.home / "files"
    folder.mkdir()
    for i, (rows, bad) in enumerate(((4, 0), (5, 1))):
        lines = ["身份证号,参保日期"]
        lines += [f"{_id_number(n, valid=n >= bad)},2020-01-0{1 + n}" for n in range(rows)]
        path = folder / f"enrol-{i}.csv"
        path.write_text("\n".join(lines) + "\n", "utf-8")
        # One bad row in five is over the default refusal ratio: this fixture wants it written.
        ingest_file(catalogue, "RS-ENROL", path, operator="test", policy=None, max_reject_ratio=1.0)
    return catalogue


@pytest.fixture(scope="module")
def client(catalogue: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(catalogue)) as c:
        yield c


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"


def test_list_returns_items_and_total(client: TestClient) -> None:
    body = client.get("/api/entries").json()
    # The draft JX-UNION is the provider's work in progress: public metadata leaves it out.
    assert body["total"] == 2
    assert {i["code"] for i in body["items"]} == {"RS-ENROL", "SC-ENTERPRISE"}
    assert (body["offset"], body["limit"]) == (0, 50)


@pytest.mark.parametrize(
    ("params", "codes"),
    [
        ({"share_class": "unconditional"}, {"SC-ENTERPRISE"}),
        ({"open_class": "prohibited"}, {"RS-ENROL"}),
        ({"level": 4}, {"RS-ENROL"}),
        ({"level": 2}, set()),
        ({"state": "draft"}, set()),
        ({"state": "published"}, {"RS-ENROL", "SC-ENTERPRISE"}),
        ({"provider": "省市场监管局"}, {"SC-ENTERPRISE"}),
        ({"q": "参保"}, {"RS-ENROL"}),
        ({"region": "330400"}, {"RS-ENROL", "SC-ENTERPRISE"}),
        ({"region": "330500"}, {"RS-ENROL", "SC-ENTERPRISE"}),
        ({"overdue": "true"}, {"SC-ENTERPRISE"}),
    ],
)
def test_list_filters(client: TestClient, params: dict[str, Any], codes: set[str]) -> None:
    body = client.get("/api/entries", params=params).json()
    assert {i["code"] for i in body["items"]} == codes
    assert body["total"] == len(codes)


@pytest.mark.req("REQ-11", "update-cycle", "overdue")
def test_overdue_flag_follows_the_update_cycle(client: TestClient) -> None:
    items = {i["code"]: i for i in client.get("/api/entries").json()["items"]}
    assert items["SC-ENTERPRISE"]["overdue"] is True
    assert items["RS-ENROL"]["overdue"] is False


def test_paging_is_stable_and_complete(client: TestClient) -> None:
    pages = [client.get("/api/entries", params={"limit": 1, "offset": n}).json() for n in range(3)]
    assert [len(p["items"]) for p in pages] == [1, 1, 0]
    assert len({p["items"][0]["code"] for p in pages[:2]}) == 2
    assert all(p["total"] == 2 for p in pages)


def test_a_draft_answers_like_an_unknown_entry(client: TestClient) -> None:
    for path in ("/api/entries/JX-UNION", "/api/entries/JX-UNION/versions"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json() == client.get(path.replace("JX-UNION", "NO-SUCH")).json() | {
            "detail": "no catalogue entry 'JX-UNION'"
        }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(min_value=-5, max_value=400), level=st.integers(min_value=-2, max_value=7))
def test_bad_params_are_422(client: TestClient, limit: int, level: int) -> None:
    status = client.get("/api/entries", params={"limit": limit, "level": level}).status_code
    assert status == (200 if 1 <= limit <= 200 and 1 <= level <= 4 else 422)


@pytest.mark.parametrize("params", [{"share_class": "sometimes"}, {"region": "33x"}, {"overdue": "maybe"}])
def test_bad_vocabulary_is_422(client: TestClient, params: dict[str, str]) -> None:
    assert client.get("/api/entries", params=params).status_code == 422


@pytest.mark.req("REQ-10", "core-metadata", "zhejiang-fields")
def test_detail_carries_core_metadata_fields_and_versions(client: TestClient, loaded: Workspace) -> None:
    body = client.get("/api/entries/RS-ENROL").json()
    assert body["provider"] == "浙江省人力资源和社会保障厅"
    assert body["provider_uscc"] == HRSS
    assert body["share_class"] == {"value": "restricted", "label": "受限共享"}
    assert body["open_class"] == {"value": "prohibited", "label": "禁止开放"}
    assert body["level"] == {"value": 4, "label": "L4 敏感"}
    assert body["legal_basis"] == "社会保险法"
    assert body["category"][0] == "综合"
    person = body["fields"][0]
    assert person["pii_kind"] == {"value": "id_number", "label": "身份证号"}
    assert person["level"]["value"] == 4 and person["element_code"] == "DE-ID"
    assert [v["version"] for v in body["versions"]] == sorted(v["version"] for v in body["versions"])
    assert len(body["versions"]) == 2


def test_unknown_entry_is_404_with_json_error(client: TestClient) -> None:
    for path in ("/api/entries/NOPE", "/api/entries/NOPE/versions", "/api/entries/NOPE/versions/0/quality"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert "NOPE" in response.json()["detail"]


def test_versions_and_quality(client: TestClient, loaded: Workspace) -> None:
    versions = client.get("/api/entries/RS-ENROL/versions").json()
    assert [v["rows_written"] for v in versions] == [4, 4]
    assert versions[1]["rows_rejected"] + versions[1]["rows_flagged"] == 1
    quality = client.get(f"/api/entries/RS-ENROL/versions/{versions[1]['version']}/quality").json()
    assert quality["version"] == versions[1]
    assert quality["report"]
    missing = client.get("/api/entries/RS-ENROL/versions/99/quality")
    assert missing.status_code == 404 and "99" in missing.json()["detail"]


def test_quality_report_never_shows_a_full_id_number(client: TestClient, loaded: Workspace) -> None:
    versions = client.get("/api/entries/RS-ENROL/versions").json()
    text = client.get(f"/api/entries/RS-ENROL/versions/{versions[1]['version']}/quality").text
    assert _id_number(0, valid=False) not in text


def test_organisations(client: TestClient) -> None:
    body = client.get("/api/organisations").json()
    assert {o["uscc"] for o in body} == {HRSS, SAMR, JX}
    jiaxing = next(o for o in body if o["uscc"] == JX)
    assert jiaxing["division_name"] == "嘉兴市"


def test_openapi_lists_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    routes = {r.path for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)}
    assert routes == set(spec["paths"])
    assert {
        "/api/entries",
        "/api/entries/{code}",
        "/api/entries/{code}/versions",
        "/api/entries/{code}/versions/{version}/quality",
        "/api/organisations",
        "/healthz",
        "/api/v1/query",
        "/api/v1/entries/{code}/rows",
    } <= routes
    # The catalogue is read-only: writes (queries, workflow steps) live under /api/v1 only.
    writes = {(p, m) for p, item in spec["paths"].items() for m in item if m != "get"}
    assert ("/api/v1/query", "post") in writes
    assert all(p.startswith("/api/v1/") for p, _ in writes)


def test_two_apps_serve_two_workspaces(client: TestClient, tmp_path: Path) -> None:
    other = TestClient(create_app(Workspace.init(tmp_path / "other")))
    assert other.get("/api/entries").json()["total"] == 0
    assert client.get("/api/entries").json()["total"] == 2


def test_a_page_offset_past_the_bound_is_refused_as_invalid_not_a_server_error(client: TestClient) -> None:
    answer = client.get("/api/entries", params={"offset": 96201288759529144187879424})
    assert answer.status_code == 422
    assert client.get("/api/entries", params={"offset": 2**31 - 1}).status_code == 200
