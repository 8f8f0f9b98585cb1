"""The scheduler's rules, one test each."""

from __future__ import annotations

import random

from tests.scheduling.fleet import ZONE_A, ZONE_B, fleet, on_demand, reserved
from tide.scheduling import DeploymentRequest, Placement, schedule


def want(
    deployment_id: str,
    replicas: int,
    gpus: int = 1,
    *,
    type_id: str = "H100",
    classes: tuple[str, ...] = ("reserved", "on_demand"),
    zones: tuple[str, ...] = (),
    priority: int = 0,
    minimum: int = 0,
) -> DeploymentRequest:
    return DeploymentRequest(deployment_id, replicas, type_id, gpus, classes, zones, priority, minimum)


def instances_of(result_placements: tuple[Placement, ...], deployment_id: str) -> list[str]:
    return sorted(p.instance_id for p in result_placements if p.deployment_id == deployment_id)


def test_a_replica_sits_on_one_instance_with_enough_free_gpus() -> None:
    inventory = fleet(on_demand("a"), on_demand("b"))
    busy = [Placement("other", "o0", "a", 6), Placement("other", "o1", "b", 6)]
    result = schedule(inventory, busy, [want("other", 2, 6), want("big", 1, 4)], now=0)
    # 2 + 2 GPUs are free in total, but never 4 on one instance: the replica must not be split.
    assert not result.started
    assert result.pending_for("big") is not None


def test_best_fit_packs_partly_used_instances() -> None:
    inventory = fleet(on_demand("a"), on_demand("b"))
    result = schedule(inventory, [Placement("x", "x0", "b", 6)], [want("x", 1, 6), want("d", 1, 2)], now=0)
    assert instances_of(result.started, "d") == ["b"]


def test_reserved_first_when_both_classes_are_allowed() -> None:
    inventory = fleet(on_demand("a-on-demand"), reserved("z-reserved"))
    result = schedule(inventory, [], [want("d", 2, 8)], now=0)
    # Instance ids sort on-demand first, so only the class rule puts the first replica on reserved.
    assert [(p.replica_id, p.instance_id) for p in result.started] == [("d-r0", "z-reserved"), ("d-r1", "a-on-demand")]
    first = schedule(inventory, [], [want("d", 1, 8)], now=0)
    assert instances_of(first.started, "d") == ["z-reserved"]


def test_capacity_classes_restrict_where_replicas_go() -> None:
    inventory = fleet(on_demand("od"), reserved("rs"))
    only_on_demand = schedule(inventory, [], [want("d", 2, 8, classes=("on_demand",))], now=0)
    assert instances_of(only_on_demand.placements, "d") == ["od"]
    only_reserved = schedule(inventory, [], [want("d", 2, 8, classes=("CAPACITY_CLASS_RESERVED",))], now=0)
    assert instances_of(only_reserved.placements, "d") == ["rs"]
    assert only_reserved.pending_for("d").message == (  # type: ignore[union-attr]
        f"no free reserved H100 with 8 GPUs in zones {ZONE_A}; 1 pending"
    )


def test_reserved_instances_serve_only_once_claimed() -> None:
    inventory = fleet(reserved("rs", claim=None))
    result = schedule(inventory, [], [want("d", 1, 1, classes=("reserved",))], now=0)
    assert not result.started
    assert result.pending_for("d").message == (  # type: ignore[union-attr]
        f"no free reserved H100 with 1 GPUs in zones {ZONE_A} "
        "(1 matching reserved instance held by no capacity claim); 1 pending"
    )


def test_zones_are_tried_in_order_of_preference() -> None:
    inventory = fleet(on_demand("a", ZONE_A), on_demand("b", ZONE_B))
    prefers_b = schedule(inventory, [], [want("d", 1, 8, zones=(ZONE_B, ZONE_A))], now=0)
    assert instances_of(prefers_b.started, "d") == ["b"]
    prefers_a = schedule(inventory, [], [want("d", 2, 8, zones=(ZONE_A, ZONE_B))], now=0)
    assert [p.instance_id for p in prefers_a.started] == ["a", "b"]
    only_b = schedule(inventory, [], [want("d", 2, 8, zones=(ZONE_B,))], now=0)
    assert instances_of(only_b.placements, "d") == ["b"]


