"""The files agencies really send: GBK CSV, spreadsheets with title and 合计 rows, full-width digits,
``+86`` mobiles, Chinese dates, null markers — and a few rows that are simply wrong.

Each writer streams a DuckDB relation to disk (DuckDB writes Parquet and CSV in bounded memory), so
a scale-1000 province is written chunk by chunk. The deliberately bad rows sit at fixed positions
and are counted in `DemoFile.bad_rows`, so the quality reports can be checked against them.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import xlsxwriter

from pubdata.catalog.classes import WriteMode
from pubdata.demo.people import (
    JIAXING_PARKS,
    TIANTAI_ENTERPRISES,
    generator,
    nanxun_unions,
    organisation_tables,
)
from pubdata.errors import PubdataError

#: SQL macros of the messy formats; constants, never user input.
_MACROS = (
    "CREATE MACRO cn_date(d) AS strftime(d, '%Y年%-m月%-d日')",
    "CREATE MACRO fullwidth(s) AS translate(s, '0123456789X', '０１２３４５６７８９Ｘ')",
    "CREATE MACRO wrong_check(s) AS substr(s, 1, 17) || CASE substr(s, 18, 1) WHEN '0' THEN '1' ELSE '0' END",
)


@dataclass(frozen=True)
class Layout:
    """Person index ranges at a scale; the seed's numbers hold exactly at scale 1."""

    scale: float = 1.0

    def n(self, base: int) -> int:
        return max(1, round(base * self.scale))

    @property
    def params(self) -> dict[str, int]:
        # Gifts are capped below a worksheet's 1,048,576 rows: 天台 has fewer people than that anyway.
        j, nx, g, x = self.n(10_444), self.n(12_322), min(self.n(1_500), 1_000_000), self.n(200)
        population = max(self.n(30_000), j + nx + g + x + self.n(5_000))
        return {
            "j": j,
            "nx": nx,
            "g": g,
            "x": x,
            "p": population,
            "yinlun": self.n(147),
            "red": self.n(100),
            "parks": sum(p.enterprises for p in JIAXING_PARKS),
            "tiantai": TIANTAI_ENTERPRISES,
        }


@dataclass(frozen=True)
class DemoFile:
    entry_code: str
    path: Path
    rows: int
    bad_rows: int = 0
    mode: WriteMode | None = None
    sheet: str | None = None


def _bad_positions(rows: int, wanted: tuple[int, ...]) -> list[int]:
    """Fixed row positions for deliberate errors, kept inside a small file."""
    return sorted({p % rows for p in wanted})[: max(0, rows - 1)] if rows > 1 else []


def write_csv(
    rel: duckdb.DuckDBPyRelation, path: Path, *, sep: str = ",", encoding: str = "utf-8", bom: bool = False
) -> None:
    """DuckDB writes UTF-8 only; other encodings are transcoded in 1 MiB chunks."""
    if encoding == "utf-8" and not bom:
        rel.write_csv(str(path), sep=sep, header=True)
        return
    raw = path.with_suffix(path.suffix + ".utf8")
    rel.write_csv(str(raw), sep=sep, header=True)
    decoder = codecs.getincrementaldecoder("utf-8")()
    with raw.open("rb") as source, path.open("wb") as target:
        if bom:
            target.write(codecs.BOM_UTF8)
        while chunk := source.read(1 << 20):
            target.write(decoder.decode(chunk).encode(encoding))
        target.write(decoder.decode(b"", final=True).encode(encoding))
    raw.unlink()


def write_jsonl(rel: duckdb.DuckDBPyRelation, path: Path) -> None:
    """One JSON object per line, serialised by DuckDB and written a batch at a time."""
    lines = rel.query("t", "SELECT to_json(t)::VARCHAR AS line FROM t")
    if lines is None:  # DuckDB answers None only for a statement that is not a query
        raise PubdataError(f"the JSON lines of {path.name} were not a query")
    with path.open("w", encoding="utf-8") as out:
        for batch in lines.to_arrow_reader(65_536):
            out.write("\n".join(batch.column(0).to_pylist()))
            out.write("\n")


