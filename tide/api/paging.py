"""`pageSize` / `pageToken` on the list routes, as the hosted APIs do them.

A page holds `pageSize` items (default 100, at most 1000: larger values are lowered to it, as AIP-158
says) in creation order; `nextPageToken` is present when more follow and is passed back as `pageToken`.
The token is opaque to clients (base64 of where the page ended), so its contents may change.
"""

from __future__ import annotations

import base64
import binascii
import json

from tide.api.errors import ApiError
from tide.store.paging import Cursor

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_size(value: int | None) -> int:
    if value is None or value == 0:
        return DEFAULT_PAGE_SIZE
    if value < 0:
        raise ApiError(400, "INVALID_ARGUMENT", f"pageSize must be positive (at most {MAX_PAGE_SIZE})", "pageSize")
    return min(value, MAX_PAGE_SIZE)


def encode_token(cursor: Cursor | None) -> str | None:
    if cursor is None:
        return None
    raw = json.dumps([cursor.created_at, cursor.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None) -> Cursor | None:
    if not token:
        return None
    try:
        created_at, item_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(created_at, int | float) and isinstance(item_id, str):
            return Cursor(created_at=float(created_at), id=item_id)
    except (ValueError, TypeError, binascii.Error):
        pass
    raise ApiError(
        400,
        "INVALID_ARGUMENT",
        "pageToken is not one this API issued: pass the nextPageToken of the previous page, or none for the first",
        "pageToken",
    )
