"""Jinja2 environments, one per locale, and the one function that turns a template into a page.

Autoescape is on for every template, and no template applies ``|safe``: a title such as
``<script>`` is shown as text. One environment per locale keeps the gettext functions fixed per
environment, so two requests in different languages never share state.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from pubdata.web.i18n import LOCALES, translations

TEMPLATES = Path(__file__).resolve().parent / "templates"


@cache
def environment(locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals["html_lang"] = LOCALES.get(locale, "zh-CN")
    env.globals["locale"] = locale
    return env


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """`name` rendered in the visitor's language with the layout's context (nav, user, CSRF token)."""
    from pubdata.web.visitor import layout_context  # the visitor module imports this one

    locale, base = layout_context(request)
    html = environment(locale).get_template(name).render({**base, **context})
    return HTMLResponse(html, status_code=status_code)
