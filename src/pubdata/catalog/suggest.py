"""Suggest what kind of personal information a column holds, and its default level (REQ-30).

People registering a dataset rarely know DB33/T 2351 by heart; they do know their column names.
`HINTS` is the rule table: for each PII kind, the name/title fragments (Chinese, pinyin initials,
English) that betray it and the value test that confirms it. Levels are never decided here: they
come from `Settings.level_rules`, so a tenant can change them without touching code.

Example:
    >>> from pubdata.settings import Settings
    >>> s = suggest_field("sfzh", "", ["330102198001010018"], Settings())
    >>> (s.pii_kind.value, s.level)
    ('id_number', 4)
    >>> suggest_field("remark", "备注", [], Settings()).level
    1
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pubdata.catalog.classes import PiiKind
from pubdata.catalog.specs import EntrySpec
from pubdata.identifiers import id_number_problem, mobile_problem, uscc_problem
from pubdata.settings import Settings

ValueTest = Callable[[str], bool]

#: Share of non-empty sample values that must pass a kind's value test to count as evidence.
VALUE_SHARE = 0.8
#: Level of personal information that the settings' level table does not list.
UNLISTED_PII_LEVEL = 2
#: Kinds that identify a person only together (REQ-30: name + ID number + mobile).
COMBINED_IDENTITY = frozenset({PiiKind.NAME, PiiKind.ID_NUMBER, PiiKind.MOBILE})

_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔"
    "向汤章楼应俞倪鲍柯翁洪施裘包虞诸葛欧阳司马上官"
)
_CJK_NAME = re.compile(r"^[\u4e00-\u9fff·]{2,4}$")
_ADDRESS_MARKS = "省市区县镇乡街道路号弄村幢室"


def _luhn(value: str) -> bool:
    digits = re.sub(r"[\s-]", "", value)
    if not digits.isdigit() or not 16 <= len(digits) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char) * (2 if index % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def _person_name(value: str) -> bool:
    text = value.strip()
    return bool(_CJK_NAME.match(text)) and (text[0] in _SURNAMES or text[:2] in _SURNAMES)


def _address(value: str) -> bool:
    return len(value) >= 6 and sum(mark in value for mark in _ADDRESS_MARKS) >= 2


@dataclass(frozen=True)
class Hint:
    """One row of the rule table."""

    kind: PiiKind
    #: Searched in the column's name and title (lower-cased).
    pattern: re.Pattern[str]
    #: Confirms the kind from sample values; None when values cannot tell (e.g. diagnoses).
    value_test: ValueTest | None = None


def _words(alternatives: str, whole: bool = False) -> re.Pattern[str]:
    """Space-separated alternatives. ASCII ones match whole ``_``-separated words (the whole name
    when `whole`, for words as common as ``name``); Chinese ones match anywhere."""
    words = alternatives.split()
    ascii_words = "|".join(w for w in words if w.isascii())
    parts = [rf"^(?:{ascii_words})$" if whole else rf"(?:^|_)(?:{ascii_words})(?:_|$)"]
    parts += [w for w in words if not w.isascii()]
    return re.compile("|".join(parts))


#: The rule table. Order breaks ties: the first hint whose pattern matches the name or title wins.
HINTS: tuple[Hint, ...] = (
    Hint(
        PiiKind.ID_NUMBER,
        _words("身份证 身份号码 证件号 sfzh sfzhm zjhm id_card idcard id_no id_number citizen_id"),
        lambda v: id_number_problem(v) is None,
    ),
    Hint(
        PiiKind.USCC,
        _words("统一社会信用代码 信用代码 tyshxydm shxydm uscc credit_code"),
        lambda v: uscc_problem(v) is None,
    ),
    Hint(
        PiiKind.BANK_CARD,
        _words("银行卡 银行账号 银行帐号 yhkh yhzh bank bank_card card_no account_no"),
        _luhn,
    ),
    Hint(
        PiiKind.MOBILE,
        _words("手机 电话 联系方式 sjh sjhm lxdh dh mobile phone tel telephone cellphone"),
        lambda v: mobile_problem(v) is None,
    ),
    Hint(
        PiiKind.MEDICAL,
        _words("诊断 病 医疗 健康 处方 zd jbmc diagnosis disease medical icd prescription health"),
    ),
    Hint(PiiKind.BIOMETRIC, _words("指纹 人脸 虹膜 声纹 fingerprint face iris biometric")),
    Hint(PiiKind.PRECISE_LOCATION, _words("经纬度 经度 纬度 坐标 定位 lat lng lon latitude longitude gps")),
    Hint(PiiKind.BIRTH_DATE, _words("出生日期 出生年月 生日 csrq birth birthday date_of_birth dob")),
    Hint(PiiKind.ADDRESS, _words("地址 住址 住所 居住地 dz zz jzdz hjdz address addr"), _address),
    Hint(
        PiiKind.NAME,
        _words("姓名 联系人 法定代表人 负责人 xm xingming name full_name person_name real_name", whole=True),
        _person_name,
    ),
)


@dataclass(frozen=True)
class FieldSuggestion:
    """What the platform proposes for one column, and why (shown to the person who decides)."""

    name: str
    pii_kind: PiiKind
    level: int
    reason: str


def level_for(kind: PiiKind, settings: Settings) -> int:
    if kind is PiiKind.NONE:
        return 1
    table = {rule.pii_kind: rule.level for rule in settings.level_rules}
    return table.get(kind.value, UNLISTED_PII_LEVEL)


def _by_name(name: str, title: str) -> Hint | None:
    targets = [text for text in (name.lower().strip(), title.lower().strip()) if text]
    for hint in HINTS:
        if any(hint.pattern.search(target) for target in targets):
            return hint
    return None


def _by_values(samples: Sequence[str | None]) -> tuple[Hint, float] | None:
    values = [v.strip() for v in samples if v is not None and v.strip()]
    if not values:
        return None
    best: tuple[Hint, float] | None = None
    for hint in HINTS:
        if hint.value_test is None:
            continue
        share = sum(hint.value_test(v) for v in values) / len(values)
        if share >= VALUE_SHARE and (best is None or share > best[1]):
            best = (hint, share)
    return best


def suggest_field(
    name: str, title: str, samples: Sequence[str | None], settings: Settings
) -> FieldSuggestion:
    """Propose a kind and level: sample values outweigh the name, the name outweighs nothing."""
    by_values = _by_values(samples)
    by_name = _by_name(name, title)
    if by_values is not None:
        hint, share = by_values
        source = f"{share:.0%} of sample values are valid {hint.kind.label}"
        if by_name is not None and by_name.kind is hint.kind:
            source += " and the name says so"
        kind, reason = hint.kind, source
    elif by_name is not None:
        kind, reason = by_name.kind, f"name or title suggests {by_name.kind.label}"
    else:
        kind, reason = PiiKind.NONE, "no personal information recognised"
    level = level_for(kind, settings)
    return FieldSuggestion(name, kind, level, f"{reason}: L{level}")


def raise_combined_identity(suggestions: list[FieldSuggestion], settings: Settings) -> list[FieldSuggestion]:
    """A name, an ID number and a mobile together single a person out: raise each of them."""
    kinds = {s.pii_kind for s in suggestions}
    if not kinds >= COMBINED_IDENTITY:
        return suggestions
    floor = settings.combined_identity_level
    return [
        FieldSuggestion(
            s.name,
            s.pii_kind,
            floor,
            f"{s.reason}; raised to L{floor}: name, ID number and mobile held together",
        )
        if s.pii_kind in COMBINED_IDENTITY and s.level < floor
        else s
        for s in suggestions
    ]


def suggest_fields(
    columns: Mapping[str, Sequence[str | None]],
    settings: Settings,
    titles: Mapping[str, str] | None = None,
) -> list[FieldSuggestion]:
    """Suggestions for a whole table, in column order, with the combination rule applied."""
    titles = titles or {}
    found = [
        suggest_field(name, titles.get(name, ""), samples, settings) for name, samples in columns.items()
    ]
    return raise_combined_identity(found, settings)


def resolve_levels(spec: EntrySpec, settings: Settings) -> tuple[EntrySpec, dict[str, str]]:
    """Fill the kinds and levels a spec leaves open (REQ-30); return the reasons per field."""
    proposals: list[FieldSuggestion] = []
    for f in spec.fields:
        guess = suggest_field(f.name, f.title, [], settings) if f.pii_kind is None else None
        kind = f.pii_kind if f.pii_kind is not None else guess.pii_kind if guess else PiiKind.NONE
        level = level_for(kind, settings)
        reason = guess.reason if guess else f"declared {kind.label}: L{level}"
        proposals.append(FieldSuggestion(f.name, kind, level, reason))
    proposals = raise_combined_identity(proposals, settings)
    resolved, reasons = [], {}
    for f, proposal in zip(spec.fields, proposals, strict=True):
        if f.level is None:
            reasons[f.name] = proposal.reason
        elif f.pii_kind is None:
            reasons[f.name] = f"{proposal.pii_kind.label} suggested; L{f.level} as declared"
        resolved.append(
            dataclasses.replace(
                f, pii_kind=proposal.pii_kind, level=f.level if f.level is not None else proposal.level
            )
        )
    return dataclasses.replace(spec, fields=resolved), reasons
