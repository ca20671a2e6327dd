"""Every error a client sees is JSON ``{"error": {"code", "message"}}`` — never a stack trace.

Mapping: :class:`ApiError` as raised; request validation → 422 naming the field;
``LookupError`` → 404; ``ValueError`` (bad input the platform found) → 422;
:class:`~serve.http.platform.Saturated` → 503 with ``Retry-After``; anything else
→ 500 ``internal`` (logged with its type, the message withheld from the client).
An error raised in an actor arrives wrapped (Ray's ``RayTaskError(ValueError)``, whose
text is the remote traceback): clients get the original's message
(:func:`client_message`).
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipelines.observability import get_logger
from serve.http.platform import Saturated
from store.errors import InvalidRequest

__all__ = ["ApiError", "client_message", "error_body", "install_error_handlers"]

_log = get_logger("http")


def client_message(exc: BaseException) -> str:
    """What ``exc`` says, for a client: the original error's message when ``exc`` wraps
    one raised in an actor (its ``cause``), never the remote traceback around it."""
    cause = getattr(exc, "cause", None)
    original = cause if isinstance(cause, BaseException) else exc
    if isinstance(original, KeyError) and original.args:  # str() would quote it
        return str(original.args[0])
    return str(original)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
    504: "timeout",
}


class ApiError(Exception):
    """An error with its HTTP status, a stable code and a message for the client."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _json(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Any:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _field(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Any:
        return _json(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Any:
        problems = exc.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
        message = f"{_field(first.get('loc', ()))}: {first.get('msg', 'invalid')}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more problem(s))"
        return _json(422, "invalid_request", message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        code = _STATUS_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return _json(exc.status_code, code, detail, dict(exc.headers or {}))

    @app.exception_handler(LookupError)
    async def not_found(request: Request, exc: LookupError) -> Any:
        return _json(404, "not_found", client_message(exc) or "not found")

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError) -> Any:
        return _json(422, "invalid_request", client_message(exc))

    @app.exception_handler(InvalidRequest)
    async def unstorable(request: Request, exc: InvalidRequest) -> Any:
        return _json(422, "invalid_request", client_message(exc))

    @app.exception_handler(Saturated)
    async def saturated(request: Request, exc: Saturated) -> Any:
        retry = str(max(1, math.ceil(exc.retry_after_s)))
        return _json(503, "saturated", str(exc), {"Retry-After": retry})

    @app.exception_handler(TimeoutError)
    async def timed_out(request: Request, exc: TimeoutError) -> Any:
        return _json(504, "timeout", "the platform did not answer in time")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Any:
        _log.error("http_internal_error", path=request.url.path, error=type(exc).__name__)
        return _json(500, "internal", "internal error; the server log has the details")
