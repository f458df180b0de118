"""The language the command line speaks: the one the person's locale asks for, Chinese or English.

The words come from the portal's catalogues (``web/translations``, the same ``errors-*.po`` that say
a refusal on a page), so a refusal reads the same in the terminal and in the browser. The portal's
modules are imported only when Chinese is asked for: English is the sentence the error already is.

Which locale: GNU gettext's order — ``LANGUAGE`` (a ``:``-separated list of preferences) unless the
locale is ``C``/``POSIX``, then ``LC_ALL``, ``LC_MESSAGES``, ``LANG``. Any ``zh…`` is Chinese; nothing
set, ``C`` or another language is English.

Example:
    >>> cli_locale({"LANG": "zh_CN.UTF-8"}), cli_locale({"LC_ALL": "C", "LANGUAGE": "zh_CN"})
    ('zh_CN', 'en')
    >>> cli_locale({"LANG": "en_US.UTF-8", "LANGUAGE": "fr:zh_TW:en"}), cli_locale({})
    ('zh_CN', 'en')
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from pubdata.messages import Text

ENGLISH = "en"
CHINESE = "zh_CN"


def _language_of(tag: str) -> str | None:
    tag = tag.strip().lower()
    if tag.startswith("zh"):
        return CHINESE
    if tag.startswith("en"):
        return ENGLISH
    return None


def cli_locale(environ: Mapping[str, str] | None = None) -> str:
    """`CHINESE` or `ENGLISH`, as the locale variables of `environ` (the process's) ask."""
    env = os.environ if environ is None else environ
    locale = env.get("LC_ALL") or env.get("LC_MESSAGES") or env.get("LANG") or ""
    if locale.split(".")[0] not in ("C", "POSIX"):
        for tag in env.get("LANGUAGE", "").split(":"):
            if (language := _language_of(tag)) is not None:
                return language
    return _language_of(locale) or ENGLISH


def gettext(locale: str) -> Callable[[str], str]:
    """The catalogue lookup of `locale` (English: the message id itself)."""
    if locale == ENGLISH:
        return str
    from pubdata.web.i18n import translations

    return translations(locale).gettext


def say(error: BaseException, locale: str) -> str:
    """The message of `error` in `locale`, with the parts errors add (where, which rule) said too."""
    if locale == ENGLISH:
        return str(error)
    from pubdata.web.error_text import say as say_on_page

    return say_on_page(error, locale)


def say_text(said: Text, locale: str | None = None) -> str:
    """A sentence made with `pubdata.messages.text`, in `locale` (default: the process's)."""
    return said.say(gettext(locale or cli_locale()))
