"""The base of every vocabulary the regulation names: a stored value with its Chinese labels.

Values are what the database and the API store (``restricted``); labels are what people write and
read (``受限共享``, and the national ``有条件共享`` as an alias). `parse` accepts any of them, so
every path in — CLI options, spec files, API parameters — speaks both.

Example:
    >>> class Colour(Labelled):
    ...     RED = "red", "红色", "红"
    >>> Colour.parse("红") is Colour.RED, Colour.RED.label, str(Colour.RED)
    (True, '红色', 'red')
    >>> Colour.parse("blue")
    Traceback (most recent call last):
    ...
    pubdata.vocabulary.UnknownTerm: 'blue' is not one of red (红色)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pubdata.errors import InputError


class UnknownTerm(InputError, ValueError):
    """A word outside a vocabulary: an input error, and a `ValueError` for parsers that expect one."""


class Labelled(StrEnum):
    """A stored value with its Chinese label; `parse` accepts the value or any label."""

    label: str
    aliases: tuple[str, ...]

    def __new__(cls, value: str, *labels: str) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = labels[0] if labels else value
        member.aliases = labels
        return member

    @classmethod
    def parse(cls, text: str) -> Self:
        wanted = text.strip()
        for member in cls:
            if wanted == member.value or wanted in member.aliases:
                return member
        choices = ", ".join(f"{m.value} ({m.label})" for m in cls)
        raise UnknownTerm(f"{text!r} is not one of {choices}")