def write_xlsx(rel: duckdb.DuckDBPyRelation, path: Path, *, titles: list[str], total: list[Any]) -> None:
    """A worksheet as offices keep it: title rows, a bold header, the records, a 合计 row."""
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("发放登记")
    bold = book.add_format({"bold": True})
    for r, title in enumerate(titles):
        sheet.write_row(r, 0, [title], bold)
    row = len(titles)
    sheet.write_row(row, 0, rel.columns, bold)
    for batch in rel.to_arrow_reader(8_192):
        for record in zip(*(c.to_pylist() for c in batch.columns), strict=True):
            row += 1
            sheet.write_row(row, 0, record)
    sheet.write_row(row + 1, 0, total, bold)
    book.close()


def _count(path: Path) -> int:
    """Records in a written file, read back from the file rather than by running the query again."""
    if path.suffix == ".parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines - (path.suffix != ".jsonl")


Writer = Callable[[duckdb.DuckDBPyConnection, Layout, Path], list[DemoFile]]


def prepare(con: duckdb.DuckDBPyConnection, layout: Layout, seed: int) -> None:
    """Register the small organisation-level tables and the employer mapping the files share."""
    for name, table in organisation_tables(seed).items():
        con.register(name, table)
    for macro in _MACROS:
        con.execute(macro)
    con.execute("""
        CREATE MACRO employer_k(i, seed, j, nx, g, yinlun, parks, tiantai) AS
        CASE WHEN i < j THEN h(i, seed, 30) % parks
             WHEN i >= j + nx AND i < j + nx + g AND i - j - nx < yinlun THEN parks
             WHEN i >= j + nx AND i < j + nx + g THEN parks + 1 + h(i, seed, 31) % (tiantai - 1)
             ELSE parks + tiantai + h(i, seed, 32) % 1500 END
    """)


def relation(
    con: duckdb.DuckDBPyConnection, sql: str, layout: Layout, seed: int, **extra: Any
) -> duckdb.DuckDBPyRelation:
    used = {k: v for k, v in {**layout.params, "seed": seed, **extra}.items() if re.search(rf"\${k}\b", sql)}
    return con.sql(sql, params=used)


