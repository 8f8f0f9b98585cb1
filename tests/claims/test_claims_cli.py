"""`tide usage` and `tide get claims`: the tables, the window options, and the commands against the API."""

from __future__ import annotations

import json
from typing import cast

import click
import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tests.claims.conftest import TOKEN, ZONE_A, ZONE_B, ClaimsApi
from tide.cli.claims import claims_table, get_claims_command, usage_command, usage_params, usage_table
from tide.cli.root import TideGroup
from tide.sdk import Client

T0 = 1_764_000_000.0


@pytest.fixture()
def cli(api: ClaimsApi, monkeypatch: pytest.MonkeyPatch) -> click.Group:
    """A `tide`-like group whose API client talks to the in-process app."""

    def client(_ctx: click.Context) -> Client:
        return Client(token=TOKEN, http=cast(httpx.Client, TestClient(api.client.app)))  # an httpx.Client

    monkeypatch.setattr("tide.cli.claims.client", client)

    @click.group(cls=TideGroup)
    def root() -> None:
        pass

    @root.group(cls=TideGroup)
    def get() -> None:
        pass

    root.add_command(usage_command, "usage")
    get.add_command(get_claims_command, "claims")
    return root


def test_claims_table() -> None:
    items = [
        {
            "spec": {
                "id": "team-a",
                "resources": {
                    "instanceId": "H100-8x",
                    "instanceCount": 3,
                    "capacityType": "CAPACITY_TYPE_SERVERLESS",
                    "zones": [ZONE_A, ZONE_B],
                },
            },
            "status": {"allocatedInstances": 2, "pendingInstances": 1},
        }
    ]
    assert claims_table(items).splitlines() == [
        "ID      INSTANCE TYPE  COUNT  ALLOCATED  PENDING  CAPACITY TYPE  ZONES",
        f"team-a  H100-8x        3      2          1        SERVERLESS     {ZONE_A},{ZONE_B}",
    ]
    assert claims_table([]).startswith("ID  ")


def test_usage_table() -> None:
    report = {
        "start": T0,
        "end": T0 + 3600,
        "totalGpuMinutes": 10,
        "deployments": [
            {
                "deploymentId": "chat",
                "gpuMinutes": 10,
                "replicas": [
                    {"replicaId": "chat-r0", "minutes": 3, "gpuMinutes": 6},
                    {"replicaId": "chat-r1", "minutes": 2, "gpuMinutes": 4},
                ],
            }
        ],
    }
    assert usage_table(report).splitlines() == [
        "Usage from 2025-11-24T16:00:00Z to 2025-11-24T17:00:00Z: 10 GPU-minutes (billed per started minute)",
        "",
        "DEPLOYMENT  REPLICA  MINUTES  GPU-MINUTES",
        "chat        *        5        10",
        "            chat-r0  3        6",
        "            chat-r1  2        4",
    ]
    empty = usage_table({"start": T0, "end": T0 + 60, "totalGpuMinutes": 0, "deployments": []})
    assert empty.endswith("no replica ran in this window")
    counts = {"requests": 3, "promptTokens": 30, "completionTokens": 6}
    report["gateways"] = [{"gatewayId": "team", **counts, "keys": [{"keyId": "key-1", **counts}]}]
    assert usage_table(report).splitlines()[-4:] == [
        "Gateway requests and tokens since the gateways started:",
        "GATEWAY  KEY    REQUESTS  PROMPT-TOKENS  COMPLETION-TOKENS",
        "team     *      3         30             6",
        "         key-1  3         30             6",
    ]


def test_usage_params() -> None:
    assert usage_params("24h", None, None, T0) == {"start": repr(T0 - 86400)}
    assert usage_params("90m", None, "2025-11-24T16:00:00Z", 0.0) == {
        "start": repr(T0 - 5400),
        "end": "2025-11-24T16:00:00Z",
    }
    # --start wins over --since; times go to the API as typed.
    assert usage_params("1h", "2025-11-24T15:00:00Z", str(T0), 0.0) == {"start": "2025-11-24T15:00:00Z", "end": str(T0)}
    with pytest.raises(click.BadParameter) as bad_since:
        usage_params("1 day", None, None, T0)
    assert bad_since.value.format_message().startswith("Invalid value for --since: must be a duration")
    with pytest.raises(click.BadParameter, match="yesterday"):
        usage_params("24h", "yesterday", None, T0)
    with pytest.raises(click.BadParameter, match="soon"):
        usage_params("24h", None, "soon", T0)


def test_usage_command_against_the_api(api: ClaimsApi, cli: click.Group) -> None:
    api.runs.run_started("chat", "chat-r0", 2, "i-1", T0)
    api.runs.run_stopped("chat-r0", T0 + 61)
    result = CliRunner().invoke(cli, ["usage", "--start", str(T0), "--end", "2025-11-24T17:00:00Z"])
    assert result.exit_code == 0, result.output
    assert "4 GPU-minutes" in result.output
    assert "chat-r0  2        4" in result.output
    as_json = CliRunner().invoke(cli, ["usage", "--start", str(T0), "--end", str(T0 + 60), "-o", "json"])
    assert json.loads(as_json.output)["totalGpuMinutes"] == 2
    bad = CliRunner().invoke(cli, ["usage", "--start", "2025-11-24T18:00:00Z", "--end", str(T0)])
    assert bad.exit_code != 0 and "end" in bad.output


def test_get_claims_command_against_the_api(api: ClaimsApi, cli: click.Group) -> None:
    api.client.post(
        "/v1alpha1/inference/capacityclaims",
        json={"id": "team-a", "resources": {"instanceId": "h100-8x", "instanceCount": 3, "zones": [ZONE_A]}},
    )
    result = CliRunner().invoke(cli, ["get", "claims"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split() == ["team-a", "H100-8x", "3", "2", "1", "SERVERLESS", ZONE_A]
    as_yaml = CliRunner().invoke(cli, ["get", "claims", "-o", "yaml"])
    assert "allocatedInstances: 2" in as_yaml.output
