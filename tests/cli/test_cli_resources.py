"""The CLI against a real management API: capacity claims in `tide apply -f` (by `kind:`), `tide get
claims`, `tide delete claim`; `tide get deployment` with placement and phase durations; `tide wait`'s
progress; `tide --help` without cut-off descriptions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.support.api_server import TOKEN, ZONE, ApiServer, api_server
from tide import cli
from tide.cli.deployments import describe_deployment, progress_line
from tide.cli.replicas import duration_text, phase_durations, phases_text, placement_text
from tide.cli.root import summary

DEPLOYMENT = "name: {name}\nmodel: {{name: {name}, bucket: models, path: tiny}}\nruntime: {{engine: builtin}}\n"
CLAIM = (
    "kind: CapacityClaim\nname: {name}\nresources: {{instanceId: H100-8x, instanceCount: {count}, zones: [{zone}]}}\n"
)


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[ApiServer]:
    with api_server(tmp_path) as server:
        yield server


def tide(server: str, tmp_path: Path, *args: str) -> Result:
    env = {"TIDE_API_TOKEN": TOKEN}
    return CliRunner().invoke(cli.main, ["--server", server, "--data-dir", str(tmp_path), *args], env=env)


def test_apply_takes_deployments_and_capacity_claims_from_one_file(api: ApiServer, tmp_path: Path) -> None:
    specs = tmp_path / "all.yaml"
    specs.write_text(
        DEPLOYMENT.format(name="chat") + "---\n" + CLAIM.format(name="team-a", count=1, zone=ZONE) + "---\n"
        "kind: claim\nid: team-b\nresources: {instanceId: h100-8x, instanceCount: 2, zones: [" + ZONE + "]}\n"
    )
    first = tide(api.url, tmp_path, "apply", "-f", str(specs))
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert lines[0] == "deployment/chat created" and lines[2] == "capacityclaim/team-b created"
    assert lines[1].startswith("capacityclaim/claim-") and lines[1].endswith(" created")
    again = tide(api.url, tmp_path, "apply", "-f", str(specs))
    assert again.output.splitlines() == [
        "deployment/chat unchanged",
        lines[1].replace("created", "unchanged"),
        "capacityclaim/team-b unchanged",
    ]
    specs.write_text(CLAIM.format(name="team-a", count=2, zone=ZONE))  # matched by name, one more instance
    assert tide(api.url, tmp_path, "apply", "-f", str(specs)).output == lines[1].replace("created", "configured\n")

    listed = tide(api.url, tmp_path, "get", "claims")
    rows = {line.split()[0]: line.split() for line in listed.output.splitlines()[1:]}
    # Two H100-8x in the inventory, first come first served: team-a got both, team-b waits.
    assert rows[lines[1].split("/")[1].split()[0]][2:5] == ["2", "2", "0"]
    assert rows["team-b"][2:5] == ["2", "0", "2"]


def test_a_fetched_claim_can_be_edited_and_applied_again(api: ApiServer, tmp_path: Path) -> None:
    specs = tmp_path / "claim.yaml"
    specs.write_text(CLAIM.format(name="team-a", count=1, zone=ZONE).replace("name: team-a", "id: team-a"))
    assert tide(api.url, tmp_path, "apply", "-f", str(specs)).exit_code == 0
    fetched = tide(api.url, tmp_path, "get", "claim", "team-a", "-o", "yaml").output
    assert fetched.startswith("capacityClaim:") and "allocatedInstances: 1" in fetched
    specs.write_text(fetched.replace("instanceCount: 1", "instanceCount: 2"))
    result = tide(api.url, tmp_path, "apply", "-f", str(specs))
    assert result.output == "capacityclaim/team-a configured\n", result.output


def test_apply_names_the_document_with_an_unknown_kind_or_a_claim_without_id_or_name(
    api: ApiServer, tmp_path: Path
) -> None:
    specs = tmp_path / "bad.yaml"
    specs.write_text(DEPLOYMENT.format(name="chat") + "---\nkind: Gadget\nname: x\n")
    result = tide(api.url, tmp_path, "apply", "-f", str(specs))
    assert result.exit_code == 1 and "bad.yaml document 2: kind: 'Gadget'" in result.output
    assert "Deployment (the default), CapacityClaim or Gateway" in result.output
    assert api.store.list_deployments() == []  # the file is read whole before anything is applied
    specs.write_text(DEPLOYMENT.format(name="chat") + "---\nkind: CapacityClaim\nresources: {instanceCount: 1}\n")
    result = tide(api.url, tmp_path, "apply", "-f", str(specs))
    assert result.exit_code == 1 and "document 2" in result.output and "needs an id or a name" in result.output
    assert "1 of 2 documents applied before it" in result.output
    specs.write_text(
        f"kind: CapacityClaim\nid: team-x\nresources: {{instanceId: tpu, instanceCount: 1, zones: [{ZONE}]}}\n"
    )
    result = tide(api.url, tmp_path, "apply", "-f", str(specs))
    assert result.exit_code == 1 and "400: " in result.output and "[resources.instanceId]" in result.output


def test_delete_claim_by_id_or_name_and_delete_deployment_either_way(api: ApiServer, tmp_path: Path) -> None:
    specs = tmp_path / "all.yaml"
    specs.write_text(
        "\n---\n".join(
            [
                DEPLOYMENT.format(name="chat"),
                DEPLOYMENT.format(name="chat-two"),
                CLAIM.format(name="team-a", count=1, zone=ZONE),
                CLAIM.format(name="team-b", count=1, zone=ZONE).replace("name: team-b", "id: team-b"),
            ]
        )
    )
    assert tide(api.url, tmp_path, "apply", "-f", str(specs)).exit_code == 0
    assert tide(api.url, tmp_path, "delete", "claim", "team-b").output == "capacityclaim/team-b deleted\n"
    by_name = tide(api.url, tmp_path, "delete", "claim", "team-a")
    assert by_name.exit_code == 0 and by_name.output.startswith("capacityclaim/claim-"), by_name.output
    assert tide(api.url, tmp_path, "get", "claims").output.splitlines()[1:] == []
    missing = tide(api.url, tmp_path, "delete", "claim", "team-a")
    assert missing.exit_code == 1 and "404: capacity claim 'team-a' not found" in missing.output
    assert tide(api.url, tmp_path, "delete", "chat").output == "deployment/chat deleting\n"
    assert tide(api.url, tmp_path, "delete", "deployment", "chat-two").output == "deployment/chat-two deleting\n"
    wrong = tide(api.url, tmp_path, "delete", "gadget", "x")
    assert wrong.exit_code == 2 and "use deployment, claim or gateway" in wrong.output


def test_apply_and_delete_a_gateway(api: ApiServer, tmp_path: Path) -> None:
    specs = tmp_path / "team.yaml"
    gateway = "kind: Gateway\nname: team\napiKeyAuth: {}\n"
    specs.write_text(
        gateway
        + "bodyBasedRouting: {apiType: API_TYPE_OPENAI}\n---\n"
        + DEPLOYMENT.format(name="chat")
        + "gatewayIds: [team]\n"
    )
    assert (
        tide(api.url, tmp_path, "apply", "-f", str(specs)).output == "gateway/team created\ndeployment/chat created\n"
    )
    specs.write_text(gateway + "pathBasedRouting: {}\n")
    assert tide(api.url, tmp_path, "apply", "-f", str(specs)).output == "gateway/team configured\n"
    assert "pathBasedRouting" in tide(api.url, tmp_path, "get", "gateways").output
    in_use = tide(api.url, tmp_path, "delete", "gateway", "team")
    assert in_use.exit_code == 1 and "409: gateway 'team' still serves deployments chat" in in_use.output
    specs.write_text(DEPLOYMENT.format(name="chat"))  # back on the default gateway
    assert tide(api.url, tmp_path, "apply", "-f", str(specs)).output == "deployment/chat configured\n"
    assert tide(api.url, tmp_path, "delete", "gateway", "team").output == "gateway/team deleted\n"


REPLICA: dict[str, Any] = {
    "id": "chat-r0",
    "phase": "ready",
    "phaseTimes": {
        "waiting_for_capacity": 100.0,
        "downloading_weights": 100.25,
        "engine_load": 103.45,
        "ready": 104.55,
    },
    "instanceId": "h100-8x-0",
    "zone": ZONE,
    "gpuIds": [0, 1],
    "gpuCount": 2,
    "url": "http://127.0.0.1:40123/v1",
}


def test_get_deployment_shows_placement_and_phase_durations(api: ApiServer, tmp_path: Path) -> None:
    specs = tmp_path / "chat.yaml"
    specs.write_text(DEPLOYMENT.format(name="chat"))
    assert tide(api.url, tmp_path, "apply", "-f", str(specs)).exit_code == 0
    starting = {"id": "chat-r1", "phase": "downloading_weights", "phaseTimes": {"downloading_weights": 100.0}}
    starting["progress"] = {"percent": 45.0}
    api.store.set_status(
        "chat",
        {
            "state": "STATUS_READY",
            "readyReplicas": 1,
            "desiredReplicas": 2,
            "conditions": [],
            "replicas": [REPLICA, starting],
        },
    )
    shown = tide(api.url, tmp_path, "get", "deployment", "chat")
    assert shown.exit_code == 0, shown.output
    assert f"h100-8x-0, zone {ZONE}, GPUs 0,1" in shown.output
    assert "chat-r0: capacity wait 0.2 s, weights 3.2 s, engine load 1.1 s, ready for " in shown.output
    assert "downloading_weights 45%" in shown.output and "chat-r1: weights for " in shown.output
    assert "100.25" not in shown.output and "104.55" not in shown.output  # no epoch times


def test_replica_texts() -> None:
    assert phase_durations({"ready": 10.0, "engine_load": 8.0}, now=70.0) == [
        ("engine_load", 2.0, False),
        ("ready", 60.0, True),
    ]
    assert phases_text(REPLICA, now=104.55 + 125) == (
        "capacity wait 0.2 s, weights 3.2 s, engine load 1.1 s, ready for 2 m 5 s"
    )
    assert [duration_text(s) for s in (0.04, 59.94, 60, 3725, 90000)] == [
        "0.0 s",
        "59.9 s",
        "1 m 0 s",
        "1 h 2 m",
        "1 d 1 h",
    ]
    assert placement_text({"id": "r", "phase": "waiting_for_capacity"}) == "-"
    assert placement_text({"instanceId": "local-cpu", "zone": "local"}) == "local-cpu, zone local"
    assert placement_text({"instanceId": "h100-8x-0", "zone": ZONE, "gpuCount": 8}) == f"h100-8x-0, zone {ZONE}, 8 GPUs"
    described = describe_deployment(
        {"spec": {"id": "chat", "name": "chat", "runtime": {"engine": "builtin"}}, "status": {"replicas": [REPLICA]}},
        now=200.0,
    )
    assert "PLACEMENT" in described and "LOAD" in described


def test_wait_prints_progress_and_the_result(api: ApiServer, tmp_path: Path) -> None:
    specs = tmp_path / "chat.yaml"
    specs.write_text(DEPLOYMENT.format(name="chat"))
    assert tide(api.url, tmp_path, "apply", "-f", str(specs)).exit_code == 0
    starting = {
        "id": "chat-r0",
        "phase": "engine_load",
        "phaseTimes": {"engine_load": 1.0},
        "progress": {"percent": 60},
    }
    condition = {"type": "Progressing", "message": "loading the engine"}
    api.store.set_status(
        "chat",
        {
            "state": "STATUS_CREATING",
            "readyReplicas": 0,
            "desiredReplicas": 1,
            "conditions": [condition],
            "replicas": [starting],
        },
    )
    late = tide(api.url, tmp_path, "wait", "chat", "--timeout", "0.2")
    assert late.exit_code == 1
    assert "CREATING  ready 0/1  chat-r0 engine_load 60%  (loading the engine)" in late.output
    assert "is STATUS_CREATING after" in late.output and "Replica phases:" in late.output
    api.store.set_status(
        "chat",
        {"state": "STATUS_READY", "readyReplicas": 1, "desiredReplicas": 1, "conditions": [], "replicas": [REPLICA]},
    )
    done = tide(api.url, tmp_path, "wait", "chat")
    assert done.exit_code == 0 and done.stdout == "deployment/chat STATUS_READY\n"
    assert "READY  ready 1/1  chat-r0 ready" in done.stderr
    assert tide(api.url, tmp_path, "wait", "chat", "-q").stderr == ""


def test_progress_line() -> None:
    item = {"spec": {"id": "x"}, "status": {"status": "STATUS_UPDATING", "readyReplicas": 1, "desiredReplicas": 2}}
    assert progress_line(item, 12.34) == "[  12.3 s]  UPDATING  ready 1/2"


def test_an_unreachable_api_says_what_to_check(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = tide(f"http://127.0.0.1:{port}", tmp_path, "get", "deployments")
    assert result.exit_code == 1 and "cannot reach the Tide API" in result.output and "tide up" in result.output
    assert "Traceback" not in result.output


def test_help_lists_every_command_with_its_whole_summary() -> None:
    for group, args in ((cli.main, ["--help"]), (cli.main.commands["get"], ["get", "--help"])):
        output = CliRunner().invoke(cli.main, args, terminal_width=80).output.split("Commands:")[1]
        assert "..." not in output
        flat = " ".join(output.split())
        for name, command in group.commands.items():  # type: ignore[attr-defined]
            if not command.hidden:
                assert f"{name} {summary(command)}" in flat, name