def _people(con: duckdb.DuckDBPyConnection, layout: Layout, seed: int, out: Path) -> list[DemoFile]:
    """公安厅 population, 人社厅 enrolment and certificates, 卫健委 visits: clean Parquet / CSV."""
    population = relation(
        con,
        """
        SELECT id_number, name, gender, birth_date, division_code, address
        FROM persons(0, $p)""",
        layout,
        seed,
    )
    enrolment = relation(
        con,
        """
        SELECT p.id_number, p.name,
               ['企业职工基本养老保险', '职工基本医疗保险', '失业保险', '工伤保险'][1 + h(p.i, $seed, 21) % 4]
                 AS insurance_type,
               e.uscc AS employer_uscc, e.name AS employer_name,
               DATE '2005-01-01' + (h(p.i, $seed, 22) % 6200)::INTEGER AS enrolled_on,
               CASE WHEN h(p.i, $seed, 23) % 20 = 0 THEN '暂停缴费' ELSE '正常参保' END AS status,
               e.division_code
        FROM persons(0, $p) p
        JOIN enterprises e ON e.k = employer_k(p.i, $seed, $j, $nx, $g, $yinlun, $parks, $tiantai)
        WHERE h(p.i, $seed, 20) % 10 < 8""",
        layout,
        seed,
    )
    certificates = relation(
        con,
        """
        SELECT 'ZJ' || (2019 + h(i, $seed, 25) % 3)::VARCHAR || lpad(i::VARCHAR, 9, '0') AS "证书编号",
               id_number AS "公民身份号码", name AS "姓名",
               ['电工', '焊工', '车工', '养老护理员', '快递员', '网络营销师', '电子商务师', '育婴员']
                 [1 + h(i, $seed, 26) % 8] AS "职业（工种）",
               ['五级/初级工', '四级/中级工', '三级/高级工', '二级/技师', '一级/高级技师']
                 [1 + h(i, $seed, 27) % 5] AS "等级",
               cn_date(DATE '2019-01-01' + (h(i, $seed, 28) % 1090)::INTEGER) AS "发证日期",
               ['浙江省职业技能鉴定指导中心', '嘉兴技师学院', '湖州市技能人才评价中心', '台州市技工学校']
                 [1 + h(i, $seed, 29) % 4] AS "评价机构"
        FROM persons(0, $p) WHERE h(i, $seed, 24) % 10 = 0""",
        layout,
        seed,
    )
    visits = relation(
        con,
        """
        SELECT 'MZ2021' || lpad(p.i::VARCHAR, 10, '0') AS visit_id, p.id_number, p.name,
               ['浙江大学医学院附属第一医院', '嘉兴市第一医院', '南浔区人民医院', '天台县人民医院']
                 [1 + h(p.i, $seed, 41) % 4] AS hospital,
               ['内科', '外科', '儿科', '骨科', '皮肤科', '眼科'][1 + h(p.i, $seed, 42) % 6] AS department,
               ['J06.9', 'I10', 'E11.9', 'K29.7', 'M54.5', 'L30.9']
                 [1 + h(p.i, $seed, 43) % 6] AS diagnosis_code,
               DATE '2021-01-01' + (h(p.i, $seed, 44) % 365)::INTEGER AS visit_date,
               (20 + (h(p.i, $seed, 45) % 60000) / 100)::DECIMAL(12, 2) AS cost
        FROM persons(0, $p) p WHERE h(p.i, $seed, 40) % 5 = 0""",
        layout,
        seed,
    )
    files = []
    for code, rel, name in (
        ("gat_population", population, "省公安厅_人口基础信息.parquet"),
        ("hrss_social_insurance", enrolment, "省人社厅_社会保险参保信息.parquet"),
        ("wjw_outpatient_visits", visits, "省卫健委_门诊就诊记录.parquet"),
    ):
        rel.write_parquet(str(out / name))
        files.append(DemoFile(code, out / name, _count(out / name)))
    write_csv(certificates, out / "省人社厅_职业技能等级证书.csv", bom=True)
    files.insert(
        2,
        DemoFile(
            "hrss_skill_certificates",
            out / "省人社厅_职业技能等级证书.csv",
            _count(out / "省人社厅_职业技能等级证书.csv"),
        ),
    )
    return files


