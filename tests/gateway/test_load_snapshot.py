"""The per-second load snapshot costs what changed, not what exists: at 2,000 deployments at zero, a second
with one request recomputes one answer (issue 15: the idle control plane at 10,000 deployments)."""

from __future__ import annotations

import time
from types import ModuleType

import httpx
import pytest

import tide.gateway.balancing
import tide.gateway.gateway
from tests.gateway.fake_upstream import FakeUpstream
from tests.gateway.helpers import CHAT, deployment, run, running_gateway, table, upstreams, url
from tide.gateway import Gateway
from tide.gateway.balancing import DeploymentState
from tide.gateway.routes import DeploymentLoad, RouteTable

pytestmark = pytest.mark.fast

AT_ZERO = 2000


class AheadClock(ModuleType):
    """`time` for the gateway's modules, with a monotonic clock the test moves ahead (the load meters'
    one-second window passes without waiting for it)."""

    def __init__(self) -> None:
        super().__init__("time")
        self.ahead = 0.0

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> AheadClock:
    shifted = AheadClock()
    monkeypatch.setattr(tide.gateway.gateway, "time", shifted)
    monkeypatch.setattr(tide.gateway.balancing, "time", shifted)
    return shifted


def counting(monkeypatch: pytest.MonkeyPatch, gw: Gateway) -> list[str]:
    """The ids whose answer the gateway computes, call by call."""
    computed: list[str] = []
    original = gw._load

    def load(deployment: DeploymentState, now: float) -> DeploymentLoad:
        computed.append(deployment.deployment_id)
        return original(deployment, now)

    monkeypatch.setattr(gw, "_load", load)
    return computed


def test_a_second_with_one_request_recomputes_one_deployment(
    monkeypatch: pytest.MonkeyPatch, clock: AheadClock
) -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("hot-1")) as (hot,):
            at_zero = [deployment(f"d{i:04d}", [], model=f"m{i:04d}") for i in range(AT_ZERO)]
            routes = table(deployment("hot", [hot]), *at_zero)
            async with running_gateway(routes) as gw, httpx.AsyncClient() as http:
                computed = counting(monkeypatch, gw)
                clock.ahead += 2
                first = gw.load_snapshot()
                assert len(first) == AT_ZERO + 1 and len(computed) == AT_ZERO + 1  # every one, once
                resting = first["d0007"]
                computed.clear()

                clock.ahead += 1
                assert len(gw.load_snapshot()) == AT_ZERO + 1
                assert computed == []  # nothing happened: nothing recomputed, every answer still there

                assert (await http.post(url(gw), json=CHAT)).status_code == 200
                clock.ahead += 2
                snapshot = gw.load_snapshot()
                assert computed == ["hot"]
                assert snapshot["hot"].requests_total == 1
                assert snapshot["d0007"] is resting
                computed.clear()

                # d0000 deleted; the others' routes are the same objects, as the controller pushes them
                gw.set_routes(RouteTable({name: r for name, r in routes.routes.items() if name != "m0000"}))
                clock.ahead += 1
                snapshot = gw.load_snapshot()
                assert "d0000" not in snapshot and len(snapshot) == AT_ZERO
                assert computed == []  # no other deployment's route changed

    run(scenario())


def test_traffic_in_the_last_second_is_recomputed_until_it_has_passed(
    monkeypatch: pytest.MonkeyPatch, clock: AheadClock
) -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("hot-1")) as (hot,):
            at_zero = [deployment(f"d{i:04d}", [], model=f"m{i:04d}") for i in range(10)]
            async with running_gateway(table(deployment("hot", [hot]), *at_zero)) as gw, httpx.AsyncClient() as http:
                clock.ahead += 2
                gw.load_snapshot()
                computed = counting(monkeypatch, gw)
                assert (await http.post(url(gw), json=CHAT)).status_code == 200
                # In the second after the request its average still moves with no new event: it is
                # recomputed at every snapshot until that second has passed, then it rests.
                assert gw.load_snapshot()["hot"].average > 0
                clock.ahead += 2
                assert gw.load_snapshot()["hot"].average == 0
                assert computed == ["hot", "hot"]
                clock.ahead += 1
                gw.load_snapshot()
                assert computed == ["hot", "hot"]

    run(scenario())


def test_a_deployment_leaves_the_recomputed_set_with_an_average_of_exactly_zero(
    monkeypatch: pytest.MonkeyPatch, clock: AheadClock
) -> None:
    """The last answer a deployment rests with is the one the autoscaler reads until its next request: it
    must be 0, not the sliver of last second's load the window still overlapped (a replica kept for good)."""

    async def scenario() -> None:
        async with (
            upstreams(FakeUpstream("hot-1")) as (hot,),
            running_gateway(table(deployment("hot", [hot]))) as gw,
            httpx.AsyncClient() as http,
        ):
            clock.ahead += 2
            gw.load_snapshot()
            computed = counting(monkeypatch, gw)
            assert (await http.post(url(gw), json=CHAT)).status_code == 200
            # Snapshots every 30 ms of the shifted clock, as a busy controller might take them, until
            # the deployment rests (computed no more): the step that turns it quiet is among them.
            answers: list[float] = []
            for _ in range(200):
                before = len(computed)
                answers.append(gw.load_snapshot()["hot"].average)
                if len(computed) == before and len(answers) > 1:
                    break
                clock.ahead += 0.03
            else:
                raise AssertionError(f"still recomputed after 6 s of quiet: {answers[-5:]}")
            assert answers[0] > 0
            assert answers[-1] == 0.0

    run(scenario())