def test_higher_priority_scales_first_under_contention() -> None:
    inventory = fleet(on_demand("a"))
    result = schedule(inventory, [], [want("low", 4, 2, priority=1), want("high", 3, 2, priority=900)], now=0)
    assert len(instances_of(result.started, "high")) == 3
    assert len(instances_of(result.started, "low")) == 1
    assert result.pending_for("low").count == 3  # type: ignore[union-attr]


def test_equal_priorities_take_turns() -> None:
    inventory = fleet(on_demand("a"))
    result = schedule(inventory, [], [want("b", 8), want("a", 8)], now=0)
    assert len(instances_of(result.started, "a")) == 4 and len(instances_of(result.started, "b")) == 4


def test_every_minimum_is_placed_before_replicas_above_min() -> None:
    inventory = fleet(on_demand("a"))
    result = schedule(inventory, [], [want("high", 8, priority=900), want("low", 3, priority=1, minimum=2)], now=0)
    assert len(instances_of(result.started, "low")) == 2
    assert len(instances_of(result.started, "high")) == 6


def test_higher_priority_preempts_only_above_min() -> None:
    inventory = fleet(on_demand("a"))
    running = [Placement("low", f"low-{n}", "a", 2, since=n) for n in range(4)]
    result = schedule(inventory, running, [want("low", 4, 2, minimum=2), want("high", 4, 2, priority=500)], now=10)
    assert sorted(p.placement.replica_id for p in result.preempted) == ["low-2", "low-3"]  # newest go
    assert {p.by_deployment_id for p in result.preempted} == {"high"}
    assert len(instances_of(result.placements, "high")) == 2
    assert instances_of(result.placements, "low") == ["a", "a"]
    assert result.pending_for("high").count == 2  # type: ignore[union-attr]


def test_equal_priority_never_preempts() -> None:
    inventory = fleet(on_demand("a"))
    running = [Placement("first", "f0", "a", 8)]
    result = schedule(inventory, running, [want("first", 1, 8), want("second", 1, 8)], now=1)
    assert not result.preempted and result.pending_for("second") is not None


def test_preemption_takes_the_fewest_lowest_priority_replicas() -> None:
    inventory = fleet(on_demand("a"), on_demand("b"), on_demand("c"))
    running = [
        Placement("mid", "m0", "a", 8),  # priority 50: one victim, but more important
        Placement("low", "l0", "b", 4),  # priority 10: two victims needed here
        Placement("low", "l1", "b", 4),
        Placement("low", "l2", "c", 2),  # priority 10, one 2-GPU replica + 6 min-protected GPUs
        Placement("pinned", "p0", "c", 6),
    ]
    requests = [
        want("mid", 1, 8, priority=50),
        want("low", 3, 4, priority=10),
        want("pinned", 1, 6, priority=5, minimum=1),
        want("urgent", 1, 8, priority=900),
    ]
    result = schedule(inventory, running, requests, now=5)
    # The lowest priority goes before a more important replica, even when that takes two victims.
    assert [p.placement.replica_id for p in result.preempted] == ["l0", "l1"]
    assert instances_of(result.started, "urgent") == ["b"]


def test_nothing_fits_says_exactly_what_is_missing() -> None:
    inventory = fleet(on_demand("a", ZONE_A), on_demand("b", ZONE_B))
    busy = [Placement("x", "x0", "a", 7), Placement("x", "x1", "b", 7)]
    result = schedule(inventory, busy, [want("x", 2, 7), want("d", 3, 2, zones=(ZONE_A, ZONE_B))], now=0)
    assert result.pending_for("d").message == (  # type: ignore[union-attr]
        "no free H100 with 2 GPUs in zones us-east-04a, us-east-04b; 3 pending"
    )


