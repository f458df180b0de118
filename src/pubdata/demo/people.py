"""Synthetic residents and enterprises of the demo province, reproducible from one seed.

Faker is slow per row (tens of microseconds a call), so it only fills small pools of surnames,
given names, mobile prefixes and street names; DuckDB then draws every person from those pools with
`hash(i, seed, k)`. A person is a pure function of its index, so any range of the population can be
regenerated in any order, in parallel and in chunks — scale 1000 never holds the population in
memory — and the same person shows up with the same ID number in every agency's file.

Example:
    >>> con = generator(seed=7)
    >>> row = con.execute("SELECT id_number FROM persons(0, 1)").fetchone()
    >>> from pubdata.identifiers import id_number_problem
    >>> id_number_problem(row[0]) is None
    True
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from faker import Faker

from pubdata.divisions import divisions
from pubdata.identifiers import make_uscc

#: ISO 7064 MOD 11-2 weights of the 17 body digits of an identity number (2^(17-k) mod 11).
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
#: Codes abolished in 2021 that are still printed on cards issued before (PITFALLS: stdnum.cn.ric).
ABOLISHED = {"330105": "330103", "330102": "330104"}
#: Births are spread over 1950-01-01 + this many days; (day, sequence) pairs are drawn without
#: repetition, so identity numbers stay unique up to this many persons times 1000.
BIRTH_DAYS = 20_089


def _rng(seed: int) -> random.Random:
    """Reproducible draws for demo data; nothing here is a secret."""
    return random.Random(seed)  # noqa: S311


def faker(seed: int) -> Faker:
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    return fake


def _pools(seed: int) -> pa.Table:
    """One row of list columns; repeated draws keep Faker's name frequencies."""
    fake = faker(seed)
    table = divisions()
    towns = [d for d in table if d.level == "township" and not d.abolished]
    labels = ["".join(a.name for a in reversed(table.ancestors(d.code)[:-1])) for d in towns]
    counties = table.county_codes(include_abolished=False) + list(ABOLISHED.values()) * 2
    rng, space = _rng(seed), BIRTH_DAYS * 1000
    step = next(a for a in iter(lambda: rng.randrange(space // 3, space), 0) if math.gcd(a, space) == 1)
    return pa.table(
        {
            "seed": [seed],
            "step": [step],
            "start": [rng.randrange(space)],
            "space": [space],
            "surnames": [[fake.last_name() for _ in range(3000)]],
            "given_f": [[fake.first_name_female() for _ in range(1500)]],
            "given_m": [[fake.first_name_male() for _ in range(1500)]],
            "prefixes": [[fake.phone_number()[:3] for _ in range(400)]],
            "streets": [[fake.street_name() for _ in range(400)]],
            "towns": [[d.code for d in towns]],
            "town_labels": [labels],
            "counties": [counties],
        }
    )


def _id_check(body: str) -> str:
    weighted = " + ".join(f"substr({body}, {k + 1}, 1)::INTEGER * {w}" for k, w in enumerate(_ID_WEIGHTS))
    check = f"(12 - ({weighted}) % 11) % 11"
    return f"CASE {check} WHEN 10 THEN 'X' ELSE ({check})::VARCHAR END"


def generator(seed: int = 20220125) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the `persons(lo, hi)` table macro and the pools registered."""
    con = duckdb.connect()
    con.register("pools", _pools(seed))
    con.execute(f"CREATE MACRO id_check(body) AS {_id_check('body')}")
    con.execute("CREATE MACRO h(i, seed, k) AS (hash(i, seed, k) >> 1)::BIGINT")
    con.execute("""
        CREATE MACRO persons(lo, hi) AS TABLE
        WITH base AS (
            SELECT r.i, (p.step * r.i + p.start) % p.space AS x,
                   p.surnames[1 + h(r.i, p.seed, 1) % len(p.surnames)] AS surname,
                   h(r.i, p.seed, 2) AS pick, p.given_f, p.given_m,
                   1 + h(r.i, p.seed, 5) % len(p.towns) AS town,
                   p.prefixes[1 + h(r.i, p.seed, 6) % len(p.prefixes)]
                     || lpad((h(r.i, p.seed, 7) % 100000000)::VARCHAR, 8, '0') AS mobile,
                   p.counties[1 + h(r.i, p.seed, 8) % len(p.counties)] AS elsewhere,
                   h(r.i, p.seed, 9) % 100 AS moved,
                   p.streets[1 + h(r.i, p.seed, 10) % len(p.streets)]
                     || (1 + h(r.i, p.seed, 11) % 300)::VARCHAR || '号' AS street,
                   p.towns, p.town_labels
            FROM range(lo, hi) r(i), pools p
        ), drawn AS (
            SELECT *, (x % 1000)::INTEGER AS seq, DATE '1950-01-01' + (x // 1000)::INTEGER AS birth_date,
                   surname || CASE x % 2 WHEN 1 THEN given_m[1 + pick % len(given_m)]
                                         ELSE given_f[1 + pick % len(given_f)] END AS name
            FROM base
        ), placed AS (
            SELECT *, towns[town] AS division_code,
                   CASE WHEN moved < 85 THEN substr(towns[town], 1, 6) ELSE elsewhere END AS residence
            FROM drawn
        ), issued AS (
            SELECT *,
                   CASE WHEN residence = '330105' AND birth_date < DATE '1995-01-01' THEN '330103'
                        WHEN residence = '330102' AND birth_date < DATE '1990-01-01' THEN '330104'
                        ELSE residence END
                   || strftime(birth_date, '%Y%m%d') || lpad(seq::VARCHAR, 3, '0') AS body
            FROM placed
        )
        SELECT i, name, CASE seq % 2 WHEN 1 THEN '男' ELSE '女' END AS gender, birth_date,
               body || id_check(body) AS id_number, mobile, division_code,
               town_labels[town] || street AS address, substr(body, 1, 6) AS id_county
        FROM issued
    """)
    return con


@dataclass(frozen=True)
class Park:
    name: str
    division_code: str
    enterprises: int


#: Jiaxing's 16 municipal pilot parks of 小微企业园区 (the seed names four), 813 enterprises in all.
JIAXING_PARKS: tuple[Park, ...] = (
    Park("上海交大嘉兴科技园", "330402010000", 92),
    Park("中节能（嘉兴）环保产业园", "330411002000", 61),
    Park("濮院毛衫创新园", "330483101000", 70),
    Park("张江长三角科技城平湖园机电装备创业创新中心", "330482102000", 55),
    *(
        Park(f"{town}小微企业园", code, n)
        for town, code, n in (
            ("凤桥镇", "330402100000", 38),
            ("王江泾镇", "330411101000", 47),
            ("洪合镇", "330411106000", 42),
            ("西塘镇", "330421103000", 44),
            ("姚庄镇", "330421111000", 51),
            ("百步镇", "330424102000", 36),
            ("许村镇", "330481101000", 58),
            ("长安镇", "330481103000", 49),
            ("乍浦镇", "330482101000", 40),
            ("崇福镇", "330483107000", 45),
            ("洲泉镇", "330483105000", 39),
            ("大麻镇", "330483106000", 46),
        )
    ),
)
YINLUN = "浙江银轮机械股份有限公司"
TIANTAI_ENTERPRISES = 74
OTHER_ENTERPRISES = 1500
_INDUSTRIES = (
    "制造业",
    "批发和零售业",
    "信息传输、软件和信息技术服务业",
    "交通运输、仓储和邮政业",
    "住宿和餐饮业",
    "租赁和商务服务业",
    "科学研究和技术服务业",
    "建筑业",
)
_TYPES = (
    "有限责任公司（自然人投资或控股）",
    "有限责任公司（自然人独资）",
    "股份有限公司（非上市）",
    "其他有限责任公司",
)


def enterprises(seed: int = 20220125) -> pa.Table:
    """The enterprise register's population: park, Tiantai and other enterprises (not scaled)."""
    fake, rng = faker(seed + 1), _rng(seed)
    table = divisions()
    towns = [d.code for d in table if d.level == "township" and not d.abolished]
    tiantai = [d.code for d in table.children("331023")]
    placed: list[tuple[str, str, str]] = [
        (p.name, p.division_code, "jiaxing_park") for p in JIAXING_PARKS for _ in range(p.enterprises)
    ]
    placed += [("", rng.choice(tiantai), "tiantai") for _ in range(TIANTAI_ENTERPRISES)]
    placed += [("", rng.choice(towns), "other") for _ in range(OTHER_ENTERPRISES)]
    names: set[str] = {YINLUN}
    rows: dict[str, list[object]] = {
        k: []
        for k in (
            "k",
            "uscc",
            "name",
            "enterprise_type",
            "registered_capital",
            "established_on",
            "division_code",
            "industry",
            "status",
            "registered_address",
            "grp",
            "park",
        )
    }
    for k, (park, town, group) in enumerate(placed):
        county = table.get(town[:6])
        if group == "tiantai" and k == len(placed) - TIANTAI_ENTERPRISES - OTHER_ENTERPRISES:
            name = YINLUN
        else:
            name = ""
            while not name or name in names:
                middle = rng.choice(("", "新", "恒", "华"))
                name = f"{county.name[:2]}{fake.company_prefix()}{middle}{fake.company_suffix()}"
            names.add(name)
        body = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
        values = (
            k,
            make_uscc("91", town[:6], body),
            name,
            rng.choice(_TYPES),
            round(rng.uniform(10, 5000), 2),
            dt.date(1995, 1, 1) + dt.timedelta(rng.randrange(9800)),
            town,
            rng.choice(_INDUSTRIES),
            "在业" if rng.random() < 0.96 else "注销",
            f"{table.get(town).name}{fake.street_name()}{rng.randrange(1, 400)}号",
            group,
            park,
        )
        for key, value in zip(rows, values, strict=True):
            rows[key].append(value)
    return pa.table(rows)


def _columns(names: str, records: Sequence[Sequence[object]]) -> pa.Table:
    keys = names.split()
    return pa.table({k: [r[n] for r in records] for n, k in enumerate(keys)})


def schools(seed: int) -> pa.Table:
    rng, table = _rng(seed + 2), divisions()
    towns = [d for d in table if d.level == "township" and not d.abolished]
    stages = (("小学", "中心小学"), ("初中", "初级中学"), ("高中", "高级中学"), ("九年一贯制", "学校"))
    records = []
    for k in range(500):
        town = rng.choice(towns)
        stage, suffix = rng.choice(stages)
        students = rng.randrange(180, 2600)
        records.append(
            (
                f"21330{k:05d}",
                f"{table.get(town.code[:6]).name}{town.name}{suffix}" + ("" if k < 400 else f"（{k}）"),
                stage,
                town.code,
                students,
                max(12, students // 14),
            )
        )
    return _columns("school_code name stage division_code students teachers", records)


def union_statistics(seed: int) -> pa.Table:
    """Members per county; Nanxun carries the seed's 232 new unions and 12,322 new members."""
    rng = _rng(seed + 3)
    records = []
    for county in divisions().county_codes(include_abolished=False):
        unions, members = rng.randrange(400, 3000), rng.randrange(40_000, 400_000)
        new = (232, 12_322) if county == "330503" else (rng.randrange(20, 300), rng.randrange(800, 15_000))
        records.append((county, 2021, unions, members, *new))
    return _columns("division_code year unions members new_unions new_members", records)


def dormitories(seed: int) -> pa.Table:
    rng = _rng(seed + 4)
    towns = divisions().children("330503")
    records: list[tuple[object, ...]] = [
        (
            "NX-SS-001",
            "旧馆街道快递园区职工宿舍",
            "330503002000",
            24,
            76,
            73,
            "空调、热水器、洗衣机、床柜",
            dt.date(2021, 9, 28),
        )
    ]
    for k in range(2, 41):
        town = rng.choice(towns)
        rooms = rng.randrange(10, 80)
        old = rng.random() < 0.2
        records.append(
            (
                f"NX-SS-{k:03d}",
                f"{town.name}{'职工公寓' if k % 2 else '新居民宿舍'}{k}号楼",
                town.code,
                rooms,
                rooms * rng.choice((2, 4, 6)),
                rooms * 2 - rng.randrange(0, rooms),
                "无" if old else "空调、热水器、床柜",
                dt.date(2021, 1, 1) + dt.timedelta(rng.randrange(360)),
            )
        )
    return _columns(
        "dormitory_id name division_code rooms beds occupied_beds appliances renovated_on", records
    )


def training_ad_cases(seed: int) -> pa.Table:
    fake, rng = faker(seed + 5), _rng(seed + 5)
    counties = divisions().county_codes(include_abolished=False)
    media = ("微信公众号", "短视频平台", "小区电梯广告屏", "公交站台灯箱", "居民区宣传单页", "地方电视台")
    records = []
    for k in range(120):
        county = rng.choice(counties)
        body = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
        records.append(
            (
                f"浙市监处〔2021〕{k + 1:04d}号",
                f"{divisions().get(county).name}{fake.company_prefix()}教育科技有限公司",
                make_uscc("91", county, body),
                rng.choice(media),
                "面向中小学生发布校外培训广告",
                dt.date(2021, 8, 1) + dt.timedelta(rng.randrange(150)),
                rng.choice((5000, 10000, 20000, 50000)),
                county + "000000",
            )
        )
    return _columns("case_no party_name party_uscc medium violation decided_on fine division_code", records)


def nanxun_unions() -> list[str]:
    """232 new unions of 南浔 (the seed names three kinds: live-streamers, couriers, elderly care)."""
    named = [
        "南浔区网络直播员联合会",
        "旧馆街道快递园区联合工会",
        "南浔区久安老年福利中心工会",
        "南浔区民宿行业工会联合会",
    ]
    towns = [d.name for d in divisions().children("330503")]
    trades = ("快递物流", "外卖配送", "网约车", "直播电商", "民宿农家乐", "家政服务", "盆景产业园")
    return named + [
        f"{towns[k % len(towns)]}{trades[k % len(trades)]}联合工会（{k // len(trades) + 1}）"
        for k in range(232 - len(named))
    ]


def organisation_tables(seed: int) -> dict[str, pa.Table]:
    """The small, unscaled tables the files draw on, registered in the generator by name."""
    return {
        "enterprises": enterprises(seed),
        "schools": schools(seed),
        "union_stats": union_statistics(seed),
        "dormitories": dormitories(seed),
        "ad_cases": training_ad_cases(seed),
    }
