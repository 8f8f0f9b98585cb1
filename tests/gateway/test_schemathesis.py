"""schemathesis against the gateway's own OpenAPI document, served by a real gateway (on a loopback port, in
a thread of this process) that requires an API key and routes the model `tiny` to a fake replica: every
check on, a fixed seed, 5 examples per operation; 0 failures, no 5xx. Services tier (tests/conftest.py:
it starts a process of its own, `st`); a few seconds."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvloop

from tests.gateway.fake_upstream import FakeUpstream
from tests.gateway.helpers import deployment, table
from tide.gateway import Gateway
from tide.gateway.keys import GatewayKeys

KEY = "gateway-schema-key-123456"


@contextmanager
def gateway_in_thread() -> Iterator[str]:
    """A keyed gateway with model `tiny` on a fake replica, on its own event loop; yields its base URL."""
    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway-under-test", daemon=True)
    thread.start()

    async def start() -> tuple[Gateway, FakeUpstream]:
        fake = await FakeUpstream("r1").start()
        gateway = Gateway(table(deployment("tiny", [fake])), api_keys=GatewayKeys(env_keys=KEY))
        await gateway.start("127.0.0.1", 0)
        return gateway, fake

    gateway, fake = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=20)
    try:
        yield f"http://127.0.0.1:{gateway.port}"
    finally:

        async def stop() -> None:
            await gateway.stop()
            await fake.stop()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def test_schemathesis_finds_nothing_in_the_gateway_document(tmp_path: Path) -> None:
    har = tmp_path / "exchanges.har"
    with gateway_in_thread() as base_url:
        command = [
            sys.executable, "-m", "schemathesis.cli", "run", f"{base_url}/openapi.json",
            "--header", f"Authorization: Bearer {KEY}", "--checks", "all",
            "--max-examples", "5", "--seed", "1", "--workers", "1", "--no-color",
            "--report", "har", "--report-har-path", str(har),
        ]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=180, check=False, env=dict(os.environ))  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    statuses = Counter(e["response"]["status"] for e in json.loads(har.read_text())["log"]["entries"])
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses[200] and statuses[401] and statuses[404], statuses  # forwarded, refused, unknown model
