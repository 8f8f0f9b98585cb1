"""Rejected candidate, kept for re-measurement: a raw ASGI proxy on uvicorn (httptools, uvloop) + httpx.

python bench/gateway/candidate_uvicorn_httpx.py  # listens on 127.0.0.1:8080, forwards to :18000
"""

from __future__ import annotations

from typing import Any

import httpx
import uvicorn

UPSTREAM = "http://127.0.0.1:18000"
client = httpx.AsyncClient(base_url=UPSTREAM, limits=httpx.Limits(max_keepalive_connections=256))
HOP_BY_HOP = {b"host", b"connection", b"content-length", b"transfer-encoding", b"keep-alive"}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = [(k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP]
    request = client.build_request(scope["method"], scope["path"], headers=headers, content=body)
    response = await client.send(request, stream=True)
    out = [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP]
    await send({"type": "http.response.start", "status": response.status_code, "headers": out})
    async for chunk in response.aiter_raw():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await response.aclose()
    await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=8080, loop="uvloop", http="httptools", log_level="warning")
