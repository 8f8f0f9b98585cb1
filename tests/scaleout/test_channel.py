"""The pure half of the controller <-> gateway channel: JSON round trips and summed load."""

from __future__ import annotations

from tide.control.channel import LoadAggregator
from tide.gateway.routes import DeploymentLoad, DeploymentRoute, GatewayRoutes, KeyGrant, ReplicaEndpoint, RouteTable
from tide.gateway.usage import Usage
from tide.gateway.wire import load_from_json, load_to_json, route_table_from_json, route_table_to_json


def test_route_table_round_trips_through_json() -> None:
    table = RouteTable(
        {
            "tiny": (
                DeploymentRoute(
                    "a",
                    "tiny",
                    80,
                    (ReplicaEndpoint("a-1", "http://127.0.0.1:1/v1", 4), ReplicaEndpoint("a-2", "http://h:2/v1")),
                    max_queue=7,
                    max_queue_wait_s=2.5,
                ),
                DeploymentRoute("b", "tiny", 20, ()),
            )
        },
        gateways=(
            GatewayRoutes("default", ("default.localhost",), "", {"tiny": ("a", "b")}),
            GatewayRoutes("team", ("team.localhost", "t.example.com"), "x-model", {"tiny": ("b",)}),
        ),
    )
    assert route_table_from_json(route_table_to_json(table)) == table
    older_leader = {"routes": route_table_to_json(table)["routes"]}  # no gateways: one implicit gateway
    assert route_table_from_json(older_leader) == RouteTable(table.routes)
    assert route_table_from_json(route_table_to_json(RouteTable({}))) == RouteTable({})


def test_load_round_trips_through_json() -> None:
    loads = {"a": DeploymentLoad(3, 2, {"a-1": 2, "a-2": 1}, 40, {"queue_full": 2, "upstream_timeout": 1})}
    assert load_from_json(load_to_json(loads)) == loads
    corrected = {"a": DeploymentLoad(1, 0, {"a-1": 1}, 9, prefix_corrections={"a-1": 3})}
    assert load_from_json(load_to_json(corrected)) == corrected


def test_load_is_summed_over_live_gateways() -> None:
    agg = LoadAggregator(live_s=3.0)
    agg.report("g1", {"a": DeploymentLoad(2, 1, {"a-1": 2}, 10, {"queue_full": 1})}, now=100.0)
    g2 = {"a": DeploymentLoad(3, 0, {"a-1": 1, "a-2": 2}, 5, {"queue_full": 2, "upstream_timeout": 1})}
    agg.report("g2", {**g2, "b": DeploymentLoad(1, 0, {}, 1)}, now=101.0)
    snap = agg.snapshot(now=101.5)
    assert snap["a"] == DeploymentLoad(5, 1, {"a-1": 3, "a-2": 2}, 15, {"queue_full": 3, "upstream_timeout": 1})
    assert snap["b"].in_flight == 1
    assert agg.in_flight("a-1", now=101.5) == 3
    assert agg.gateways(now=101.5) == ["g1", "g2"]


def test_a_silent_gateway_stops_counting_after_three_seconds() -> None:
    agg = LoadAggregator(live_s=3.0)
    agg.report("g1", {"a": DeploymentLoad(2, 0, {"a-1": 2}, 1)}, now=100.0)
    agg.report("g2", {"a": DeploymentLoad(1, 0, {"a-1": 1}, 1)}, now=102.0)
    assert agg.snapshot(now=102.9)["a"].in_flight == 3
    assert agg.snapshot(now=103.0)["a"].in_flight == 1
    assert agg.in_flight("a-1", now=103.0) == 1
    assert agg.snapshot(now=105.5) == {}
    agg.snapshot(now=200.0)
    assert agg.reports == {}  # long-dead gateways are forgotten


def test_a_drain_waits_for_gateways_that_have_not_seen_the_new_table() -> None:
    agg = LoadAggregator()
    agg.report("g1", {"a": DeploymentLoad(0, 0, {"a-1": 0}, 1)}, now=10.0, routes_version=4)
    agg.report("g2", {"a": DeploymentLoad(0, 0, {"a-1": 0}, 1)}, now=10.0, routes_version=5)
    assert agg.in_flight("a-1", now=10.5, routes_version=5) == 1  # g1 has not confirmed version 5
    agg.report("g1", {"a": DeploymentLoad(0, 0, {}, 1)}, now=10.6, routes_version=5)
    assert agg.in_flight("a-1", now=10.7, routes_version=5) == 0


