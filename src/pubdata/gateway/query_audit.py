"""Every query call ends in exactly one audit event, whatever breaks on its way (REQ-40).

`run_query` audits each refusal where it is decided, and a served answer when its stream ends. What
no step foresaw — a `RecursionError` deep in a library, a database error while deciding, a bug —
used to leave a 500 and no event. `audited` wraps the call: the call's `_Call` registers itself in
`CURRENT` when it is made, and an exception that leaves the call before anything was recorded is
recorded here (outcome ``error`` for the unforeseen, ``refused`` for a platform error) and answered
as `QueryCrashed`, a typed error whose sentence says nothing of the cause. The original exception
is dropped before the new one is raised: its traceback would keep the request's frames — and with
them the engine's cursor — alive.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, ParamSpec, Protocol, TypeVar

from pubdata.errors import PubdataError
from pubdata.messages import text

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger(__name__)


class AuditedCall(Protocol):
    """What `audited` needs of a call: whether it has been recorded, and a way to record it."""

    recorded: bool

    def record(self, outcome: str, subject_hashes: frozenset[str] = ..., **more: Any) -> None: ...


#: The call being answered in this context (set by the call itself when it is made).
CURRENT: ContextVar[AuditedCall | None] = ContextVar("pubdata_query_call", default=None)


class QueryCrashed(PubdataError):
    """The platform failed while answering; the call is audited with outcome ``error``."""


def audited(run: Callable[P, R]) -> Callable[P, R]:
    """`run` with its unrecorded failures audited once and turned into `QueryCrashed`."""

    @functools.wraps(run)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        token = CURRENT.set(None)
        crashed: QueryCrashed | None = None
        try:
            return run(*args, **kwargs)
        except PubdataError as error:
            call = CURRENT.get()
            if call is not None and not call.recorded:
                call.record("refused", reason=str(error), reason_kind="invalid", decision="refused")
            raise
        except Exception as error:  # the unforeseen: recorded, then answered without its text
            log.exception("query failed unexpectedly")
            call = CURRENT.get()
            if call is not None and not call.recorded:
                call.record(
                    "error", reason="internal error", reason_kind="internal", error_type=type(error).__name__
                )
            crashed = QueryCrashed(text("the query could not be answered because of an internal error"))
        finally:
            CURRENT.reset(token)
        raise crashed

    return wrapper
