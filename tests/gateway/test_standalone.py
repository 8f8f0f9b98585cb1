"""`python -m tide.gateway --routes FILE.yaml` serves the models the file names."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import httpx
import pytest

from tests.gateway.fake_upstream import FakeUpstream
from tests.gateway.helpers import CHAT, run, upstreams


@pytest.mark.timeout(30)
def test_standalone_gateway_routes_from_a_yaml_file(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("r1")) as (fake,):
            routes = tmp_path / "routes.yaml"
            routes.write_text(
                f"models:\n  tiny:\n    - {{deployment: tiny, weight: 100, endpoints: [{fake.base_url}]}}\n"
            )
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tide.gateway", "--port", "0", "--routes", str(routes),
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                assert process.stderr is not None
                line = (await asyncio.wait_for(process.stderr.readline(), 15)).decode()
                match = re.search(r"listening on (http://\S+)", line)
                assert match, line
                async with httpx.AsyncClient(base_url=match.group(1)) as http:
                    response = await http.post("/v1/chat/completions", json=CHAT)
                    assert response.json()["choices"][0]["message"]["content"] == "hello from r1"
                    assert (await http.get("/v1/models")).json()["data"][0]["id"] == "tiny"
            finally:
                process.terminate()
                assert await asyncio.wait_for(process.wait(), 10) == 0

    run(scenario(), timeout_s=25)
