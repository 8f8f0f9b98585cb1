"""The operator's dashboard: static pages served by the management API under `/ui`, `/` redirecting there.

The pages are plain HTML/CSS/JS in `static/` that call the same `/v1alpha1` routes as the CLI (with the
token the browser asks for once and keeps in sessionStorage) and the unauthenticated `/metrics`. No CDN:
the chart library (uPlot) is vendored into `static/vendor/` by `scripts/vendor-ui.sh`; without it the
pages still show every table, and say the chart is missing.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
CHART_JS = STATIC_DIR / "vendor" / "uPlot.iife.min.js"
CHART_CSS = STATIC_DIR / "vendor" / "uPlot.min.css"
# Served in place of a missing vendored file: the pages check `window.uPlot` and show tables only, and the
# browser logs no failed load.
MISSING_CHART = b"/* uPlot is not vendored: run scripts/vendor-ui.sh (the dashboard shows tables only) */\n"


def _vendored(path: Path, media_type: str) -> Response:
    body = path.read_bytes() if path.is_file() else MISSING_CHART
    return Response(body, media_type=media_type, headers={"cache-control": "no-cache"})


def mount_dashboard(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @app.get("/ui", include_in_schema=False)
    async def ui() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @app.get("/ui/chart.js", include_in_schema=False)
    async def chart_js() -> Response:
        return _vendored(CHART_JS, "text/javascript")

    @app.get("/ui/chart.css", include_in_schema=False)
    async def chart_css() -> Response:
        return _vendored(CHART_CSS, "text/css")

    app.mount("/ui", StaticFiles(directory=STATIC_DIR, html=True), name="dashboard")