def test_request_and_error_totals_never_go_back_when_a_gateway_goes_away() -> None:
    agg = LoadAggregator(live_s=3.0)
    agg.report("g1", {"a": DeploymentLoad(0, 0, {}, 10, {"queue_full": 2})}, now=100.0)
    agg.report("g2", {"a": DeploymentLoad(0, 0, {}, 5)}, now=100.0)
    agg.report("g1", {"a": DeploymentLoad(0, 0, {}, 12, {"queue_full": 3})}, now=101.0)
    assert (agg.snapshot(now=101.5)["a"].requests_total, agg.snapshot(now=101.5)["a"].errors) == (17, {"queue_full": 3})
    # g1 goes silent: its in-flight count leaves the sum, its requests stay counted.
    agg.report("g2", {"a": DeploymentLoad(1, 0, {"a-1": 1}, 6, {"upstream_timeout": 1})}, now=104.5)
    snap = agg.snapshot(now=105.0)["a"]
    assert snap.in_flight == 1 and snap.requests_total == 18
    assert snap.errors == {"queue_full": 3, "upstream_timeout": 1}
    # A new gateway (a restarted one has a new id) adds everything it reports.
    agg.report("g3", {"a": DeploymentLoad(0, 0, {}, 4)}, now=105.0)
    assert agg.snapshot(now=105.5)["a"].requests_total == 22


def test_prefix_index_corrections_are_summed_per_replica_and_never_go_back() -> None:
    agg = LoadAggregator(live_s=3.0)
    agg.report("g1", {"a": DeploymentLoad(0, 0, {}, 10, prefix_corrections={"a-1": 2})}, now=100.0)
    agg.report("g2", {"a": DeploymentLoad(0, 0, {}, 5, prefix_corrections={"a-1": 1, "a-2": 4})}, now=100.0)
    agg.report("g1", {"a": DeploymentLoad(0, 0, {}, 12, prefix_corrections={"a-1": 3})}, now=101.0)
    assert agg.snapshot(now=101.5)["a"].prefix_corrections == {"a-1": 4, "a-2": 4}
    agg.report("g2", {"a": DeploymentLoad(0, 0, {}, 6)}, now=104.5)  # g1 went silent: its count stays
    assert agg.snapshot(now=105.0)["a"].prefix_corrections == {"a-1": 4, "a-2": 4}


def test_time_averaged_load_is_carried_and_summed_over_gateways() -> None:
    one = DeploymentLoad(1, 0, {"a-1": 1}, 3, load_average=0.25, queued_average=0.0)
    assert load_from_json(load_to_json({"a": one})) == {"a": one}
    agg = LoadAggregator(live_s=3.0)
    agg.report("g1", {"a": one}, now=100.0)
    agg.report("g2", {"a": DeploymentLoad(2, 1, {"a-1": 2}, 3)}, now=100.0)  # an older gateway: no averages
    snap = agg.snapshot(now=100.5)["a"]
    assert (snap.average, snap.queued_avg) == (3.25, 1.0)


def test_gateway_keys_and_usage_round_trip_and_older_peers_still_see_the_keys() -> None:
    keys = {"h1": KeyGrant("key-1", requests_per_minute=5, tokens_per_minute=900), "h2": KeyGrant("management-token")}
    table = RouteTable({}, gateways=(GatewayRoutes("team", ("team.localhost",), "", {}, keys),))
    wire = route_table_to_json(table)
    assert route_table_from_json(wire) == table
    # A gateway from before key ids reads keyHashes/keyLimits: it must keep refusing everyone else.
    assert wire["gateways"][0]["keyHashes"] == ["h1", "h2"] and wire["gateways"][0]["keyLimits"] == {"h1": 5}
    gateway = {k: v for k, v in wire["gateways"][0].items() if k != "keys"}
    older = {"routes": {}, "gateways": [gateway]}
    seen = route_table_from_json(older).gateways[0].keys
    assert seen is not None and set(seen) == {"h1", "h2"} and seen["h1"].requests_per_minute == 5
    loads = {
        "a": DeploymentLoad(
            0, 0, {}, 3, key_usage={("team", "key-1"): Usage(3, 30, 6)}, gateway_usage={"team": Usage(3, 30, 6)}
        )
    }
    assert load_from_json(load_to_json(loads)) == loads


def test_usage_is_summed_over_gateways_and_never_goes_back() -> None:
    agg = LoadAggregator(live_s=3.0)

    def load(requests: int, prompt: int) -> dict[str, DeploymentLoad]:
        usage = Usage(requests, prompt, 2 * requests)
        return {"a": DeploymentLoad(0, 0, {}, requests, key_usage={("t", "k"): usage}, gateway_usage={"t": usage})}

    agg.report("g1", load(4, 40), now=100.0)
    agg.report("g2", load(1, 10), now=100.0)
    agg.report("g1", load(6, 60), now=101.0)
    snap = agg.snapshot(now=101.5)["a"]
    assert snap.key_usage[("t", "k")] == Usage(7, 70, 14) == snap.gateway_usage["t"]
    agg.report("g2", load(2, 20), now=110.0)  # g1 went silent; what it counted stays
    assert agg.snapshot(now=110.5)["a"].key_usage[("t", "k")] == Usage(8, 80, 16)
