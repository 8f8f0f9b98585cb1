"""The dashboard in a real browser (Debian's headless chromium) against a real `tide up`: sign in with the
token, see the deployment listed, open its page with its scaling reasons and cold-start breakdown, follow
its logs as a new replica starts, and watch a deployment scale from zero to 2 under a small bounded
load and back (its replicas parked). Any console error or uncaught exception on a page fails the test.
Screenshots of each page land in the test's tmp dir (and, with TIDE_DASHBOARD_SCREENSHOTS=DIR, in DIR)."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.browser import Browser, find_chromium
from tests.e2e.conftest import TideProcess, tiny_spec


@pytest.fixture()
def browser() -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        if os.environ.get("TIDE_REQUIRE_BROWSER"):
            pytest.fail("TIDE_REQUIRE_BROWSER is set but chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium; scripts/test.sh does it as root)")
    b = Browser(executable)
    yield b
    b.close()


def test_dashboard_shows_a_deployment_its_reasons_and_follows_its_logs(
    clean_tide: TideProcess, browser: Browser, tmp_path: Path
) -> None:
    clean_tide.apply(tiny_spec(autoscaling={"min": 1, "max": 2}))
    clean_tide.wait_for("tiny-chat", "STATUS_READY", ready=1)

    browser.navigate(clean_tide.api_url + "/")
    browser.wait_for("document.getElementById('login')?.hidden === false", what="the sign-in form")
    assert browser.evaluate("location.pathname") == "/ui/"
    browser.evaluate(
        f"document.getElementById('token').value = {json.dumps(clean_tide.token)};"
        "document.getElementById('login-form').requestSubmit(); true"
    )
    row = browser.wait_for(
        "[...document.querySelectorAll('#deployments tbody tr')].map(r => r.innerText)"
        ".find(t => t.includes('tiny-chat') && t.includes('1 / 1'))",
        what="tiny-chat listed as 1 / 1 ready",
    )
    assert "ready" in row
    assert browser.evaluate("sessionStorage.getItem('tide-token')") == clean_tide.token
    # The gateway `tide up` made, serving the deployment, and the deployment's routing policy.
    gateways = browser.wait_for(
        "document.getElementById('gateways')?.querySelector('tbody')?.innerText", what="the gateways table"
    )
    assert "default" in gateways and "tiny-chat" in gateways and "/v1" in gateways, gateways
    assert "least-loaded" in browser.evaluate("document.querySelector('main').innerText")
    shots = [browser.screenshot(tmp_path / "overview.png")]

    browser.evaluate("document.querySelector('a.dep-link').click(); true")
    browser.wait_for(
        "[...document.querySelectorAll('#decisions .reason')].some(e => e.innerText.includes('(min)'))",
        what="the scaling decision reasons",
    )
    browser.wait_for("!!document.querySelector('#replicas td .seg-engine')", what="the cold-start breakdown")
    browser.wait_for("document.getElementById('logs').innerText.includes('model ready')", what="the replica's log")
    assert '"name": "tiny-chat"' in browser.evaluate("document.getElementById('spec').innerText")

    # A second replica starts after the page read the logs: its lines can only arrive by following.
    first = {r["id"] for r in clean_tide.status("tiny-chat")["replicas"]}
    clean_tide.apply(tiny_spec(autoscaling={"min": 2, "max": 2}))
    status = clean_tide.wait_for("tiny-chat", "STATUS_READY", ready=2)
    (second,) = {r["id"] for r in status["replicas"] if r["phase"] == "ready"} - first
    browser.wait_for(
        "document.getElementById('logs').innerText.split('\\n')"
        f".some(l => l.startsWith('[{second}]') && l.includes('model ready'))",
        what=f"the new replica {second}'s log lines, followed",
    )
    browser.wait_for(
        "[...document.querySelectorAll('#decisions .reason')].some(e => e.innerText.includes('-> 2'))",
        what="the scale-up decision",
    )
    browser.wait_for("!!document.querySelector('#chart .u-over')", what="the chart")
    shots.append(browser.screenshot(tmp_path / "deployment.png"))

    browser.navigate(clean_tide.api_url + "/ui/#/usage")
    browser.wait_for(
        "[...document.querySelectorAll('#usage tbody tr')].some(r => r.innerText.includes('tiny-chat'))",
        what="tiny-chat's GPU-minutes on the usage page",
    )
    shots.append(browser.screenshot(tmp_path / "usage.png"))

    # From zero to 2 under a small bounded load and back (parking on: the idle replicas park).
    burst = "tiny-burst"
    clean_tide.apply(
        tiny_spec(
            burst,
            autoscaling={
                "min": 0,
                "max": 2,
                "concurrency": 1,
                "initialScale": 0,
                "targetUtilization": 100,
                "profile": "knative",
                "window": "6s",
                "scaleToZeroGracePeriod": "2s",
                "parking": {"enabled": True},
            },
        )
    )
    clean_tide.wait_for(burst, "STATUS_READY", timeout=30)
    browser.navigate(f"{clean_tide.api_url}/ui/#/d/{burst}")
    ready = "document.getElementById('dep-stats').firstChild?.innerText || ''"
    browser.wait_for(f"({ready}).startsWith('0 / 0')", what=f"{burst} at zero")
    failures: list[int] = []
    stop = threading.Event()

    def load() -> None:
        body = {"model": burst, "prompt": "The sea", "max_tokens": 24}
        with httpx.Client(timeout=120) as client:
            for _ in range(200):  # bounded, should the test fail before it stops the load
                if stop.is_set():
                    return
                response = client.post(f"{clean_tide.gateway_url}/completions", json=body)
                if response.status_code != 200:
                    failures.append(response.status_code)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        browser.wait_for(f"({ready}).startsWith('2 / 2')", timeout=90, what=f"{burst} at 2 ready under load")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    browser.wait_for(f"({ready}).startsWith('0 / 0 · 2 parked')", timeout=90, what=f"{burst} back to 0, 2 parked")
    reasons = browser.evaluate("[...document.querySelectorAll('#decisions td .reason')].map(e => e.innerText)")
    assert any("-> 2" in r for r in reasons) and any("-> 0" in r for r in reasons), reasons
    browser.wait_for(
        "[...document.querySelectorAll('#replicas .badge')].filter(b => b.innerText === 'parked').length === 2",
        what="both replicas shown parked",
    )
    shots.append(browser.screenshot(tmp_path / "deployment-scaling.png"))

    browser.set_viewport(390, 844, mobile=True)  # a phone
    browser.navigate(clean_tide.api_url + "/ui/")
    browser.wait_for("!!document.querySelector('a.dep-link')", what="the overview after a reload, token kept")
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "wider than a phone"
    shots.append(browser.screenshot(tmp_path / "overview-phone.png"))
    browser.evaluate("document.querySelector('a.dep-link').click(); true")
    browser.wait_for("!!document.querySelector('#chart .u-over')", what="the deployment page on a phone")
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "wider than a phone"
    shots.append(browser.screenshot(tmp_path / "deployment-phone.png"))

    assert browser.errors == [], browser.errors
    copy_to = os.environ.get("TIDE_DASHBOARD_SCREENSHOTS")
    if copy_to:
        for shot in shots:
            shutil.copy(shot, Path(copy_to) / shot.name)
