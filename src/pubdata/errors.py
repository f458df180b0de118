"""Errors a person can act on.

Every error the platform raises on purpose derives from `PubdataError`; the CLI prints its message
without a traceback and the API turns it into a 4xx answer. Errors about input name where the
problem is (file, row, column) so that the person who sent the file can fix it.
"""

from __future__ import annotations

from pubdata.messages import Text


class PubdataError(Exception):
    """A failure the user can understand and fix.

    `text` is the message as `pubdata.messages.text` made it (template and values), when it was made
    so: the portal says it in the visitor's language. Subclasses that add to the message keep the
    part they were given there.
    """

    text: Text | None = None

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        if args and isinstance(args[0], Text):
            self.text = args[0]


class NotFound(PubdataError):
    """A referenced object (entry, organisation, version, division) does not exist."""


class RuleViolation(PubdataError):
    """A regulation rule forbids the change; `req` names the rule (e.g. ``REQ-14``)."""

    def __init__(self, message: str, req: str | None = None) -> None:
        super().__init__(f"{message} ({req})" if req else message)
        self.text = message if isinstance(message, Text) else None
        self.req = req


class InputError(PubdataError):
    """Bad input data; carries the location so the message can point at it."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        where = ", ".join(
            part
            for part in (
                f"file {file}" if file else "",
                f"row {row}" if row is not None else "",
                f"column {column}" if column else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.text = message if isinstance(message, Text) else None
        self.file = file
        self.row = row
        self.column = column