def _unions(con: duckdb.DuckDBPyConnection, layout: Layout, seed: int, out: Path) -> list[DemoFile]:
    """Union files: 嘉兴 GBK CSV, 南浔 messy TSV, 天台 XLSX with title and 合计 rows, 天台 CSV."""
    params = layout.params
    bad_j = _bad_positions(params["j"], (5, 123, 777, 42, 4000))
    members = relation(
        con,
        """
        SELECT 'JX' || lpad(p.i::VARCHAR, 7, '0') AS "会员编号", p.name AS "会员姓名",
               CASE WHEN p.i IN ($b0, $b1, $b2) THEN wrong_check(p.id_number) ELSE p.id_number END
                 AS "公民身份号码",
               CASE WHEN p.i IN ($b3, $b4) THEN substr(p.mobile, 1, 9) ELSE p.mobile END AS "手机号码",
               e.name AS "单位名称", e.uscc AS "单位信用代码", e.park AS "所在园区",
               e.division_code AS "园区所在区划",
               strftime(DATE '2021-08-01' + (h(p.i, $seed, 33) % 150)::INTEGER, '%Y/%-m/%-d') AS "入会日期"
        FROM persons(0, $j) p
        JOIN enterprises e ON e.k = employer_k(p.i, $seed, $j, $nx, $g, $yinlun, $parks, $tiantai)
        ORDER BY p.i""",
        layout,
        seed,
        **_slots(bad_j, 5),
    )
    write_csv(members, out / "嘉兴市总工会_小微企业园区会员名册.csv", encoding="gbk")

    bad_n = [params["j"] + p for p in _bad_positions(params["nx"], (9, 250, 3001, 8888))]
    new_form = relation(
        con,
        """
        SELECT $unions[1 + h(p.i, $seed, 34) % 232] AS "所属工会", p.name AS "姓名",
               CASE WHEN p.i = $b0 THEN wrong_check(p.id_number)
                    WHEN p.i % 7 = 0 THEN fullwidth(p.id_number) ELSE p.id_number END AS "公民身份号码",
               CASE WHEN p.i = $b1 THEN '1' || substr(p.mobile, 1, 5)
                    WHEN p.i % 3 = 0 THEN '+86 ' || p.mobile
                    WHEN p.i % 5 = 0 THEN '+86-' || fullwidth(p.mobile) ELSE p.mobile END AS "手机号码",
               ['快递员', '外卖骑手', '网络直播员', '网约车司机', '养老护理员', '民宿服务员']
                 [1 + h(p.i, $seed, 35) % 6] AS "职业",
               CASE WHEN p.i IN ($b2, $b3) THEN '2021年2月30日'
                    ELSE cn_date(DATE '2021-03-01' + (h(p.i, $seed, 36) % 300)::INTEGER) END AS "入会日期",
               CASE WHEN p.i - $j < $red THEN cn_date(DATE '2021-06-01' + (h(p.i, $seed, 37) % 200)::INTEGER)
                    WHEN p.i % 2 = 0 THEN '—' ELSE '无' END AS "红色工匠培育入库日期",
               CASE WHEN h(p.i, $seed, 38) % 20 = 0 THEN '旧馆街道快递园区职工宿舍' ELSE '无' END
                 AS "入住宿舍"
        FROM persons($j, $j + $nx) p ORDER BY p.i""",
        layout,
        seed,
        unions=nanxun_unions(),
        **_slots(bad_n, 4),
    )
    write_csv(new_form, out / "南浔区总工会_新就业形态劳动者入会.tsv", sep="\t")

    lo = params["j"] + params["nx"]
    bad_g = [lo + p for p in _bad_positions(params["g"], (11, 700))]
    gifts = relation(
        con,
        """
        SELECT (p.i - $lo + 1)::INTEGER AS "序号", e.name AS "单位名称", e.uscc AS "单位信用代码",
               p.name AS "姓名",
               CASE WHEN p.i = $b0 THEN wrong_check(p.id_number) ELSE p.id_number END AS "公民身份号码",
               CASE WHEN p.i = $b1 THEN '1' || substr(p.mobile, 3, 9) || '99' ELSE p.mobile END AS "手机号码",
               '“天台味道”年货大礼包+食用油' AS "慰问品", 200.0 AS "微信红包（元）",
               '2022-01-17' AS "发放日期"
        FROM persons($lo, $lo + $g) p
        JOIN enterprises e ON e.k = employer_k(p.i, $seed, $j, $nx, $g, $yinlun, $parks, $tiantai)
        ORDER BY p.i""",
        layout,
        seed,
        lo=lo,
        **_slots(bad_g, 2),
    )
    gift_path = out / "天台县总工会_送温暖礼包发放登记表.xlsx"
    write_xlsx(
        gifts,
        gift_path,
        titles=[
            "天台县总工会2022年“留天台过年”送温暖礼包发放登记表",
            "填报单位：天台县总工会　　填报日期：2022年1月20日",
        ],
        total=["合计", "", "", "", "", "", f"{params['g']}份", 200.0 * params["g"], ""],
    )

    staying = relation(
        con,
        """
        SELECT p.id_number AS "公民身份号码", p.name AS "姓名", p.mobile AS "手机号码",
               p.id_county AS "户籍地区划",
               CASE WHEN p.i < $lo + $g THEN e.name
                    ELSE ['中通快递天台网点', '美团外卖天台站点', '顺丰速运天台营业部', '天台县货运物流园']
                         [1 + h(p.i, $seed, 39) % 4] END AS "单位名称",
               CASE WHEN p.i < $lo + $g THEN e.uscc END AS "单位信用代码",
               CASE WHEN p.i < $lo + $g THEN ['一线工人', '技术人员'][1 + h(p.i, $seed, 46) % 2]
                    ELSE ['快递员', '外卖骑手', '物流货运司机'][1 + h(p.i, $seed, 46) % 3] END AS "岗位",
               '2022-01-20' AS "留守开始日期", '2022-02-10' AS "留守结束日期"
        FROM persons($lo, $lo + $g + $x) p
        LEFT JOIN enterprises e ON e.k = employer_k(p.i, $seed, $j, $nx, $g, $yinlun, $parks, $tiantai)
        ORDER BY p.i""",
        layout,
        seed,
        lo=lo,
    )
    write_csv(staying, out / "天台县总工会_留天台过年外来员工.csv", bom=True)
    return [
        DemoFile(
            "jxzgh_park_members", out / "嘉兴市总工会_小微企业园区会员名册.csv", params["j"], len(bad_j)
        ),
        DemoFile(
            "nxzgh_new_form_members", out / "南浔区总工会_新就业形态劳动者入会.tsv", params["nx"], len(bad_n)
        ),
        DemoFile("tt_gift_records", gift_path, params["g"], len(bad_g)),
        DemoFile(
            "tt_staying_workers", out / "天台县总工会_留天台过年外来员工.csv", params["g"] + params["x"]
        ),
    ]


