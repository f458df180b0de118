"""Refusals in the visitor's language: every sentence made with `text` has both translations, and
the parts errors add (where, which rule) are said in the page's language too."""

from __future__ import annotations

import ast
import pickle
import re
import string
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from pubdata.errors import InputError, PubdataError, RuleViolation
from pubdata.messages import Text, text
from pubdata.web import i18n
from pubdata.web.error_text import say

SOURCE = Path(__file__).resolve().parent.parent / "src" / "pubdata"


def templates_in_code() -> dict[str, str]:
    """Every constant template passed to `text(...)` in the package, with where it is."""
    found: dict[str, str] = {}
    for path in SOURCE.rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        names = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "pubdata.messages"
            for alias in node.names
            if alias.name == "text"
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in names and node.args:
                first = node.args[0]
                assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                    f"{path}:{node.lineno}: text() takes a constant template, never a built string"
                )
                found[first.value] = f"{path.relative_to(SOURCE)}:{node.lineno}"
    return found


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("locale", sorted(i18n.LOCALES))
def test_every_refusal_template_is_translated_with_the_same_values(locale: str) -> None:
    translated: dict[str, str] = {}
    for path in i18n.po_paths(locale):
        with path.open("rb") as source:
            translated |= {m.id: m.string for m in read_po(source) if m.id and m.string and not m.fuzzy}
    missing = {t: where for t, where in templates_in_code().items() if t not in translated}
    assert not missing, f"{locale} lacks translations for {missing}"
    for template in templates_in_code():
        assert fields(translated[template]) == fields(template), template


def test_the_chinese_differs_from_the_english() -> None:
    chinese = i18n.translations("zh_CN").gettext
    for template in templates_in_code():
        assert chinese(template) != template, template
        assert re.search(r"[\u4e00-\u9fff]", chinese(template)), template


def test_an_input_error_says_where_in_the_page_language() -> None:
    error = InputError(text("a value is missing"), file="参保.csv", row=7, column="姓名")
    assert str(error) == "file 参保.csv, row 7, column 姓名: a value is missing"
    assert say(error, "en") == str(error)
    assert say(error, "zh_CN").startswith("文件 参保.csv，第 7 行，字段 姓名：")


def test_a_rule_keeps_its_number_and_a_plain_error_stays_as_it_is() -> None:
    rule = RuleViolation(text("a value is missing"), "REQ-16")
    assert str(rule) == "a value is missing (REQ-16)" and say(rule, "zh_CN").endswith("（REQ-16）")
    plain = PubdataError("made from a plain string")
    assert plain.text is None and say(plain, "zh_CN") == "made from a plain string"
    assert say(ValueError("not ours"), "zh_CN") == "not ours"


@given(st.text(max_size=30), st.integers())
def test_values_are_inserted_never_interpreted(value: str, number: int) -> None:
    said = text("entry {code} has {n} rows", code=value, n=number)
    assert said == f"entry {value} has {number} rows" and isinstance(said, Text)
    # A value holding braces is data: the translated sentence shows it as it is.
    assert said.say(lambda template: "目录 {code} 有 {n} 行") == f"目录 {value} 有 {number} 行"
    assert said.say(lambda template: "目录 {unknown}") == str(said)  # a broken translation falls back
    again = pickle.loads(pickle.dumps(RuleViolation(said, "REQ-3")))  # errors may cross processes
    assert str(again) == f"{said} (REQ-3)" and again.text is not None and again.text.params == said.params
