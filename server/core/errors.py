"""Errors: every failure a client can cause is a 4xx ``{"status_code", "code", "detail"}``.

``code`` is a stable English key, ``detail`` is Chinese for people. Framework errors (validation,
404 routes, 405, body too large) are mapped here too, so no raw Litestar/msgspec message leaks out.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Litestar, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.routes import HTTPRoute
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from server.core.db import DatabaseUnavailable

log = logging.getLogger("hongyi.errors")


class APIError(Exception):
    def __init__(self, status_code: int, code: str, detail: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.extra = extra or {}


class ErrorOut(msgspec.Struct, kw_only=True):
    """Every error answer. Some carry more fields (``errors`` for bad input, an import's row list)."""

    status_code: int
    code: str
    detail: str
    errors: list[Any] | msgspec.UnsetType = msgspec.UNSET


def not_found(what: str = "对象") -> APIError:
    return APIError(404, "not_found", f"{what}不存在或无权访问")


def conflict(code: str, detail: str) -> APIError:
    return APIError(409, code, detail)


def forbidden(detail: str = "没有权限执行此操作") -> APIError:
    return APIError(403, "forbidden", detail)


def _body(status_code: int, code: str, detail: str, **extra: Any) -> Response[dict[str, Any]]:
    headers = {"Cache-Control": "no-store"}
    return Response({"status_code": status_code, "code": code, "detail": detail, **extra}, status_code=status_code, headers=headers)


def api_error_handler(_: Request, exc: APIError) -> Response[dict[str, Any]]:
    return _body(exc.status_code, exc.code, exc.detail, **exc.extra)


_FIELD = re.compile(r"at `\$\.?([^`]*)`|field `([^`]*)`")


def _validation_detail(exc: ValidationException) -> tuple[str, str, list[dict[str, Any]]]:
    """Turn msgspec/Litestar messages into a Chinese sentence with the field named."""
    errors: list[dict[str, Any]] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict):
            errors.append({"field": item.get("key") or "", "source": item.get("source") or "body", "message": str(item.get("message", ""))})
    text = " ".join([str(exc.detail)] + [e["message"] for e in errors])
    field_match = _FIELD.search(text)
    field = (field_match.group(1) or field_match.group(2)) if field_match else (errors[0]["field"] if errors else "")
    if field == "data":
        field = ""
    where = f"（字段 {field}）" if field else ""
    lowered = text.lower()
    if "malformed" in lowered or "json is malformed" in lowered or "invalid json" in lowered or "truncated" in lowered:
        return "malformed_json", "请求体不是有效的 JSON", errors
    if "unknown field" in lowered or "object contains unknown field" in lowered:
        return "unknown_field", f"包含不允许的字段{where}", errors
    if "missing required field" in lowered or "missing required" in lowered:
        return "missing_field", f"缺少必填字段{where}", errors
    if "expected" in lowered:
        return "invalid_type", f"字段类型或取值不正确{where}", errors
    return "invalid_input", f"请求参数不正确{where}", errors


def validation_handler(_: Request, exc: ValidationException) -> Response[dict[str, Any]]:
    code, detail, errors = _validation_detail(exc)
    return _body(400, code, detail, errors=errors)


