"""The `tide` autoscaling policy live, through a real tide up: a burst, an idle gap and a return, with each
decision's reason in the status naming the mechanism that decided."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.e2e.conftest import TideProcess, tiny_spec
from tests.e2e.load import complete, load_until, wait_until_gone


def decisions(status: dict[str, Any]) -> list[dict[str, Any]]:
    seen = list(status.get("scalingHistory", []))
    if "lastScalingDecision" in status:
        seen.append(status["lastScalingDecision"])
    return seen


def test_burst_idle_gap_and_return_under_the_tide_policy(clean_tide: TideProcess) -> None:
    clean_tide.apply(
        tiny_spec(
            "tiny-tide",
            autoscaling={
                "profile": "tide",
                "min": 0,
                "max": 3,
                "concurrency": 1,
                "initialScale": 0,
                "scaleDownDelay": "6s",  # the burst hold
                "coldRequestCost": 4,  # a cold wait is worth little here: the idle gap ends in seconds
                # Once 20 requests are counted, a cold wait is priced at this x what a request needs
                # (its service and a cold start per idle gap: a few replica-s here), as little.
                "coldRequestWeight": 1,
                # The policy's own stop and return, not parking (the `tide` profile parks by default;
                # tests/e2e/test_parking.py covers that).
                "parking": {"enabled": False},
            },
        )
    )
    clean_tide.wait_for("tiny-tide", "STATUS_READY", timeout=30)
    seen: dict[str, str] = {}  # mode -> a reason it gave
    reasons: set[str] = set()

    def watch() -> dict[str, Any]:
        status = clean_tide.status("tiny-tide")
        for decision in decisions(status):
            seen.setdefault(decision["mode"], decision["reason"])
            reasons.add(decision["reason"])
        return status

    # A burst: four clients at concurrency 1 need more than one replica (load until a second is ready;
    # replicas start in seconds, a loaded 2-core machine is slower).
    burst = load_until(clean_tide, "tiny-tide", 4, lambda: watch()["readyReplicas"] >= 2, timeout_s=180)
    assert burst.reached, json.dumps(clean_tide.status("tiny-tide"), indent=1)
    assert burst.failures == []
    # More requests, so that the policy has counted enough (the gateway's counter, fed each second) to
    # price a cold wait by what this deployment's requests need.
    with httpx.Client(timeout=120) as client:
        assert [complete(clean_tide, client, "tiny-tide") for _ in range(25)] == [200] * 25

    # The idle gap: the last replica is kept alive a while, then stopped.
    status = wait_until_gone(watch)
    assert status["desiredReplicas"] == 0

    # The return: the next request wakes it and succeeds.
    with httpx.Client(timeout=120) as client:
        assert complete(clean_tide, client, "tiny-tide") == 200

    assert "queue" in seen or "burst-hold" in seen, seen
    assert "keep-alive" in seen and seen["keep-alive"].startswith("keep-alive: idle"), seen
    assert "stop" in seen and seen["stop"].startswith("stop: idle"), seen
    priced = [r for r in reasons if "replica-s this deployment needs per request" in r]
    assert priced and all(r.startswith(("keep-alive: idle", "stop: idle")) for r in priced), reasons
    for mode, reason in seen.items():
        if mode in ("queue", "ramp", "keep-alive", "stop", "pre-warm"):
            assert reason.startswith(f"{mode}:"), (mode, reason)
    # The return was decided by the policy itself at the wake: sized for the request that arrived.
    history = decisions(clean_tide.status("tiny-tide"))  # newest first, then the last decision
    stopped = max(d["time"] for d in history if d["mode"] == "stop")
    # A request waiting at zero is sized by the queue mechanism, or by the ramp look-ahead when the machine
    # is slow enough that the load is seen rising before the queue decision: either names itself.
    back = [d for d in history if d["time"] > stopped and d["mode"] in ("queue", "ramp") and d["desired"] >= 1]
    assert back and back[0]["reason"].startswith(f"{back[0]['mode']}: "), history
