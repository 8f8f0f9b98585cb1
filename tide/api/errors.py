"""The API's base path and its one error type, rendered in API.md's JSON shape."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

BASE = "/v1alpha1/inference"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return JSONResponse({"error": body}, status_code=self.status)
