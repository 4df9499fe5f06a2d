"""Errors in the OpenAI API's JSON shape, `{"error": {"message", "type", "param", "code"}}`, with
the HTTP status that clients (the openai SDK's exception classes) key on."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request the server refuses; `param` names the request field at fault, when one is."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def not_found(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(404, message, param=param, code=code)


def context_exceeded(message: str) -> ApiError:
    """400 with the code Codex and the SDKs recognise as "the prompt does not fit"."""
    return ApiError(400, message, param="input", code="context_length_exceeded")