def http_exception_handler(_: Request, exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if isinstance(exc, NotFoundException):
        return _body(404, "not_found", "请求的地址不存在")
    if isinstance(exc, MethodNotAllowedException):
        return _body(405, "method_not_allowed", "不支持该请求方法")
    if isinstance(exc, NotAuthorizedException):
        return _body(401, "unauthorized", str(exc.detail) if _is_chinese(exc.detail) else "请先登录")
    if isinstance(exc, PermissionDeniedException):
        return _body(403, "forbidden", "没有权限执行此操作")
    if status == 413:
        return _body(413, "body_too_large", "请求体过大（上限 1 MiB）")
    if status == 429:
        return _body(429, "rate_limited", "请求过于频繁，请稍后再试")
    if status == 415:
        return _body(415, "unsupported_media_type", "请求体格式不受支持，请使用 JSON")
    if status == 400 and any(word in str(exc.detail).lower() for word in ("json", "decode", "malformed", "utf-8", "truncated", "invalid character", "trailing")):
        return _body(400, "malformed_json", "请求体不是有效的 JSON")
    if 400 <= status < 500:
        log.info("client error %s: %s", status, exc.detail)
        return _body(status, "bad_request", "请求不正确")
    log.error("http error %s: %s", status, exc.detail)
    return _body(status, "server_error", "服务器暂时出错，请稍后再试")


def _is_chinese(text: Any) -> bool:
    return isinstance(text, str) and any("\u4e00" <= ch <= "\u9fff" for ch in text)


def unavailable_handler(_: Request, exc: DatabaseUnavailable) -> Response[dict[str, Any]]:
    log.error("database unavailable: %s", exc)
    response = _body(HTTP_503_SERVICE_UNAVAILABLE, "database_unavailable", "数据库暂时不可用，数据未写入，请稍后重试")
    response.headers["Retry-After"] = "5"
    return response


def integrity_handler(_: Request, exc: Exception) -> Response[dict[str, Any]]:
    """A uniqueness or reference rule of the database caught what the code did not: a 409, not a 500."""
    log.warning("integrity error: %s", exc)
    return _body(409, "conflict", "数据冲突：记录已存在或仍被引用")


def out_of_range_handler(request: Request, exc: Exception) -> Response[dict[str, Any]]:
    """An integer the database cannot hold (ids are 32-bit on PostgreSQL, 64-bit on SQLite) can only come
    from the request — ``/members/99999999999`` or a huge number in a body: a 400, not a 500."""
    from asyncpg.exceptions import NumericValueOutOfRangeError

    if isinstance(exc, (OverflowError, NumericValueOutOfRangeError)) or isinstance(exc.__cause__, OverflowError):
        return _body(400, "out_of_range", "数值超出允许范围")
    return internal_error_handler(request, exc)  # any other data error is ours


def internal_error_handler(request: Request, exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _body(HTTP_500_INTERNAL_SERVER_ERROR, "server_error", "服务器内部错误，请稍后再试")


def _integrity_classes() -> tuple[type[Exception], ...]:
    import sqlite3

    import asyncpg

    return (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


def _out_of_range_classes() -> tuple[type[Exception], ...]:
    from asyncpg.exceptions import DataError  # also "invalid input for query argument" (raised from OverflowError)

    return (OverflowError, DataError)


# What each error status means, for the OpenAPI document (``code`` says which case it is).
_ERROR_STATUSES = {
    400: "Bad input (`code`: invalid_input, invalid_type, missing_field, unknown_field, malformed_json, …)",
    401: "Not signed in, or the sign-in has expired",
    403: "Signed in, but not allowed to do this",
    404: "No such object, or not visible to the caller",
    409: "Conflicts with stored data (e.g. already exists, still referenced)",
    413: "Request body or upload too large",
    415: "Request body in a format this endpoint does not take",
    422: "Well-formed, but breaks a business rule (see `code`)",
    429: "Too many requests; try again later",
    503: "The database is unavailable; nothing was written",
}
_READ_ONLY_STATUSES = (400, 401, 403, 404, 409, 429, 503)


def document_error_responses(app: Litestar) -> None:
    """Declares the error answers (body ``ErrorOut``) of every API operation in the OpenAPI document.

    Reads answer 400/401/403/404/409/429/503; writes also 413/415/422. A handler's own ``responses``
    entry for a status wins (e.g. check-ins answer 422 with their result body).
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/api/"):
            continue
        for handler in route.route_handlers:
            if not isinstance(handler, HTTPRouteHandler):
                continue
            writes = bool(handler.http_methods - {"GET", "HEAD", "OPTIONS"})
            statuses = _ERROR_STATUSES if writes else {s: _ERROR_STATUSES[s] for s in _READ_ONLY_STATUSES}
            declared = dict(handler.responses or {})
            for status, description in statuses.items():
                declared.setdefault(status, ResponseSpec(data_container=ErrorOut, description=description, generate_examples=False))
            handler.responses = declared


EXCEPTION_HANDLERS: dict[Any, Any] = {
    **{cls: integrity_handler for cls in _integrity_classes()},
    **{cls: out_of_range_handler for cls in _out_of_range_classes()},
    APIError: api_error_handler,
    ValidationException: validation_handler,
    DatabaseUnavailable: unavailable_handler,
    HTTPException: http_exception_handler,
    HTTP_500_INTERNAL_SERVER_ERROR: internal_error_handler,
}
