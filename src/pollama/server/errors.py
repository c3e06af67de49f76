"""Turn every failure into the body and status an Ollama (or OpenAI) client expects.

Native routes answer `{"error": "..."}`; `/v1/*` routes answer OpenAI's
`{"error": {"message", "type", "param", "code"}}`. Request-validation failures become
400s with Go-like messages instead of FastAPI's 422, unknown paths a plain-text 404 and
wrong methods a plain-text 405, as Ollama's router does.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pollama.api.errors import APIError

log = logging.getLogger("pollama.server")

_GO_TYPES = {
    "string_type": "string",
    "int_type": "int",
    "int_parsing": "int",
    "int_from_float": "int",
    "float_type": "float64",
    "bool_type": "bool",
    "list_type": "array",
    "dict_type": "object",
    "model_type": "object",
}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def validation_message(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid request body"
    err = errors[0]
    kind, loc = err.get("type", ""), [str(p) for p in err.get("loc", ()) if p != "body"]
    if kind == "missing" and not loc:
        return "missing request body"
    if kind == "json_invalid":
        detail = (err.get("ctx") or {}).get("error", "")
        return f"invalid JSON in request body: {detail}".rstrip(": ")
    if kind.startswith("value_error") or kind == "assertion_error":
        msg = str(err.get("msg", ""))
        return msg.removeprefix("Value error, ")
    field = ".".join(p for p in loc if not p.isdigit() and not p.startswith("function-"))
    if kind in _GO_TYPES:
        return f"json: cannot unmarshal {_json_type(err.get('input'))} into Go struct field .{field} of type {_GO_TYPES[kind]}"
    if kind == "missing":
        return f"{field} is required"
    return f"invalid value for {field}: {err.get('msg', '')}"


def is_openai(request: Request) -> bool:
    return request.url.path.startswith("/v1/")


def error_response(request: Request, status: int, message: str) -> Response:
    if is_openai(request):
        kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        if status == 401:
            kind = "authentication_error"
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        return JSONResponse(body, status_code=status)
    return JSONResponse({"error": message}, status_code=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> Response:
        return error_response(request, exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 400, validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and exc.detail == "Not Found":
            return PlainTextResponse("404 page not found", status_code=404)
        if exc.status_code == 405:
            return PlainTextResponse("405 method not allowed", status_code=405)
        return error_response(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, f"internal error: {type(exc).__name__}")
