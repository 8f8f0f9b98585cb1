"""`/docs`: the API explorer (Swagger UI) over the management API's and the gateway's OpenAPI documents,
served from local files only.

Swagger UI is vendored into the package by `scripts/vendor-ui.sh` (npm `swagger-ui-dist`, pinned). Without
it, `/docs` is a plain HTML page that lists every operation of both documents and links them, so the page is
never blank, with or without internet. The gateway's document is also at `/gateway/openapi.json` here (the
gateway itself serves it at its own `/openapi.json`).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response

from tide.api.dashboard import STATIC_DIR
from tide.gateway.openapi import document as gateway_document

VENDOR = STATIC_DIR / "vendor"
SWAGGER_JS = VENDOR / "swagger-ui-bundle.js"
SWAGGER_PRESET = VENDOR / "swagger-ui-standalone-preset.js"  # the top bar that switches documents
SWAGGER_CSS = VENDOR / "swagger-ui.css"
GATEWAY_OPENAPI = "/gateway/openapi.json"

# No inline script (a strict Content-Security-Policy can be put in front), no URL outside this server.
INIT_JS = f"""window.ui = SwaggerUIBundle({{
  urls: [{{url: "/openapi.json", name: "Management API"}}, {{url: "{GATEWAY_OPENAPI}", name: "Gateway"}}],
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  plugins: [SwaggerUIBundle.plugins.DownloadUrl],
  layout: "StandaloneLayout",
  deepLinking: true,
  persistAuthorization: true,
  validatorUrl: null,
}});
"""

SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tide API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/swagger-ui.css"><link rel="icon" href="data:,"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script><script src="/docs/swagger-ui-standalone-preset.js"></script>
<script src="/docs/init.js"></script></body></html>
"""


def swagger_vendored() -> bool:
    return all(path.is_file() for path in (SWAGGER_JS, SWAGGER_PRESET, SWAGGER_CSS))


def plain_page(documents: list[tuple[str, str, dict[str, Any]]]) -> str:
    """Every operation of each (title, url, document), as HTML without scripts."""
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tide API</title>',
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">',
        "<style>body{font:15px system-ui,sans-serif;margin:1.5em;max-width:60em}code{font-size:14px}"
        "td{padding:.2em .8em .2em 0;vertical-align:top}</style></head><body>",
        "<h1>Tide API</h1><p>The API explorer is not installed (run <code>scripts/vendor-ui.sh</code>); "
        "these are the operations of each OpenAPI document.</p>",
    ]
    for title, url, doc in documents:
        parts.append(f'<h2>{html.escape(title)}</h2><p><a href="{html.escape(url)}">{html.escape(url)}</a></p><table>')
        for path, operations in doc.get("paths", {}).items():
            for method, operation in operations.items():
                statuses = ", ".join(operation.get("responses", {}))
                parts.append(
                    f"<tr><td><code>{method.upper()} {html.escape(path)}</code></td>"
                    f"<td>{html.escape(operation.get('summary', ''))}</td><td>{html.escape(statuses)}</td></tr>"
                )
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def mount_docs(app: FastAPI, openapi: Callable[[], dict[str, Any]]) -> None:
    """`/docs` and its assets, and the gateway's document at GATEWAY_OPENAPI."""

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if swagger_vendored():
            return HTMLResponse(SWAGGER_PAGE)
        documents = [("Management API", "/openapi.json", openapi()), ("Gateway", GATEWAY_OPENAPI, gateway_document())]
        return HTMLResponse(plain_page(documents))

    @app.get("/docs/init.js", include_in_schema=False)
    async def init_js() -> Response:
        return Response(INIT_JS, media_type="text/javascript")

    @app.get("/docs/swagger-ui-bundle.js", include_in_schema=False)
    async def swagger_js() -> Response:
        return _file(SWAGGER_JS, "text/javascript")

    @app.get("/docs/swagger-ui-standalone-preset.js", include_in_schema=False)
    async def swagger_preset() -> Response:
        return _file(SWAGGER_PRESET, "text/javascript")

    @app.get("/docs/swagger-ui.css", include_in_schema=False)
    async def swagger_css() -> Response:
        return _file(SWAGGER_CSS, "text/css")

    @app.get(GATEWAY_OPENAPI, include_in_schema=False)
    async def gateway_openapi() -> JSONResponse:
        return JSONResponse(gateway_document())


def _file(path: Any, media_type: str) -> Response:
    if not path.is_file():
        return Response(b"/* not vendored: run scripts/vendor-ui.sh */\n", media_type=media_type, status_code=404)
    return Response(path.read_bytes(), media_type=media_type, headers={"cache-control": "max-age=3600"})
