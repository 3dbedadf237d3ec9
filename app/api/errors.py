"""Every error leaves the API as a Kubernetes `Status`, worded as the API server words it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from app.domain.gslb import PLURAL
from app.domain.status import Status, StatusDetails, causes_from_errors, failure
from app.stores.base import AlreadyExists, Conflict, NotFound, StoreError, Unavailable

log = logging.getLogger(__name__)

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    408: "Timeout",
    409: "Conflict",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    503: "ServiceUnavailable",
}


class ApiError(Exception):
    """Raised anywhere in a request; the handler renders its Status with the Status's code."""

    def __init__(self, status: Status, headers: dict[str, str] | None = None) -> None:
        super().__init__(status.message)
        self.status = status
        self.headers = headers


def bad_request(message: str) -> ApiError:
    return ApiError(failure(400, "BadRequest", message))


def status_response(status: Status, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status.wire(), status_code=status.code, headers=headers)


def from_store_error(exc: StoreError, group: str, name: str) -> ApiError:
    """A store error about `gslbs.<group>/<name>` as the Kubernetes API server reports it."""
    resource = f'{PLURAL}.{group} "{name}"'
    details = StatusDetails(name=name, group=group, kind=PLURAL)
    headers = None
    if exc.server_message:  # the API server worded it: shown once, as kubectl shows it
        message = exc.server_message
    elif isinstance(exc, NotFound):
        message = f"{resource} not found"
    elif isinstance(exc, AlreadyExists):
        message = f"{resource} already exists"
    elif isinstance(exc, Conflict):
        message = (
            f"Operation cannot be fulfilled on {resource}: the object has been modified; "
            f"please apply your changes to the latest version and try again ({exc})"
        )
    else:
        message = str(exc) or type(exc).__name__
    if isinstance(exc, Unavailable):
        details.retry_after_seconds = 1
        headers = {"Retry-After": "1"}
    return ApiError(failure(exc.code, exc.reason, message, details), headers)


@contextmanager
def store_errors(group: str, name: str) -> Iterator[None]:
    """Translate store errors raised inside the block into Status responses for this object."""
    try:
        yield
    except StoreError as exc:
        raise from_store_error(exc, group, name) from exc


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return status_response(exc.status, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    status = failure(exc.status_code, _REASONS.get(exc.status_code, "Unknown"), message)
    return status_response(status, dict(exc.headers) if exc.headers else None)


async def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    causes = causes_from_errors(exc.errors())
    summary = ", ".join(f"{c.field}: {c.message}" for c in causes)
    status = failure(422, "Invalid", f"invalid request: {summary}", StatusDetails(causes=causes))
    return status_response(status)


async def _client_gone(request: Request, exc: Exception) -> JSONResponse:
    """The caller closed the connection before its body arrived: nothing was read, so nothing was
    written, and no one is left to answer. Not a server error: 499 (nginx's "client closed request"),
    which leaves the server span unset, as for any 4xx."""
    log.info("client went away during %s %s before its body arrived", request.method, request.url.path)
    return status_response(failure(499, "ClientClosedRequest", "the client closed the connection"))


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return status_response(failure(500, "InternalError", f"internal error: {type(exc).__name__}"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _internal)
