"""The de-identification functions (REQ-32), registered by name for grants and default rules.

A grant names a function per field (``mask_id_number``, ``pseudonym`` with a slot, …); the policy
compiler looks it up here and gets a sqlglot expression over the raw column, which the rewrite puts
into the table's policy subquery. Everything runs inside the engine, on DuckDB now and Spark later.
Which function a field gets when no grant says otherwise is `default_deid` (REQ-27).

Example:
    >>> DEID_FUNCTIONS["mask_mobile"].label
    '手机号遮蔽'
    >>> build_deid("mask_mobile", exp.column("mobile", table="__base_people")).sql("duckdb")[:46]
    'CASE WHEN LENGTH(CAST(__base_people.mobile AS '
    >>> [p.name for p in DEID_FUNCTIONS["generalise_date"].parameters]
    ['granularity']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from pubdata.catalog.classes import Level, PiiKind
from pubdata.errors import InputError
from pubdata.gateway.deid_defaults import DEFAULT_RULES, DeidRule, default_deid
from pubdata.gateway.deid_generalise import age_bucket, generalise_date, generalise_division
from pubdata.gateway.deid_masks import (
    mask_address,
    mask_bank_card,
    mask_id_number,
    mask_mobile,
    mask_name,
    mask_uscc,
    suppress,
)
from pubdata.gateway.deid_pseudonym import pseudonym, pseudonym_variables
from pubdata.gateway.deid_sql import ColumnLike
from pubdata.messages import text

__all__ = [
    "DEFAULT_RULES",
    "DEID_FUNCTIONS",
    "DeidFunction",
    "DeidParameter",
    "DeidRule",
    "build_deid",
    "default_deid",
    "pseudonym_variables",
]


@dataclass(frozen=True)
class DeidParameter:
    name: str
    #: None when the grant must give a value (a pseudonym's slot).
    default: Any
    annotation: str


@dataclass(frozen=True)
class DeidFunction:
    """One registered function: what to call it, what it gives, what it suits."""

    name: str
    #: Chinese name shown to people who write grants.
    label: str
    build: Callable[..., exp.Expression]
    #: PII kinds it is meant for (a hint for people and for checks, not a restriction).
    pii_kinds: frozenset[PiiKind]
    #: Levels at which it is strong enough on its own.
    levels: frozenset[Level]

    @property
    def output(self) -> str:
        """What the output looks like: the builder's docstring, which the tests hold it to."""
        return inspect.getdoc(self.build) or ""

    @property
    def parameters(self) -> tuple[DeidParameter, ...]:
        signature = inspect.signature(self.build)
        return tuple(
            DeidParameter(
                p.name,
                None if p.default is inspect.Parameter.empty else p.default,
                str(p.annotation),
            )
            for p in list(signature.parameters.values())[1:]
        )

    def __call__(self, column: ColumnLike, **params: Any) -> exp.Expression:
        known = {p.name for p in self.parameters}
        unknown = sorted(set(params) - known)
        if unknown:
            takes = ", ".join(sorted(known)) or "none"
            raise InputError(
                text(
                    "{name} takes no parameter {unknown} (it takes: {takes})",
                    name=self.name,
                    unknown=", ".join(unknown),
                    takes=takes,
                )
            )
        try:
            return self.build(column, **params)
        except TypeError as exc:
            raise InputError(f"{self.name}: {exc}") from exc


_ALL_LEVELS = frozenset(Level)
_L2_UP = frozenset({Level.L2, Level.L3, Level.L4})
_L2_L3 = frozenset({Level.L2, Level.L3})

DEID_FUNCTIONS: dict[str, DeidFunction] = {
    f.name: f
    for f in (
        DeidFunction(
            "mask_id_number", "身份证号遮蔽", mask_id_number, frozenset({PiiKind.ID_NUMBER}), _L2_UP
        ),
        DeidFunction("mask_mobile", "手机号遮蔽", mask_mobile, frozenset({PiiKind.MOBILE}), _L2_UP),
        DeidFunction("mask_name", "姓名遮蔽", mask_name, frozenset({PiiKind.NAME}), _L2_UP),
        DeidFunction(
            "mask_address", "地址截断至乡镇街道", mask_address, frozenset({PiiKind.ADDRESS}), _L2_UP
        ),
        DeidFunction("mask_uscc", "统一社会信用代码遮蔽", mask_uscc, frozenset({PiiKind.USCC}), _L2_UP),
        DeidFunction(
            "mask_bank_card", "银行卡号遮蔽", mask_bank_card, frozenset({PiiKind.BANK_CARD}), _L2_UP
        ),
        DeidFunction("generalise_date", "日期泛化", generalise_date, frozenset({PiiKind.BIRTH_DATE}), _L2_L3),
        DeidFunction(
            "age_bucket", "年龄分段", age_bucket, frozenset({PiiKind.BIRTH_DATE, PiiKind.ID_NUMBER}), _L2_L3
        ),
        DeidFunction(
            "generalise_division",
            "区划泛化",
            generalise_division,
            frozenset({PiiKind.NONE, PiiKind.ADDRESS}),
            _L2_L3,
        ),
        DeidFunction("suppress", "置空", suppress, frozenset(PiiKind), _ALL_LEVELS),
        DeidFunction(
            "pseudonym",
            "密钥假名化",
            pseudonym,
            frozenset({PiiKind.ID_NUMBER, PiiKind.MOBILE, PiiKind.USCC, PiiKind.BANK_CARD, PiiKind.NAME}),
            _L2_UP,
        ),
    )
}


def build_deid(name: str, column: ColumnLike, **params: Any) -> exp.Expression:
    """The expression of function `name` over `column`, or an error that lists the known names."""
    function = DEID_FUNCTIONS.get(name)
    if function is None:
        raise InputError(
            text(
                "unknown de-identification function {name!r}; known: {known}",
                name=name,
                known=", ".join(DEID_FUNCTIONS),
            )
        )
    return function(column, **params)
