"""The asynchronous client: `AsyncClient(server, token)`, method for method the synchronous `Client` of
`tide.sdk.client` (the same requests, results and errors), awaited: `await client.deployments.get(id)`,
`async for d in client.deployments.iter()`, `async with AsyncClient() as client`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, cast

import httpx

from tide.sdk import calls
from tide.sdk.calls import LIST_PAGE_SIZE, Call, WarningHandler
from tide.sdk.client import DEFAULT_TIMEOUT_S, default_server, default_token
from tide.sdk.types import (
    ApiKey,
    CapacityClaim,
    CapacityClaimPage,
    CreatedKey,
    Deployment,
    DeploymentLogs,
    DeploymentPage,
    Gateway,
    UsageReport,
)

Deployments_ = list[Deployment]
Claims_ = list[CapacityClaim]
Gateways_ = list[Gateway]
Keys_ = list[ApiKey]


class AsyncClient:
    """An asynchronous client of the management API at `server` (default: $TIDE_API_URL or
    http://127.0.0.1:8081) with bearer `token` (default: $TIDE_API_TOKEN or DATA_DIR/api-token).

    `on_warning` receives the API's `Warning` headers (a deprecated spec shape, and how to write it now);
    `http` lets you bring your own `httpx.AsyncClient` (its base URL is the server). Use it as an async context
    manager, or await `close()`.
    """

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        on_warning: WarningHandler | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.server = str(http.base_url).rstrip("/") if http is not None else default_server(server)
        self.token = default_token(token)
        self.on_warning = on_warning
        self._owns_http = http is None
        self.http = http if http is not None else httpx.AsyncClient(base_url=self.server, timeout=timeout)
        self.deployments = AsyncDeployments(self)
        self.claims = AsyncCapacityClaims(self)
        self.gateways = AsyncGateways(self)
        self.keys = AsyncKeys(self)

    async def send(self, call: Call) -> Any:
        """Send one request; its result (unwrapped from the envelope) or a TideError."""
        try:
            response = await self.http.request(call.method, call.url, **calls.request_kwargs(call, self.token))
        except httpx.HTTPError as exc:
            raise calls.connection_error(call, self.server, exc) from None
        return calls.read_answer(call, response, self.on_warning)

    async def usage(
        self, start: float | str | datetime | None = None, end: float | str | datetime | None = None
    ) -> UsageReport:
        """GPU-minutes per deployment and replica in [start, end) (epoch seconds, ISO-8601 or datetime;
        default the last 24 h), billed per started minute."""
        return cast(UsageReport, await self.send(calls.usage(start, end)))

    async def close(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


class AsyncDeployments:
    """`client.deployments`: create, get, list (all pages, or one), update (the whole spec), delete,
    wait, logs, parameters. A deployment is named by its id, or by its name when exactly one has it."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, spec: Mapping[str, Any], *, idempotency_key: str | None = None) -> Deployment:
        """Create from a spec (API.md: Deployment spec). With `idempotency_key`, a retried create returns
        the deployment the first one made instead of a second one."""
        return cast(Deployment, await self._client.send(calls.create_deployment(spec, idempotency_key)))

    async def get(self, deployment_id: str) -> Deployment:
        return cast(Deployment, await self._client.send(calls.get_deployment(deployment_id)))

    async def list_page(self, page_size: int | None = None, page_token: str | None = None) -> DeploymentPage:
        """One page in creation order; pass its `nextPageToken` back as `page_token` for the next."""
        return cast(DeploymentPage, await self._client.send(calls.deployments_page(page_size, page_token)))

    async def iter(self, page_size: int = LIST_PAGE_SIZE) -> AsyncIterator[Deployment]:
        """Every deployment, following pages as it goes."""
        token: str | None = None
        while True:
            page = await self.list_page(page_size, token)
            for item in page["deployments"]:
                yield item
            token = page.get("nextPageToken")
            if not token:
                return

    async def list(self) -> Deployments_:
        """Every deployment (all pages), in creation order."""
        return [item async for item in self.iter()]

    async def update(self, deployment_id: str, spec: Mapping[str, Any]) -> Deployment:
        """Replace the spec: omitted fields go back to their defaults (API.md: PATCH takes the whole spec)."""
        return cast(Deployment, await self._client.send(calls.update_deployment(deployment_id, spec)))

    async def delete(self, deployment_id: str) -> Deployment:
        """Start deleting (in-flight requests get a grace period); the answer is in STATUS_DELETING."""
        return cast(Deployment, await self._client.send(calls.delete_deployment(deployment_id)))

    async def parameters(self) -> dict[str, Any]:
        """What may be chosen: instance types, engines and their versions and config keys, zones."""
        return cast(dict[str, Any], await self._client.send(calls.deployment_parameters()))

    async def wait(
        self,
        deployment_id: str,
        state: str = "STATUS_READY",
        *,
        timeout: float = 300.0,
        interval: float = 0.5,
        on_progress: Callable[[Deployment], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> Deployment:
        """Poll until the deployment is in `state` (READY: a replica serves, or none is wanted) and
        return it. `on_progress` gets the deployment at the start and whenever its state, ready/desired
        count, a replica's phase or the first condition changes. TideError DEPLOYMENT_FAILED when it
        fails, DEADLINE_EXCEEDED after `timeout` seconds (`error.resource` is the last read)."""
        started = clock()
        last: tuple[Any, ...] | None = None
        while True:
            item = await self.get(deployment_id)
            if on_progress is not None and (key := calls.progress_key(item)) != last:
                last = key
                on_progress(item)
            verdict = calls.wait_verdict(item, state)
            if verdict == "reached":
                return item
            if verdict == "failed" or clock() - started > timeout:
                raise calls.wait_error(item, state, verdict, clock() - started)
            await sleep(interval)

    async def logs(self, deployment_id: str, tail: int = 100, after: Mapping[str, int] | None = None) -> DeploymentLogs:
        """The last `tail` lines of each replica's log; with `after` (the `offsets` of an earlier answer),
        only what each replica wrote since, and replicas not listed from their start."""
        return cast(DeploymentLogs, await self._client.send(calls.deployment_logs(deployment_id, tail, after)))

    async def follow_logs(
        self,
        deployment_id: str,
        tail: int = 100,
        interval: float = 1.0,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> AsyncIterator[DeploymentLogs]:
        """The last `tail` lines, then, every `interval` seconds, what the replicas wrote since (answers
        with new text only). Endless: stop iterating to stop."""
        answer = await self.logs(deployment_id, tail)
        yield answer
        offsets = dict(answer["offsets"])
        while True:
            await sleep(interval)
            answer = await self.logs(deployment_id, tail, after=offsets)
            offsets.update(answer["offsets"])
            if any(answer["replicas"].values()):
                yield answer


class AsyncCapacityClaims:
    """`client.claims`: reserve GPU instances (API.md: Capacity claims)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, spec: Mapping[str, Any]) -> CapacityClaim:
        """`{"id"?, "name"?, "resources": {instanceId, instanceCount, capacityType, zones}}`."""
        return cast(CapacityClaim, await self._client.send(calls.create_claim(spec)))

    async def get(self, claim_id: str) -> CapacityClaim:
        return cast(CapacityClaim, await self._client.send(calls.get_claim(claim_id)))

    async def list_page(self, page_size: int | None = None, page_token: str | None = None) -> CapacityClaimPage:
        return cast(CapacityClaimPage, await self._client.send(calls.claims_page(page_size, page_token)))

    async def iter(self, page_size: int = LIST_PAGE_SIZE) -> AsyncIterator[CapacityClaim]:
        token: str | None = None
        while True:
            page = await self.list_page(page_size, token)
            for item in page["capacityClaims"]:
                yield item
            token = page.get("nextPageToken")
            if not token:
                return

    async def list(self) -> Claims_:
        """Every claim (all pages), in creation order: the order they are served in."""
        return [item async for item in self.iter()]

    async def update(self, claim_id: str, spec: Mapping[str, Any]) -> CapacityClaim:
        """Replace the spec (omitted fields go back to their defaults)."""
        return cast(CapacityClaim, await self._client.send(calls.update_claim(claim_id, spec)))

    async def delete(self, claim_id: str) -> CapacityClaim:
        return cast(CapacityClaim, await self._client.send(calls.delete_claim(claim_id)))


class AsyncGateways:
    """`client.gateways`: the entry points clients call (API.md: Gateways)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, spec: Mapping[str, Any]) -> Gateway:
        return cast(Gateway, await self._client.send(calls.create_gateway(spec)))

    async def get(self, gateway_id: str) -> Gateway:
        return cast(Gateway, await self._client.send(calls.get_gateway(gateway_id)))

    async def list(self) -> Gateways_:
        return cast(Gateways_, await self._client.send(calls.list_gateways()))

    async def update(self, gateway_id: str, spec: Mapping[str, Any]) -> Gateway:
        return cast(Gateway, await self._client.send(calls.update_gateway(gateway_id, spec)))

    async def delete(self, gateway_id: str) -> Gateway:
        return cast(Gateway, await self._client.send(calls.delete_gateway(gateway_id)))

    async def parameters(self) -> dict[str, Any]:
        """The zones gateways may be limited to."""
        return cast(dict[str, Any], await self._client.send(calls.gateway_parameters()))


class AsyncKeys:
    """`client.keys`: API keys of apiKeyAuth gateways (a key opens its own gateway only)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self,
        gateway_id: str,
        name: str | None = None,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
    ) -> CreatedKey:
        """Issue a key; `result["key"]` is the key itself, in this answer only."""
        call = calls.create_key(gateway_id, name, requests_per_minute, tokens_per_minute)
        return cast(CreatedKey, await self._client.send(call))

    async def list(self, gateway_id: str) -> Keys_:
        return cast(Keys_, await self._client.send(calls.list_keys(gateway_id)))

    async def revoke(self, gateway_id: str, key_id: str) -> ApiKey:
        return cast(ApiKey, await self._client.send(calls.revoke_key(gateway_id, key_id)))
