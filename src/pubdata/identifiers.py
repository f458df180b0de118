"""Identity numbers, credit codes, mobiles: check them and (for demo data) make valid ones.

`stdnum.cn.ric` is not used for identity numbers: it wrongly requires the division code to exist in
the holder's birth year, while numbers carry the code of the place of issue (330103 下城区 was
abolished in 2021 and is still on millions of cards). We check the ISO 7064 MOD 11-2 character with
`stdnum.iso7064.mod_11_2`, the birth date ourselves, and the code against the shipped table.

Example:
    >>> id_number_problem("33010319800101001X")
    'check character'
    >>> id_number_problem(make_id_number("330103", "19800101", 1))
    >>> uscc_problem(make_uscc("11", "330000", "00250240"))
    >>> normalise_mobile("+86 138-0013-8000")
    '13800138000'
"""

from __future__ import annotations

import datetime as dt
import re

from stdnum.cn import uscc as stdnum_uscc
from stdnum.iso7064 import mod_11_2

from pubdata.divisions import divisions

_FULLWIDTH = str.maketrans("０１２３４５６７８９ＸｘＡ－＋", "0123456789XxA-+")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def fullwidth_to_ascii(value: str) -> str:
    """Turn full-width digits and the few letters seen in IDs into ASCII."""
    return value.translate(_FULLWIDTH)


def normalise_id_number(value: str) -> str:
    return fullwidth_to_ascii(value).strip().replace(" ", "").upper()


def id_number_problem(value: str, today: dt.date | None = None) -> str | None:
    """Why `value` is not a valid 18-character identity number, or None when it is."""
    number = normalise_id_number(value)
    if len(number) != 18 or not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        return "format"
    if not divisions().is_valid_at_issue(number[:6]):
        return "division code"
    try:
        born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return "birth date"
    if born.year < 1890 or born > (today or dt.date.today()):
        return "birth date"
    if mod_11_2.calc_check_digit(number[:17]) != number[17]:
        return "check character"
    return None


def make_id_number(county: str, birth: str, sequence: int) -> str:
    """A valid number for demo data: 6-digit county code, YYYYMMDD, 3-digit sequence (odd = male)."""
    body = f"{county}{birth}{sequence % 1000:03d}"
    return body + str(mod_11_2.calc_check_digit(body))


def normalise_uscc(value: str) -> str:
    return fullwidth_to_ascii(value).strip().replace(" ", "").upper()


def uscc_problem(value: str) -> str | None:
    """Why `value` is not a valid unified social credit code (checked by python-stdnum)."""
    code = normalise_uscc(value)
    if len(code) != 18 or any(c not in _USCC_ALPHABET for c in code):
        return "format"
    return None if stdnum_uscc.is_valid(code) else "check character"


def make_uscc(department_and_type: str, county: str, org_body: str) -> str:
    """A valid code for demo data from a 2-char registration type, 6-digit county and 8-char body."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(_ORG_ALPHABET.index(c) * w for c, w in zip(org_body, weights, strict=True))
    org_check = 11 - total % 11
    org_code = org_body + ("0" if org_check == 11 else "X" if org_check == 10 else str(org_check))
    body = department_and_type + county + org_code
    return body + stdnum_uscc.calc_check_digit(body)


def normalise_mobile(value: str) -> str:
    text = fullwidth_to_ascii(value).strip()
    text = re.sub(r"[\s\-()]", "", text)
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    return text


def mobile_problem(value: str) -> str | None:
    return None if _MOBILE.match(normalise_mobile(value)) else "format"


def division_code_problem(value: str) -> str | None:
    code = fullwidth_to_ascii(value).strip()
    if not code.isdigit() or len(code) not in (6, 9, 12):
        return "format"
    return None if divisions().find(code) is not None else "unknown division"
