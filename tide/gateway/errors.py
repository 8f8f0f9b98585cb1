"""Complete HTTP/1.1 responses the gateway answers itself, with bodies in OpenAI's error shape."""

from __future__ import annotations

import orjson

REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 413: "Payload Too Large", 431: "Request Header Fields Too Large",
    429: "Too Many Requests", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}  # fmt: skip


def json_response(
    status: int, payload: object, *, keep_alive: bool = True, extra_headers: tuple[tuple[str, str], ...] = ()
) -> bytes:
    body = orjson.dumps(payload)
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}", "content-type: application/json"]
    head.append(f"content-length: {len(body)}")
    head.extend(f"{name}: {value}" for name, value in extra_headers)
    if not keep_alive:
        head.append("connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def error_payload(message: str, error_type: str, code: str | None, param: str | None = None) -> dict[str, object]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    error_type: str,
    code: str | None,
    *,
    param: str | None = None,
    keep_alive: bool = True,
    retry_after_s: int | None = None,
) -> bytes:
    extra = (("retry-after", str(retry_after_s)),) if retry_after_s is not None else ()
    return json_response(
        status, error_payload(message, error_type, code, param), keep_alive=keep_alive, extra_headers=extra
    )


def model_not_found(model: str, *, keep_alive: bool = True) -> bytes:
    # Names only what the client sent: no replica addresses, no other models.
    return error_response(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
        param="model",
        keep_alive=keep_alive,
    )
