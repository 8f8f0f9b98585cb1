"""The asynchronous SDK client against a real management API: the same requests, results and errors as
the synchronous one, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.sdk.conftest import spec
from tests.support.api_server import TOKEN, ZONE, ApiServer
from tide.sdk import AsyncClient, Deployment, TideError
from tide.sdk.errors import DEPLOYMENT_FAILED


def run(scenario: Callable[[AsyncClient], Awaitable[Any]], api: ApiServer) -> Any:
    async def main() -> Any:
        async with AsyncClient(api.url, TOKEN) as tide:
            return await scenario(tide)

    return asyncio.run(main())


def test_deployments_crud_and_paging(api: ApiServer) -> None:
    async def scenario(tide: AsyncClient) -> None:
        for i in range(3):
            await tide.deployments.create(spec(f"model-{i}"))
        assert [d["spec"]["id"] async for d in tide.deployments.iter(page_size=2)] == ["model-0", "model-1", "model-2"]
        assert len(await tide.deployments.list()) == 3
        page = await tide.deployments.list_page(page_size=1)
        assert len(page["deployments"]) == 1 and page.get("nextPageToken")
        updated = await tide.deployments.update("model-1", spec("model-1", traffic={"weight": 50}))
        assert updated["spec"]["traffic"]["weight"] == 50
        assert (await tide.deployments.get("model-1"))["spec"]["traffic"]["weight"] == 50
        assert (await tide.deployments.delete("model-2"))["status"]["status"] == "STATUS_DELETING"

    run(scenario, api)


def test_errors_are_the_same_tide_error(api: ApiServer) -> None:
    async def scenario(tide: AsyncClient) -> TideError:
        with pytest.raises(TideError) as invalid:
            await tide.deployments.create(spec(runtime={"engine": "builtin", "engineConfig": {"dtype": "x"}}))
        return invalid.value

    error = run(scenario, api)
    assert (error.status, error.code, error.field) == (400, "INVALID_ARGUMENT", "runtime.engineConfig.dtype")


def test_wait_and_logs(api: ApiServer) -> None:
    api.logs["tiny-chat"] = {"tiny-chat-r0": "loading\n"}
    seen: list[Deployment] = []

    async def ready(_seconds: float) -> None:
        api.store.set_status(
            "tiny-chat", {"state": "STATUS_READY", "readyReplicas": 1, "desiredReplicas": 1, "conditions": []}
        )

    async def more(_seconds: float) -> None:
        api.logs["tiny-chat"]["tiny-chat-r0"] += "ready\n"

    async def scenario(tide: AsyncClient) -> None:
        await tide.deployments.create(spec())
        done = await tide.deployments.wait("tiny-chat", on_progress=seen.append, sleep=ready)
        assert done["status"]["readyReplicas"] == 1
        answers = tide.deployments.follow_logs("tiny-chat", sleep=more)
        assert (await anext(answers))["replicas"] == {"tiny-chat-r0": "loading\n"}
        assert (await anext(answers))["replicas"] == {"tiny-chat-r0": "ready\n"}
        api.store.set_status(
            "tiny-chat", {"state": "STATUS_FAILED", "conditions": [{"type": "Failed", "message": "no"}]}
        )
        with pytest.raises(TideError) as failed:
            await tide.deployments.wait("tiny-chat", sleep=ready)
        assert failed.value.code == DEPLOYMENT_FAILED

    run(scenario, api)
    assert [d["status"]["status"] for d in seen] == ["STATUS_CREATING", "STATUS_READY"]


def test_claims_gateways_keys_usage(api: ApiServer) -> None:
    async def scenario(tide: AsyncClient) -> None:
        resources = {"instanceId": "H100-8x", "instanceCount": 2, "zones": [ZONE]}
        claim = await tide.claims.create({"id": "team-a", "resources": resources})
        assert claim["status"]["allocatedInstances"] == 2
        assert [c["spec"]["id"] async for c in tide.claims.iter()] == ["team-a"]
        assert (await tide.claims.get("team-a"))["spec"]["resources"]["zones"] == [ZONE]
        await tide.claims.update("team-a", {"resources": {**resources, "instanceCount": 1}})
        assert (await tide.claims.list())[0]["spec"]["resources"]["instanceCount"] == 1
        await tide.claims.delete("team-a")
        assert await tide.claims.list() == []
        await tide.gateways.create({"name": "team", "apiKeyAuth": {}, "pathBasedRouting": {}})
        assert [g["spec"]["id"] for g in await tide.gateways.list()] == ["default", "team"]
        key = await tide.keys.create("team")
        assert [k["id"] for k in await tide.keys.list("team")] == [key["apiKey"]["id"]]
        assert (await tide.keys.revoke("team", key["apiKey"]["id"]))["id"] == key["apiKey"]["id"]
        assert (await tide.usage())["totalGpuMinutes"] == 0

    run(scenario, api)
