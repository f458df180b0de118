"""The portal's shipped files: vendored assets match their manifest, every message is translated,
templates carry no inline code, and the package data covers what the portal needs at run time."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from pubdata.web import i18n, templating

WEB = Path(i18n.__file__).resolve().parent
VENDOR = WEB / "static" / "vendor"
ROOT = WEB.parents[2]


def test_vendored_files_match_the_manifest() -> None:
    manifest = json.loads((VENDOR / "VERSIONS.json").read_text("utf-8"))
    assert set(manifest) == {"htmx", "echarts"}
    listed: set[str] = set()
    for name, facts in manifest.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", facts["version"]), name
        assert f"{name}/LICENSE" in facts["files"], f"{name} ships without its licence"
        for relative, digest in facts["files"].items():
            assert hashlib.sha256((VENDOR / relative).read_bytes()).hexdigest() == digest, relative
            listed.add(relative)
    on_disk = {str(p.relative_to(VENDOR)) for p in VENDOR.rglob("*") if p.is_file()} - {"VERSIONS.json"}
    assert on_disk == listed, "a vendored file is missing from the manifest (run scripts/vendor_assets.py)"


def used_message_ids() -> set[str]:
    method_map = [("templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = extract_from_dir(WEB, method_map, options, keywords={"_": None, "gettext": None, "N_": None})
    return {m if isinstance(m, str) else m[0] for _file, _line, m, _comments, _context in found}


@pytest.mark.parametrize("locale", sorted(i18n.LOCALES))
def test_every_message_is_translated(locale: str) -> None:
    used = used_message_ids()
    assert len(used) > 50
    translated: dict[str, str] = {}
    for path in i18n.po_paths(locale):  # the pages' words and the error catalogues
        with path.open("rb") as source:
            translated |= {m.id: m.string for m in read_po(source) if m.id and m.string and not m.fuzzy}
    missing = sorted(used - set(translated))
    assert not missing, f"{locale} lacks translations for {missing}"
    for msgid, text in translated.items():
        assert set(re.findall(r"%\(\w+\)s", msgid)) == set(re.findall(r"%\(\w+\)s", text)), msgid


def test_chinese_is_the_default_and_differs_from_english() -> None:
    zh, en = i18n.translations("zh_CN"), i18n.translations("en")
    assert zh.gettext("Sign in") == "登录" and en.gettext("Sign in") == "Sign in"
    assert i18n.pick_locale(None) == "zh_CN" and i18n.pick_locale("xx") == "zh_CN"
    assert templating.environment("zh_CN").globals["html_lang"] == "zh-CN"


def test_templates_have_no_inline_code_and_no_safe_filter() -> None:
    for template in (WEB / "templates").glob("*.html"):
        text = template.read_text("utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template.name
        assert " style=" not in text and "<style" not in text, template.name
        assert "|safe" not in text.replace(" ", ""), template.name
        assert not re.search(r"\son[a-z]+=", text), f"{template.name} has an inline event handler"
        assert "hx-on" not in text, template.name


def test_templates_pass_every_visible_word_through_gettext() -> None:
    """Text between tags is either a variable, a gettext call, punctuation or a proper name."""
    allowed = {"中文", "English", "#", "—", "·", "→"}
    for template in (WEB / "templates").glob("*.html"):
        text = re.sub(r"{%.*?%}|{{.*?}}|{#.*?#}", " ", template.read_text("utf-8"), flags=re.S)
        for piece in re.findall(r">([^<]+)<", text):
            words = piece.strip()
            if words and words not in allowed:
                assert not re.search(r"[A-Za-z\u4e00-\u9fff]{2,}", words), f"{template.name}: {words!r}"


def test_package_data_ships_the_portal() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["pubdata"]
    package = WEB.parent
    needed = [p for p in WEB.rglob("*") if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts]
    assert needed
    for path in needed:
        relative = path.relative_to(package)
        assert any(_match(relative, p) for p in patterns), relative


def _match(relative: Path, pattern: str) -> bool:
    """A package-data glob as setuptools reads it: ``**`` spans directories, ``*`` does not."""
    regex = re.escape(pattern).replace(r"\*\*", "§").replace(r"\*", "[^/]*").replace("§", ".*")
    return re.fullmatch(regex, relative.as_posix()) is not None
