"""`GET /usage` through the API: GPU-minutes per deployment and replica, billed per started minute."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.claims.conftest import BASE, ClaimsApi
from tide.timestamps import format_instant

USAGE = f"{BASE}/usage"
T0 = 1_764_000_000.0  # the fixture clock's start; a whole minute


def usage(api: ClaimsApi, **query: Any) -> dict[str, Any]:
    response = api.client.get(USAGE, params=query)
    assert response.status_code == 200, response.text
    return response.json()


def per_replica(report: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {r["replicaId"]: (r["minutes"], r["gpuMinutes"]) for d in report["deployments"] for r in d["replicas"]}


def per_deployment(report: dict[str, Any]) -> dict[str, int]:
    return {d["deploymentId"]: d["gpuMinutes"] for d in report["deployments"]}


def run(api: ClaimsApi, deployment: str, replica: str, gpus: int, start: float, stop: float | None) -> None:
    api.runs.run_started(deployment, replica, gpus, "h100-8x-us-east-04a-0", start)
    if stop is not None:
        api.runs.run_stopped(replica, stop)


@pytest.mark.parametrize(("seconds", "minutes"), [(0, 0), (1, 1), (59.5, 1), (60, 1), (61, 2), (3600, 60)])
def test_billed_per_started_minute(api: ClaimsApi, seconds: float, minutes: int) -> None:
    run(api, "chat", "chat-r0", 4, T0, T0 + seconds)
    api.clock.now = T0 + 7200
    report = usage(api, start=T0, end=T0 + 7200)
    if minutes == 0:
        assert report["deployments"] == []  # a 0-second run costs nothing
    else:
        assert per_replica(report) == {"chat-r0": (minutes, 4 * minutes)}
    assert report["totalGpuMinutes"] == 4 * minutes


def test_per_deployment_and_per_replica(api: ClaimsApi) -> None:
    run(api, "chat", "chat-r0", 2, T0, T0 + 61)  # 2 minutes x 2 GPUs
    run(api, "chat", "chat-r1", 2, T0 + 10, T0 + 20)  # 1 x 2
    run(api, "chat", "chat-r0", 2, T0 + 100, T0 + 130)  # the same replica again: 1 x 2, summed
    run(api, "embed", "embed-r0", 8, T0, T0 + 600)  # 10 x 8
    api.clock.now = T0 + 3600
    report = usage(api, start=T0, end=T0 + 3600)
    assert per_replica(report) == {"chat-r0": (3, 6), "chat-r1": (1, 2), "embed-r0": (10, 80)}
    assert per_deployment(report) == {"chat": 8, "embed": 80}
    assert [d["deploymentId"] for d in report["deployments"]] == ["chat", "embed"]
    assert report["totalGpuMinutes"] == 88
    assert (report["start"], report["end"]) == (T0, T0 + 3600)


def test_adjacent_windows_add_up_to_the_whole(api: ClaimsApi) -> None:
    run(api, "chat", "chat-r0", 1, T0 + 30, T0 + 30 + 125)  # 3 started minutes: at +30, +90, +150
    api.clock.now = T0 + 600
    whole = usage(api, start=T0, end=T0 + 600)["totalGpuMinutes"]
    cuts = [T0, T0 + 90, T0 + 91, T0 + 150.5, T0 + 600]
    parts = [usage(api, start=a, end=b)["totalGpuMinutes"] for a, b in itertools.pairwise(cuts)]
    assert whole == 3 and parts == [1, 1, 1, 0]


def test_an_open_run_is_billed_up_to_now_not_up_to_a_future_end(api: ClaimsApi) -> None:
    run(api, "chat", "chat-r0", 2, T0, None)
    api.clock.now = T0 + 61
    report = usage(api, start=T0, end=T0 + 86400)
    assert per_replica(report) == {"chat-r0": (2, 4)}
    api.clock.now = T0 + 300
    assert usage(api)["totalGpuMinutes"] == 10  # default window: the last 24 h up to now


def test_default_window_is_the_last_24_hours(api: ClaimsApi) -> None:
    run(api, "old", "old-r0", 1, T0, T0 + 60)
    run(api, "new", "new-r0", 1, T0 + 86400 + 60, T0 + 86400 + 120)
    api.clock.now = T0 + 86400 + 600
    report = usage(api)
    assert per_deployment(report) == {"new": 1}
    assert report["end"] == api.clock.now and report["start"] == api.clock.now - 86400
    # Only a start: up to now. Only an end: the 24 h before it.
    assert per_deployment(usage(api, start=T0)) == {"old": 1, "new": 1}
    assert per_deployment(usage(api, end=T0 + 3600)) == {"old": 1}


def test_iso_8601_and_epoch_seconds(api: ClaimsApi) -> None:
    run(api, "chat", "chat-r0", 1, T0, T0 + 120)
    api.clock.now = T0 + 3600
    iso = usage(api, start=format_instant(T0), end=format_instant(T0 + 60))
    assert iso["start"] == T0 and iso["end"] == T0 + 60 and iso["totalGpuMinutes"] == 1
    offset = usage(api, start="2025-11-24T17:00:00+01:00", end="2025-11-24T16:02:00")  # naive: UTC
    assert (offset["start"], offset["end"]) == (T0, T0 + 120)
    assert offset["totalGpuMinutes"] == 2
    assert usage(api, start=str(int(T0)), end=f"{T0 + 60}")["totalGpuMinutes"] == 1
    assert usage(api, start=f"{T0}", end=f"{T0 + 60.5}")["totalGpuMinutes"] == 2  # the 2nd minute began in it


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2025-13-01T00:00:00Z"}, "end"),
        ({"start": "nan"}, "start"),
        ({"start": T0 + 10, "end": T0}, "end"),
    ],
)
def test_bad_windows_are_400_naming_the_parameter(api: ClaimsApi, query: dict[str, Any], field: str) -> None:
    response = api.client.get(USAGE, params=query)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    assert response.json()["error"]["code"] == "INVALID_ARGUMENT"


def test_runs_left_open_by_a_crash_are_closed_at_the_restart(api: ClaimsApi) -> None:
    run(api, "chat", "chat-r0", 1, T0, None)
    assert api.runs.close_all_open(T0 + 90) == 1  # the restart
    api.clock.now = T0 + 3600
    assert per_replica(usage(api, start=T0, end=T0 + 3600)) == {"chat-r0": (2, 2)}
