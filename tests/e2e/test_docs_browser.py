"""`/docs` in headless Chromium (Debian's package), as a user without internet sees it: Swagger UI renders
every operation of the management API and, switched over, the gateway's; the page asks no other host for
anything and logs no error. Screenshots under the test's tmp dir. A management API in this process (no
`tide up` needed), so it takes seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import Browser, find_chromium
from tests.support.openapi_server import management_app, serve
from tide.api.docs_page import swagger_vendored


class RecordingBrowser(Browser):
    """Also records the URL of every request the page makes."""

    def __init__(self, executable: str) -> None:
        self.requested: list[str] = []
        super().__init__(executable)
        self.send("Network.enable", session=self.session)

    def _event(self, event: dict[str, Any]) -> None:
        if event.get("method") == "Network.requestWillBeSent":
            self.requested.append(event["params"]["request"]["url"])
        super()._event(event)


def test_docs_render_both_documents_from_local_files_only(tmp_path: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium (apt-get install chromium)")
    if not swagger_vendored():
        pytest.skip("Swagger UI is not vendored (scripts/vendor-ui.sh); /docs lists operations as plain HTML")
    app, store = management_app(tmp_path / "tide.db")
    try:
        with serve(app) as base_url:
            browser = RecordingBrowser(chromium)
            try:
                browser.navigate(f"{base_url}/docs")
                count = browser.wait_for(
                    "document.querySelectorAll('.opblock').length >= 24 && document.querySelectorAll('.opblock').length",
                    what="Swagger UI to render the management API's operations",
                )
                assert browser.evaluate("document.body.innerText.includes('/v1alpha1/inference/deployments')")
                browser.screenshot(tmp_path / "docs-management.png")
                browser.navigate(f"{base_url}/docs?urls.primaryName=Gateway")
                browser.wait_for(
                    "document.body.innerText.includes('/v1/chat/completions')",
                    what="Swagger UI to render the gateway's document",
                )
                browser.screenshot(tmp_path / "docs-gateway.png")
                assert browser.errors == [], browser.errors
                others = [u for u in browser.requested if not u.startswith((base_url, "data:", "about:"))]
                assert others == [], f"requests to other hosts: {others}"
                assert count >= 24
            finally:
                browser.close()
    finally:
        store.close()
