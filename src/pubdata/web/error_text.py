"""A refusal as the visitor reads it: the platform's English sentence said in the page's language.

Errors made with `pubdata.messages.text` carry their template; the catalogue of the page's locale
turns it into Chinese (``errors-*.po``), and the parts errors add themselves — where in a file
(`InputError`) and which rule (`RuleViolation`) — are said in the same language. Errors made from a
plain string are shown as they are: still correct, only in English.
"""

from __future__ import annotations

from pubdata.errors import InputError, PubdataError, RuleViolation
from pubdata.web.i18n import translations


def say(error: BaseException, locale: str) -> str:
    """The message of `error` for a page in `locale`."""
    said = error.text if isinstance(error, PubdataError) else None
    if said is None:
        return str(error)
    gettext = translations(locale).gettext
    message = said.say(gettext)
    if isinstance(error, InputError):
        where = [
            gettext(template).format(value=value)
            for template, value in (
                ("file {value}", error.file),
                ("row {value}", error.row),
                ("column {value}", error.column),
            )
            if value is not None and value != ""
        ]
        if where:
            message = gettext("{where}: {message}").format(where=gettext(", ").join(where), message=message)
    if isinstance(error, RuleViolation) and error.req:
        message = gettext("{message} ({req})").format(message=message, req=error.req)
    return message
