"""The SDK's one exception type: what the API said went wrong (API.md's error shape), or why no answer came."""

from __future__ import annotations

from typing import Any

# Codes of failures that happened before the API could answer (status is None for these).
UNREACHABLE = "UNREACHABLE"  # nothing listens there: the request was not sent
CONNECTION_FAILED = "CONNECTION_FAILED"  # dropped, timed out, reset: it may or may not have been applied
# Codes of `wait` (status is None): the deployment failed, or the deadline passed first.
DEPLOYMENT_FAILED = "DEPLOYMENT_FAILED"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"


class TideError(Exception):
    """An error answer of the management API (`status` 400/401/404/409/422/429/5xx with its `code`, e.g.
    `INVALID_ARGUMENT`, its `message`, and the `field` it names, if any), or a failure to get one
    (`status` None and `code` UNREACHABLE or CONNECTION_FAILED), or a `wait` that ended without the state
    asked for (`status` None, `code` DEPLOYMENT_FAILED or DEADLINE_EXCEEDED, `resource` the last read)."""

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        field: str | None = None,
        resource: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.resource = resource

    def __str__(self) -> str:
        where = f" [{self.field}]" if self.field else ""
        return f"{self.status}: {self.message}{where}" if self.status is not None else f"{self.message}{where}"

    def __repr__(self) -> str:
        return f"TideError(status={self.status!r}, code={self.code!r}, message={self.message!r}, field={self.field!r})"


def error_from_answer(status: int, body: Any, text: str) -> TideError:
    """The error an answer with `status` >= 400 carries: `{"error": {"code", "message", "field"?}}`, or,
    from something that is not the API (a proxy's HTML page), its text under code HTTP_<status>."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        field = error.get("field")
        return TideError(
            status,
            str(error.get("code") or f"HTTP_{status}"),
            error["message"],
            field if isinstance(field, str) else None,
        )
    return TideError(status, f"HTTP_{status}", text.strip()[:500] or f"HTTP {status} with an empty body")
