"""The synchronous SDK client against a real management API: every resource, paging, errors with status,
code, message and field, warnings, wait, logs."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from tests.sdk.conftest import spec
from tests.support.api_server import TOKEN, ZONE, ApiServer
from tide.sdk import Client, Deployment, TideError
from tide.sdk.calls import progress_key
from tide.sdk.errors import CONNECTION_FAILED, DEADLINE_EXCEEDED, DEPLOYMENT_FAILED, UNREACHABLE

SDK = Path(__file__).parents[2] / "tide" / "sdk"
CLAIM = {"resources": {"instanceId": "h100-8x", "instanceCount": 1, "zones": [ZONE]}}


def test_the_sdk_imports_nothing_of_the_server() -> None:
    imported = set()
    for path in SDK.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tide"):
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names if a.name.startswith("tide"))
    assert imported, "the walk found the SDK's imports"
    assert {m for m in imported if not m.startswith("tide.sdk")} == {"tide.config"}


def test_create_get_update_delete_a_deployment(api: ApiServer) -> None:
    with Client(api.url, TOKEN) as tide:
        created = tide.deployments.create(spec(autoscaling={"min": 0, "max": 2}))
        assert created["spec"]["id"] == "tiny-chat" and created["status"]["status"] == "STATUS_CREATING"
        assert tide.deployments.get("tiny-chat")["spec"]["autoscaling"]["max"] == 2
        updated = tide.deployments.update("tiny-chat", spec(autoscaling={"min": 0, "max": 3}))
        assert updated["spec"]["autoscaling"]["max"] == 3
        assert updated["status"]["generation"] == created["status"]["generation"] + 1
        assert tide.deployments.delete("tiny-chat")["status"]["status"] == "STATUS_DELETING"
        assert "instanceTypes" in tide.deployments.parameters()["resourceParameters"]


def test_list_follows_pages_in_creation_order(api: ApiServer) -> None:
    names = [f"model-{i}" for i in range(5)]
    with Client(api.url, TOKEN) as tide:
        for name in names:
            tide.deployments.create(spec(name))
        first = tide.deployments.list_page(page_size=2)
        assert [d["spec"]["id"] for d in first["deployments"]] == names[:2] and first.get("nextPageToken")
        second = tide.deployments.list_page(page_size=2, page_token=first["nextPageToken"])
        assert [d["spec"]["id"] for d in second["deployments"]] == names[2:4]
        assert [d["spec"]["id"] for d in tide.deployments.iter(page_size=2)] == names
        assert [d["spec"]["id"] for d in tide.deployments.list()] == names


def test_an_error_carries_status_code_message_and_field(api: ApiServer) -> None:
    with Client(api.url, TOKEN) as tide:
        with pytest.raises(TideError) as invalid:
            tide.deployments.create(spec(autoscaling={"min": 3, "max": 2}))
        assert (invalid.value.status, invalid.value.code, invalid.value.field) == (
            400,
            "INVALID_ARGUMENT",
            "autoscaling.max",
        )
        assert "autoscaling.min" in invalid.value.message
        tide.deployments.create(spec(), idempotency_key=None)
        with pytest.raises(TideError) as taken:
            tide.deployments.create({**spec(), "id": "tiny-chat"})
        assert (taken.value.status, taken.value.code) == (409, "ALREADY_EXISTS")
        with pytest.raises(TideError) as missing:
            tide.deployments.get("nobody-here")
        assert (missing.value.status, missing.value.code, missing.value.field) == (404, "NOT_FOUND", None)
    with Client(api.url, "wrong-token") as stranger, pytest.raises(TideError) as refused:
        stranger.deployments.list()
    assert (refused.value.status, refused.value.code) == (401, "UNAUTHENTICATED")


def test_no_server_is_an_error_without_a_status(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", TOKEN) as tide, pytest.raises(TideError) as unreachable:
        tide.deployments.list()
    assert unreachable.value.status is None and unreachable.value.code == UNREACHABLE
    assert f"127.0.0.1:{port}" in unreachable.value.message
    assert CONNECTION_FAILED != UNREACHABLE


def test_a_retried_create_with_the_same_idempotency_key_makes_one_deployment(api: ApiServer) -> None:
    with Client(api.url, TOKEN) as tide:
        first = tide.deployments.create(spec(), idempotency_key="run-42")
        again = tide.deployments.create(spec(), idempotency_key="run-42")
        assert first["spec"]["id"] == again["spec"]["id"] and len(tide.deployments.list()) == 1


def test_the_apis_warnings_reach_the_handler(api: ApiServer) -> None:
    warnings: list[str] = []
    old_shape = {"name": "old-shape", "weights": {"bucket": "models", "path": "tiny"}, "runtime": {"engine": "builtin"}}
    with Client(api.url, TOKEN, on_warning=warnings.append) as tide:
        tide.deployments.create(old_shape)
        tide.deployments.get("old-shape")
    assert len(warnings) == 1 and "model: {name, bucket, path}" in warnings[0]


def _status(api: ApiServer, name: str, state: str, ready: int, desired: int, **extra: object) -> None:
    api.store.set_status(
        name, {"state": state, "readyReplicas": ready, "desiredReplicas": desired, "conditions": [], **extra}
    )


def test_wait_reports_each_change_and_returns_when_ready(api: ApiServer) -> None:
    steps = [
        ("STATUS_CREATING", 0, 1, [{"id": "r0", "phase": "downloading_weights", "phaseTimes": {}}]),
        ("STATUS_CREATING", 0, 1, [{"id": "r0", "phase": "downloading_weights", "phaseTimes": {}}]),  # no change
        ("STATUS_CREATING", 0, 1, [{"id": "r0", "phase": "engine_load", "phaseTimes": {}}]),
        ("STATUS_READY", 1, 1, [{"id": "r0", "phase": "ready", "phaseTimes": {}}]),
    ]
    seen: list[Deployment] = []

    def next_step(_seconds: float) -> None:  # the "sleep" between polls moves the deployment on
        state, ready, desired, replicas = steps.pop(0)
        _status(api, "tiny-chat", state, ready, desired, replicas=replicas)

    with Client(api.url, TOKEN) as tide:
        tide.deployments.create(spec())
        done = tide.deployments.wait("tiny-chat", on_progress=seen.append, sleep=next_step, clock=lambda: 0.0)
    assert done["status"]["status"] == "STATUS_READY" and not steps
    phases = [[r["phase"] for r in d["status"].get("replicas", [])] for d in seen]
    assert phases == [[], ["downloading_weights"], ["engine_load"], ["ready"]]


def test_wait_fails_fast_on_failed_and_gives_up_at_the_deadline(api: ApiServer) -> None:
    with Client(api.url, TOKEN) as tide:
        tide.deployments.create(spec())
        now = [0.0]

        def tick(seconds: float) -> None:
            now[0] += seconds

        with pytest.raises(TideError) as late:
            tide.deployments.wait("tiny-chat", timeout=5, clock=lambda: now[0], sleep=tick)
        assert late.value.code == DEADLINE_EXCEEDED and now[0] > 5
        assert late.value.resource["status"]["status"] == "STATUS_CREATING"
        api.store.set_status(
            "tiny-chat",
            {
                "state": "STATUS_FAILED",
                "conditions": [{"type": "Failed", "message": "weights path has no config.json"}],
            },
        )
        with pytest.raises(TideError) as failed:
            tide.deployments.wait("tiny-chat", sleep=tick)
        assert failed.value.code == DEPLOYMENT_FAILED and "no config.json" in failed.value.message
        _status(api, "tiny-chat", "STATUS_READY", 0, 0)  # scaled to zero: READY, nothing to wait for
        assert tide.deployments.wait("tiny-chat", sleep=tick)["status"]["status"] == "STATUS_READY"


def test_logs_tail_and_follow(api: ApiServer) -> None:
    api.logs["tiny-chat"] = {"tiny-chat-r0": "one\ntwo\nthree\n"}
    with Client(api.url, TOKEN) as tide:
        tide.deployments.create(spec())
        assert tide.deployments.logs("tiny-chat", tail=2)["replicas"] == {"tiny-chat-r0": "two\nthree\n"}

        def more(_seconds: float) -> None:
            api.logs["tiny-chat"]["tiny-chat-r0"] += "four\n"

        answers = tide.deployments.follow_logs("tiny-chat", tail=1, sleep=more)
        assert next(answers)["replicas"] == {"tiny-chat-r0": "three\n"}
        assert next(answers)["replicas"] == {"tiny-chat-r0": "four\n"}
        assert next(answers)["replicas"] == {"tiny-chat-r0": "four\n"}  # only what came since


def test_capacity_claims(api: ApiServer) -> None:
    with Client(api.url, TOKEN) as tide:
        claim = tide.claims.create({"id": "team-a", **CLAIM})
        assert claim["spec"]["resources"]["instanceId"] == "H100-8x"  # as the inventory spells it
        assert (claim["status"]["allocatedInstances"], claim["status"]["pendingInstances"]) == (1, 0)
        bigger = tide.claims.update("team-a", {"resources": {**CLAIM["resources"], "instanceCount": 3}})
        assert (bigger["status"]["allocatedInstances"], bigger["status"]["pendingInstances"]) == (2, 1)
        tide.claims.create({"id": "team-b", **CLAIM})
        assert [c["spec"]["id"] for c in tide.claims.list()] == ["team-a", "team-b"]
        assert tide.claims.get("team-b")["status"]["pendingInstances"] == 1  # team-a came first
        tide.claims.delete("team-a")
        assert tide.claims.get("team-b")["status"]["allocatedInstances"] == 1
        with pytest.raises(TideError) as bad:
            tide.claims.create({"resources": {**CLAIM["resources"], "instanceId": "tpu"}})
        assert bad.value.field == "resources.instanceId"


def test_gateways_and_their_keys(api: ApiServer) -> None:
    with Client(api.url, TOKEN) as tide:
        assert [g["spec"]["id"] for g in tide.gateways.list()] == ["default"]
        team = tide.gateways.create(
            {"name": "team", "apiKeyAuth": {}, "bodyBasedRouting": {"apiType": "API_TYPE_OPENAI"}}
        )
        assert tide.gateways.get("team")["spec"]["id"] == team["spec"]["id"] == "team"
        created = tide.keys.create("team", name="ci", requests_per_minute=60)
        assert created["key"].startswith(created["apiKey"]["prefix"]) and created["apiKey"]["requestsPerMinute"] == 60
        assert [k["id"] for k in tide.keys.list("team")] == [created["apiKey"]["id"]]
        tide.keys.revoke("team", created["apiKey"]["id"])
        assert tide.keys.list("team") == []
        header = tide.gateways.update(
            "team", {"name": "team", "apiKeyAuth": {}, "headerBasedRouting": {"headerName": "x-model"}}
        )
        assert header["spec"]["headerBasedRouting"] == {"headerName": "x-model"}
        assert "zones" in tide.gateways.parameters()
        assert tide.gateways.delete("team")["spec"]["id"] == "team"
        with pytest.raises(TideError) as default:
            tide.gateways.delete("default")
        assert default.value.status == 409


def test_usage_window(api: ApiServer) -> None:
    with Client(api.url, TOKEN) as tide:
        report = tide.usage(start="2025-11-24T15:00:00Z", end=1_764_000_000.0)
        assert (report["start"], report["end"], report["deployments"]) == (1_763_996_400.0, 1_764_000_000.0, [])
        with pytest.raises(TideError) as reversed_window:
            tide.usage(start=1_764_000_000.0, end=1_763_000_000.0)
        assert (reversed_window.value.status, reversed_window.value.field) == (400, "end")


def test_progress_changes_are_phases_and_tenths_of_progress() -> None:
    def item(phase: str, percent: float) -> Any:
        replica = {"id": "r0", "phase": phase, "phaseTimes": {}, "progress": {"percent": percent}}
        return {"spec": {"id": "x"}, "status": {"status": "STATUS_CREATING", "replicas": [replica]}}

    weights_41 = progress_key(item("downloading_weights", 41))
    assert progress_key(item("downloading_weights", 49.9)) == weights_41
    assert progress_key(item("downloading_weights", 50)) != weights_41
    assert progress_key(item("engine_load", 41)) != weights_41
