"""Through which face an action came, and who sat at it, written into every event (REQ-40).

A command run as another login (``pubdata requests approve 7 --as li.na``) names that login as the
event's actor, which is right for the workflow but hides the person at the keyboard. The command
line therefore runs each command inside `acting_through` with its channel (``cli``) and its
operator (the operating-system user); `pubdata.audit.chain.append_event` adds both to the details
of every event appended meanwhile. A context variable rather than a parameter, because the events
are written deep in services that should not learn about faces; explicit details win over it.

Example:
    >>> with acting_through("cli", operator="cli:zhang"):
    ...     acting_detail()
    {'channel': 'cli', 'operator': 'cli:zhang'}
    >>> acting_detail()
    {}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

_NOTHING: Mapping[str, str] = MappingProxyType({})
_ACTING: ContextVar[Mapping[str, str]] = ContextVar("pubdata.audit.acting", default=_NOTHING)


@contextmanager
def acting_through(channel: str, operator: str | None = None) -> Iterator[None]:
    """Every event appended inside names `channel` and, when given, `operator` in its details."""
    said = {"channel": channel, **({"operator": operator} if operator else {})}
    token = _ACTING.set(MappingProxyType(said))
    try:
        yield
    finally:
        _ACTING.reset(token)


def acting_detail() -> dict[str, str]:
    """The channel and operator of the action under way (empty outside `acting_through`)."""
    return dict(_ACTING.get())
