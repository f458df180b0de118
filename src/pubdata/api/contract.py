"""What the OpenAPI document promises, kept true for every route at once.

* Every operation lists the error answers the platform's error mapping can give it (`ErrorOut`),
  so that a client generated from ``/openapi.json`` knows a 403 or a 409 is an answer, not a
  crash. The gateway and workflow routes (``/api/v1``) may refuse an unknown caller (401), a role
  or scope (403), a missing thing (404) and a rule (409); the public catalogue only bad input and
  missing things.
* A 405 names every method the path has: Starlette answers from the first route whose path matched,
  so a path with a GET and a PUT route would otherwise say ``Allow: GET`` to a DELETE.
* The framework's own refusals under ``/api`` (a body that is not JSON, a path that does not exist,
  a method the path lacks) carry the same ``{"error", "detail"}`` body as the platform's.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

#: Status → description of the error answers each kind of route may give.
GATEWAY_ERRORS = {
    "400": "Bad input, named by field.",
    "401": "No valid bearer token.",
    "403": "The caller's role, organisation or token scope does not allow it.",
    "404": "No such thing, or not one the caller may know of.",
    "409": "Refused by a rule of the regulation (the REQ is named).",
    "422": "The request does not match its schema.",
}
PUBLIC_ERRORS = {code: GATEWAY_ERRORS[code] for code in ("400", "404", "422")}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


def _errors_for(path: str) -> dict[str, str]:
    if path.startswith("/api/v1/"):
        return GATEWAY_ERRORS
    return PUBLIC_ERRORS if path.startswith("/api/") else {}


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` list the error answers of every operation."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).setdefault("ErrorOut", _error_schema())
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                for code, description in _errors_for(path).items():
                    if code == "422" and code in responses:
                        continue  # FastAPI's own validation answer keeps its schema
                    responses.setdefault(
                        code,
                        {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}},
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _error_schema() -> dict[str, Any]:
    from pubdata.api.schemas import ErrorOut

    return ErrorOut.model_json_schema()


@cache
def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$")


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method the documented paths matching `path` accept."""
    methods: set[str] = set()
    for template, item in app.openapi().get("paths", {}).items():
        if _pattern(template).match(path):
            methods |= {m.upper() for m in item}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


#: The ``error`` code of the framework's own refusals, by status.
HTTP_ERROR_CODES = {400: "invalid", 401: "not_authenticated", 403: "forbidden", 404: "not_found",
                    405: "method_not_allowed", 413: "too_large"}  # fmt: skip


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # registered for it only: others stay unhandled
        raise exc
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        methods = allowed_methods(request.app, request.url.path)
        if methods:
            headers["Allow"] = ", ".join(methods)
    if not request.url.path.startswith("/api/"):
        exc.headers = headers
        return await http_exception_handler(request, exc)
    code = HTTP_ERROR_CODES.get(exc.status_code, "invalid" if exc.status_code < 500 else "server_error")
    body = {"error": code, "detail": str(exc.detail)}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def install(app: FastAPI) -> None:
    document_errors(app)
    app.add_exception_handler(StarletteHTTPException, _http_error)
