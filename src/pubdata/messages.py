"""Sentences for people that can be said in another language: an English `str` that keeps its template.

Errors are raised deep in the platform, far from the page that shows them, and the command line, the
API and the log want the English sentence. `text("application {code} is deactivated", code=...)`
is that sentence — a plain `str` everywhere — and also carries the template and the values, so the
portal can look the template up in its catalogue and fill the Chinese sentence with the same
values. Templates are constants of the code, never user data; values are only ever inserted.

Example:
    >>> said = text("entry {code} holds no data yet", code="hrss_social_insurance")
    >>> said
    'entry hrss_social_insurance holds no data yet'
    >>> said.template, said.params
    ('entry {code} holds no data yet', {'code': 'hrss_social_insurance'})
    >>> said.say(lambda template: "目录 {code} 还没有数据")
    '目录 hrss_social_insurance 还没有数据'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Text(str):
    """The English sentence, with the `template` and `params` it was made from."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, params: dict[str, Any]) -> Text:
        made = super().__new__(cls, template.format(**params))
        made.template = template
        made.params = params
        return made

    def __reduce__(self) -> tuple[type[Text], tuple[str, dict[str, Any]]]:
        # Rebuilt from the template and values: errors carrying one can be pickled and copied.
        return (Text, (self.template, self.params))

    def say(self, gettext: Callable[[str], str]) -> str:
        """The sentence in the language of `gettext`; the English one if the catalogue misreads."""
        # A value that is itself a sentence (a reason inside a sentence) is said in the same language.
        params = {k: v.say(gettext) if isinstance(v, Text) else v for k, v in self.params.items()}
        try:
            return gettext(self.template).format(**params)
        except (KeyError, IndexError, ValueError):
            return str(self)


def text(template: str, /, **params: Any) -> Text:
    """An English sentence from a constant template; see the module docstring."""
    return Text(template, params)
