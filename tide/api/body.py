"""Reading a request's JSON body: malformed or absurdly nested JSON is a 400 naming the body, never a 500."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from tide.api.errors import ApiError

MAX_JSON_DEPTH = 32  # a deployment spec is 4 levels deep; anything far deeper is not one


def json_depth(value: Any) -> int:
    """How deeply `value` nests objects and lists (iterative: a hostile body cannot exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


async def read_json_body(request: Request) -> Any:
    """The request's JSON body; malformed or absurdly nested JSON is a 400 naming the body, never a 500."""
    too_deep = ApiError(
        400, "INVALID_ARGUMENT", f"the request body is nested deeper than {MAX_JSON_DEPTH} levels", "body"
    )
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "INVALID_ARGUMENT", "the request body must be a JSON object", "body") from None
    except RecursionError:
        raise too_deep from None
    if json_depth(body) > MAX_JSON_DEPTH:
        raise too_deep
    return body
