"""/v1/models at thousands of model names: a route push that adds a name encodes no listing; the body is
encoded when a client asks for it, once per table (issue 15: a seed of creates pushes once per create, and
re-encoding every name each time was O(N) per create)."""

from __future__ import annotations

import httpx
import pytest

import tide.gateway.gateway
from tests.gateway.helpers import deployment, run, running_gateway, table, url
from tide.gateway.routes import GatewayRoutes, RouteTable

pytestmark = pytest.mark.fast

NAMES = 2000


def counting_cards(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The model names the gateway writes a /v1/models card for, call by call."""
    written: list[str] = []
    original = tide.gateway.gateway._model_card

    def card(name: str) -> dict[str, object]:
        written.append(name)
        return original(name)

    monkeypatch.setattr(tide.gateway.gateway, "_model_card", card)
    return written


def test_pushes_that_add_names_encode_no_listing_until_one_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        routes = [deployment(f"d{i:04d}", [], model=f"m{i:04d}") for i in range(NAMES)]
        async with running_gateway(table(*routes)) as gw, httpx.AsyncClient() as http:
            cards = counting_cards(monkeypatch)
            for i in range(NAMES, NAMES + 50):  # 50 creates, one push each
                routes.append(deployment(f"d{i:04d}", [], model=f"m{i:04d}"))
                gw.set_routes(table(*routes))
            assert cards == []

            listed = (await http.get(url(gw, "/v1/models"))).json()
            assert [card["id"] for card in listed["data"]] == [f"m{i:04d}" for i in range(NAMES + 50)]
            assert len(cards) == NAMES + 50  # each name once
            assert (await http.get(url(gw, "/v1/models"))).json() == listed
            assert len(cards) == NAMES + 50  # the same table: the body is kept

            gw.set_routes(table(*routes[1:]))  # a deletion: the next listing leaves it out
            listed = (await http.get(url(gw, "/v1/models"))).json()
            assert [card["id"] for card in listed["data"]] == [f"m{i:04d}" for i in range(1, NAMES + 50)]

    run(scenario())


def test_a_gateway_resources_listing_follows_its_own_names(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        routes = [deployment(f"d{i:04d}", [], model=f"m{i:04d}") for i in range(NAMES)]
        everything = table(*routes).routes
        team = {"Host": "team.example"}

        def with_team(names: list[str]) -> RouteTable:
            ids = {name: tuple(r.deployment_id for r in everything[name]) for name in names}
            return RouteTable(everything, (GatewayRoutes("team", ("team.example",), models=ids),))

        async with running_gateway(with_team(["m0001"])) as gw, httpx.AsyncClient() as http:
            cards = counting_cards(monkeypatch)
            names = ["m0001"]
            for i in range(2, 40):
                names.append(f"m{i:04d}")
                gw.set_routes(with_team(names))
            assert cards == []
            listed = (await http.get(url(gw, "/v1/models"), headers=team)).json()
            assert [card["id"] for card in listed["data"]] == names
            assert cards == names

    run(scenario())
