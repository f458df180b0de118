"""Why access was given or refused: the rules' names, and the refusal a person can act on.

Kept apart from `access` so that policy compilation and the decisions can both raise and name them.
"""

from __future__ import annotations

from enum import StrEnum

from pubdata.errors import RuleViolation


class AccessRule(StrEnum):
    """Why access was given or refused; stored in audit events so reports can select by rule."""

    OWN_DATA = "own_data"
    UNCONDITIONAL = "unconditional"
    GRANT = "grant"
    UNKNOWN_ENTRY = "unknown_entry"
    NOT_PUBLISHED = "not_published"
    CLASSIFIED = "classified"
    NO_ORGANISATION = "no_organisation"
    ROLE = "role"
    APPLICATION = "application"
    PURPOSE_MISSING = "purpose_missing"
    NOT_SHARED = "not_shared"
    NATIONAL_LEVEL = "national_level"
    NO_GRANT = "no_grant"
    GRANT_NOT_ACTIVE = "grant_not_active"
    OUTSIDE_PURPOSE = "outside_purpose"
    ASSESSMENT = "assessment"
    DEID_FLOOR = "deid_floor"


class AccessDenied(RuleViolation):
    """A request no rule allows: `entry` and `rule` say which and why, so a person can act on it."""

    def __init__(self, message: str, rule: AccessRule, req: str | None = None, entry: str | None = None):
        super().__init__(message, req)
        self.rule = rule
        self.entry = entry
