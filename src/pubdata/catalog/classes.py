"""The vocabularies of the regulation, as enums whose values are stored in the database.

Zhejiang's 受限共享 and the national 有条件共享 are one canonical value (REQ-10): `ShareClass.parse`
accepts either label.
"""

from __future__ import annotations

import datetime as dt
from enum import IntEnum

from pubdata.vocabulary import Labelled


class ShareClass(Labelled):
    """REQ-14."""

    UNCONDITIONAL = "unconditional", "无条件共享", "无条件"
    RESTRICTED = "restricted", "受限共享", "有条件共享", "受限"
    NOT_SHARED = "not_shared", "不予共享", "不共享"


class OpenClass(Labelled):
    """REQ-19."""

    UNCONDITIONAL = "unconditional", "无条件开放", "无条件"
    RESTRICTED = "restricted", "受限开放", "有条件开放", "受限"
    PROHIBITED = "prohibited", "禁止开放", "不予开放"


class NationalLevel(Labelled):
    """REQ-31: the national grading (GB/T 43697-2024)."""

    GENERAL = "general", "一般数据"
    IMPORTANT = "important", "重要数据"
    CORE = "core", "核心数据"


class Level(IntEnum):
    """REQ-31: Zhejiang security levels (DB33/T 2351-2021)."""

    L1 = 1
    L2 = 2
    L3 = 3
    L4 = 4

    @property
    def label(self) -> str:
        return {1: "L1 不敏感", 2: "L2 低敏感", 3: "L3 较敏感", 4: "L4 敏感"}[self.value]

    @classmethod
    def parse(cls, text: str | int) -> Level:
        raw = str(text).strip().upper().removeprefix("L")
        return cls(int(raw))


class EntryState(Labelled):
    DRAFT = "draft", "草稿"
    PUBLISHED = "published", "已发布"
    RETIRED = "retired", "已下线"


class OrgType(Labelled):
    """REQ-2: the four kinds of public data holders, plus non-holders that only consume."""

    STATE_ORGAN = "state_organ", "国家机关"
    AUTHORISED_ORG = "authorised_org", "法律法规授权组织"
    PUBLIC_SERVICE_OPERATOR = "public_service_operator", "公共服务运营单位"
    NATIONAL_AGENCY_BRANCH = "national_agency_branch", "国家有关部门派驻机构"


class PiiKind(Labelled):
    NONE = "none", "无"
    ID_NUMBER = "id_number", "身份证号"
    MOBILE = "mobile", "手机号"
    NAME = "name", "姓名"
    ADDRESS = "address", "地址"
    USCC = "uscc", "统一社会信用代码"
    BANK_CARD = "bank_card", "银行卡号"
    MEDICAL = "medical", "医疗健康"
    BIOMETRIC = "biometric", "生物识别"
    PRECISE_LOCATION = "precise_location", "精确位置"
    BIRTH_DATE = "birth_date", "出生日期"


class UpdateCycle(Labelled):
    """REQ-11: how often an entry's data must be refreshed."""

    REALTIME = "realtime", "实时"
    DAILY = "daily", "每日"
    WEEKLY = "weekly", "每周"
    MONTHLY = "monthly", "每月"
    QUARTERLY = "quarterly", "每季度"
    YEARLY = "yearly", "每年"
    IRREGULAR = "irregular", "不定期"

    @property
    def period(self) -> dt.timedelta | None:
        days = {"realtime": 1, "daily": 1, "weekly": 7, "monthly": 31, "quarterly": 92, "yearly": 366}
        return dt.timedelta(days=days[self.value]) if self.value in days else None


class WriteMode(Labelled):
    APPEND = "append", "追加"
    UPSERT = "upsert", "更新插入"
    REPLACE = "replace", "全量替换"


class BadRowPolicy(Labelled):
    REJECT = "reject", "整批拒收"
    QUARANTINE = "quarantine", "隔离坏行"
    FLAG = "flag", "标记接收"


class FieldType(Labelled):
    STRING = "string", "字符串"
    INTEGER = "integer", "整数"
    DECIMAL = "decimal", "小数"
    DATE = "date", "日期"
    TIMESTAMP = "timestamp", "时间"
    BOOLEAN = "boolean", "布尔"