def _slots(positions: list[int], count: int) -> dict[str, int]:
    """Bind the bad-row positions as $b0..$bN; unused slots point at no row."""
    return {f"b{k}": positions[k] if k < len(positions) else -1 for k in range(count)}


def _organisations(con: duckdb.DuckDBPyConnection, layout: Layout, seed: int, out: Path) -> list[DemoFile]:
    """Enterprise-level and institution-level files (not scaled), two of them with a monthly update."""
    files: list[DemoFile] = []

    def csv(
        code: str, name: str, sql: str, *, mode: WriteMode | None = None, bom: bool = False, **extra: Any
    ) -> None:
        rel = relation(con, sql, layout, seed, **extra)
        write_csv(rel, out / name, bom=bom)
        files.append(DemoFile(code, out / name, _count(out / name), mode=mode))

    register = """
        SELECT uscc AS "统一社会信用代码", name AS "企业名称", enterprise_type AS "企业类型",
               registered_capital AS "注册资本（万元）", established_on AS "成立日期",
               division_code AS "登记机关区划", industry AS "所属行业",
               {status} AS "登记状态", registered_address AS "住所"
        FROM enterprises WHERE {rows} ORDER BY k"""
    csv(
        "scjg_enterprise_register",
        "省市场监管局_企业登记信息_2021年12月.csv",
        register.format(status="status", rows="k < $last"),
        last=_LAST_NEW,
    )
    csv(
        "scjg_training_ad_cases",
        "省市场监管局_校外培训广告违法案件.csv",
        """
        SELECT case_no AS "案件编号", party_name AS "当事人名称", party_uscc AS "当事人信用代码",
               medium AS "发布媒介", violation AS "违法行为", decided_on AS "处罚决定日期",
               fine AS "罚没款（元）", division_code AS "办案机关区划"
        FROM ad_cases""",
    )
    csv(
        "zgh_member_statistics",
        "省总工会_工会组织和会员统计_2021.csv",
        """
        SELECT division_code AS "行政区划代码", year AS "年度", unions AS "工会组织数", members AS "会员数",
               new_unions AS "新建工会数", new_members AS "新发展会员数" FROM union_stats""",
    )
    csv(
        "nxzgh_worker_housing",
        "南浔区总工会_职工安居工程宿舍.csv",
        """
        SELECT dormitory_id AS "宿舍编号", name AS "宿舍名称", division_code AS "所在街道区划",
               rooms AS "房间数", beds AS "床位数", occupied_beds AS "已入住床位",
               appliances AS "家电家具配置",
               cn_date(renovated_on) AS "启用或改造日期" FROM dormitories""",
        bom=True,
    )
    csv(
        "jyt_schools",
        "省教育厅_中小学校基本信息.csv",
        """
        SELECT school_code AS "学校标识码", name AS "学校名称", stage AS "学段",
               division_code AS "所在地区划", students AS "在校生数",
               teachers AS "专任教师数" FROM schools""",
    )
    csv(
        "jyt_labour_education",
        "省教育厅_劳动教育课时_2021学年第一学期.csv",
        """
        SELECT s.school_code AS "学校标识码", '2021-2022学年第一学期' AS "学期", w.week AS "教学周",
               CASE WHEN h(s.school_code, $seed, w.week) % 97 = 0 THEN 0
                    ELSE 1 + (h(s.school_code, $seed, w.week) % 4 = 0)::INTEGER END AS "劳动教育课时",
               ['日常生活劳动', '生产劳动', '服务性劳动', '传统工艺与手工制作', '农业种植']
                 [1 + h(s.school_code, $seed, w.week) % 5] AS "主要内容"
        FROM schools s, range(1, 21) w(week) ORDER BY 1, 3""",
    )
    csv(
        "sw_tax_credit_ratings",
        "省税务局_纳税信用等级_2021.csv",
        """
        SELECT uscc AS "统一社会信用代码", name AS "纳税人名称", 2021 AS "评价年度",
               ['A', 'B', 'B', 'B', 'M', 'M', 'C', 'D'][1 + h(k, $seed, 50) % 8] AS "信用等级"
        FROM enterprises WHERE k < $last""",
        last=_LAST_NEW,
    )
    tax = relation(
        con,
        """
        SELECT uscc, y.year, (h(k, $seed, y.year) % 50000000 / 100)::DECIMAL(18, 2) AS vat,
               (h(k, $seed, y.year + 1) % 20000000 / 100)::DECIMAL(18, 2) AS corporate_income_tax,
               vat + corporate_income_tax AS total
        FROM enterprises, range(2019, 2022) y(year) WHERE k < $last""",
        layout,
        seed,
        last=_LAST_NEW,
    )
    tax.write_parquet(str(out / "省税务局_企业年度纳税额.parquet"))
    files.append(
        DemoFile(
            "sw_tax_paid",
            out / "省税务局_企业年度纳税额.parquet",
            _count(out / "省税务局_企业年度纳税额.parquet"),
        )
    )

    electricity = """
        SELECT CASE WHEN k IN (SELECT k FROM enterprises WHERE status = '在业' ORDER BY k LIMIT $bad)
                    THEN wrong_check(uscc) ELSE uscc END AS uscc,
               name AS enterprise_name, strftime(m, '%Y-%m') AS month,
               round((1000 + h(k, $seed, 60) % 400000)
                     * (0.8 + 0.4 * (month(m) IN (1, 7, 8, 12))::INTEGER), 1)::DECIMAL(14, 1) AS kwh,
               division_code
        FROM enterprises,
             (SELECT unnest(generate_series($start::DATE, $end::DATE, INTERVAL 1 MONTH))::DATE AS m)
        WHERE k < $last AND status = '在业'"""
    for name, start, end, bad, mode in (
        ("国网浙江电力_企业月度用电量_2021.jsonl", "2021-01-01", "2021-12-01", 0, None),
        ("国网浙江电力_企业月度用电量_2022年1月.jsonl", "2022-01-01", "2022-01-01", 2, WriteMode.UPSERT),
    ):
        rel = relation(con, electricity, layout, seed, last=_LAST_NEW, start=start, end=end, bad=bad)
        write_jsonl(rel, out / name)
        files.append(DemoFile("gw_enterprise_electricity", out / name, _count(out / name), bad, mode))
    # The monthly update of the register: 20 new enterprises and 15 deregistered, merged by credit code.
    csv(
        "scjg_enterprise_register",
        "省市场监管局_企业登记信息_2022年1月变更.csv",
        register.format(
            status="CASE WHEN k >= $last THEN '在业' ELSE '注销' END",
            rows="k >= $last OR k IN "
            "(SELECT k FROM enterprises WHERE status = '在业' AND k >= 900 ORDER BY k LIMIT 15)",
        ),
        mode=WriteMode.UPSERT,
        last=_LAST_NEW,
    )
    return files


#: Enterprises from this index on are registered only in the January update.
_LAST_NEW = 2367


def write_files(
    out: Path, scale: float = 1.0, seed: int = 20220125, progress: Callable[[str], None] | None = None
) -> list[DemoFile]:
    """Write every demo file into `out`; the list is in ingestion order (updates last)."""
    out.mkdir(parents=True, exist_ok=True)
    layout, con = Layout(scale), generator(seed)
    prepare(con, layout, seed)
    files: list[DemoFile] = []
    for label, writer in (("人口与社保", _people), ("工会", _unions), ("企业与机构", _organisations)):
        if progress:
            progress(label)
        files += writer(con, layout, seed, out)
    con.close()
    return files
