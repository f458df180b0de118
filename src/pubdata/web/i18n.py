"""Message catalogues of the portal: Chinese first, English on request.

The ``.po`` files are the only form kept in the repository. They are compiled to ``.mo`` in memory on
first use (Babel reads the catalogue, writes the binary form into a buffer, `Translations` loads it),
so a clean clone installed with ``pip install -e .`` and a wheel behave alike, with no build step.
Message ids are English; the English catalogue repeats them so that a missing entry shows up in the
catalogue test rather than silently on a page.

Beside ``messages.po`` (the pages' words), each ``errors-<part>.po`` holds the sentences that part of
the platform refuses with (`pubdata.messages.text` templates); they are read into the same catalogue.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel.messages import Catalog, mofile, pofile
from babel.support import Translations

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
DOMAIN = "messages"
DEFAULT_LOCALE = "zh_CN"
#: Locale → the value of the page's ``lang`` attribute.
LOCALES: dict[str, str] = {"zh_CN": "zh-CN", "en": "en"}


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def po_paths(locale: str) -> list[Path]:
    """The pages' catalogue and the error catalogues of `locale`."""
    return [po_path(locale), *sorted(po_path(locale).parent.glob("errors-*.po"))]


def _read(path: Path, locale: str) -> Catalog:
    with path.open("rb") as source:
        return pofile.read_po(source, locale=locale, domain=DOMAIN)


@cache
def translations(locale: str) -> Translations:
    """The compiled catalogue of `locale` (an unknown locale gets the default's)."""
    if locale not in LOCALES:
        locale = DEFAULT_LOCALE
    pages, *errors = po_paths(locale)
    catalog = _read(pages, locale)
    for path in errors:
        for message in _read(path, locale):
            if message.id:
                catalog[message.id] = message
    compiled = io.BytesIO()
    mofile.write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def pick_locale(cookie: str | None) -> str:
    return cookie if cookie in LOCALES else DEFAULT_LOCALE