def test_impossible_requests_say_why() -> None:
    inventory = fleet(on_demand("a", ZONE_A))
    result = schedule(
        inventory,
        [],
        [want("unknown", 1, type_id="B200"), want("huge", 1, 16), want("elsewhere", 1, zones=(ZONE_B,))],
        now=0,
    )
    assert result.pending_for("unknown").message.startswith("unknown instance type 'B200'")  # type: ignore[union-attr]
    assert result.pending_for("huge").message == (  # type: ignore[union-attr]
        "instance type H100 has 8 GPUs per instance; a replica needs 16; 1 pending"
    )
    assert result.pending_for("elsewhere").message == (  # type: ignore[union-attr]
        f"instance type H100 is not offered in zones {ZONE_B} (offered in: {ZONE_A}); 1 pending"
    )


def test_joining_instances_run_nothing_and_show_as_pending() -> None:
    inventory = fleet(on_demand("a", joining=True))
    result = schedule(inventory, [], [want("d", 1)], now=0)
    assert not result.started
    assert result.pending_for("d").message == (  # type: ignore[union-attr]
        f"no free H100 with 1 GPUs in zones {ZONE_A} (1 matching instance still joining); 1 pending"
    )


def test_request_types_are_case_insensitive() -> None:
    inventory = fleet(on_demand("a", type_id="h100"))
    result = schedule(inventory, [], [want("d", 1, type_id="H100"), want("e", 1, type_id="h100")], now=0)
    assert len(result.started) == 2


def test_surplus_replicas_are_the_newest() -> None:
    inventory = fleet(on_demand("a"))
    running = [Placement("d", f"d-{n}", "a", 1, since=n) for n in range(3)]
    result = schedule(inventory, running, [want("d", 1)], now=9)
    assert sorted(p.replica_id for p in result.surplus) == ["d-1", "d-2"]
    assert [p.replica_id for p in result.placements] == ["d-0"]


def test_placements_on_vanished_instances_are_lost_and_replaced() -> None:
    inventory = fleet(on_demand("b"))
    result = schedule(inventory, [Placement("d", "d-r0", "gone", 8)], [want("d", 1, 8)], now=3)
    assert [p.instance_id for p in result.lost] == ["gone"]
    assert [(p.replica_id, p.instance_id, p.since) for p in result.started] == [("d-r1", "b", 3)]


def test_unknown_deployments_keep_their_gpus() -> None:
    inventory = fleet(on_demand("a"))
    result = schedule(inventory, [Placement("ghost", "g0", "a", 8)], [want("d", 1, 8, priority=1000)], now=0)
    assert not result.preempted and result.placements == (Placement("ghost", "g0", "a", 8),)


def test_decisions_are_deterministic_whatever_the_input_order() -> None:
    inventory = fleet(*(on_demand(f"i{n}", ZONE_A if n % 2 else ZONE_B) for n in range(6)))
    requests = [want(f"d{n}", 1 + n % 3, 1 + n % 4, priority=n % 3 * 100, minimum=n % 2) for n in range(8)]
    running = [Placement("d1", "d1-x", "i0", 2), Placement("d4", "d4-x", "i3", 1)]
    expected = schedule(inventory, running, requests, now=1)
    shuffler = random.Random(7)
    for _ in range(5):
        shuffled_requests, shuffled_running = list(requests), list(running)
        shuffler.shuffle(shuffled_requests)
        shuffler.shuffle(shuffled_running)
        assert schedule(inventory, shuffled_running, shuffled_requests, now=1) == expected


def test_among_equal_priorities_the_fewest_replicas_go() -> None:
    inventory = fleet(on_demand("a"), on_demand("b"))
    running = [Placement("low", f"a{n}", "a", 2) for n in range(4)] + [
        Placement("low", "b0", "b", 4),
        Placement("low", "b1", "b", 4),
    ]
    result = schedule(inventory, running, [want("low", 6, 2), want("high", 1, 4, priority=9)], now=1)
    assert [p.placement.replica_id for p in result.preempted] == ["b0"]
