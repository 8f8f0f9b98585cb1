"""schemathesis against the served OpenAPI document of a real management API (SQLite store, capacity claims,
gateways; uvicorn on a loopback port in this process): every check on, a fixed number of examples per
operation and a fixed seed, and the run must end with 0 failures and no 5xx answer.

`positive_data_acceptance` runs as tests/api/schemathesis_hooks.py narrows it: a schema-valid request may
get a 400 only for a rule the document itself lists in `x-tide-server-checks` (docs/OPENAPI.md). The
services tier (tests/conftest.py: it starts a process of its own, `st`); about 30 s on two busy cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx

from tests.support.openapi_server import TOKEN, management_app, serve

BASE = "/v1alpha1/inference"
EXAMPLES_PER_OPERATION = 10
SEED = 1
CREATES = (
    "/v1alpha1/inference/deployments",
    "/v1alpha1/inference/capacityclaims",
    "/v1alpha1/inference/gateways",
)


def seed(base_url: str) -> dict[str, list[str]]:
    """A deployment, a capacity claim, a gateway and a key made through the API itself: half the ids
    schemathesis puts in a path are these (the config below), so get/update/delete reach real resources,
    not only 404s. Path parameter -> ids."""
    headers = {"authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"{base_url}{BASE}", headers=headers) as http:
        schemas = http.get("/../../openapi.json").json()["components"]["schemas"]
        made = {
            "deployment_id": http.post("/deployments", json={**schemas["DeploymentSpec"]["examples"][0], "id": "seeded-chat"}),
            "claim_id": http.post("/capacityclaims", json={**schemas["CapacityClaimSpec"]["examples"][0], "id": "seeded-claim"}),
            "gateway_id": http.post("/gateways", json={**schemas["GatewaySpec"]["examples"][0], "id": "seeded-edge"}),
        }  # fmt: skip
        made["key_id"] = http.post("/gateways/seeded-edge/keys", json={"name": "seeded"})
    for response in made.values():
        assert response.status_code == 201, response.text
    key = made["key_id"].json()["apiKey"]["id"]
    return {
        "deployment_id": ["seeded-chat"],
        "claim_id": ["seeded-claim"],
        "gateway_id": ["seeded-edge"],
        "key_id": [key],
    }


def config(ids: dict[str, list[str]]) -> str:
    """schemathesis.toml: each path parameter takes a seeded id half the time, a generated one otherwise."""
    lines = []
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}' for name in ids]
    return "\n".join(lines) + "\n"


def schemathesis_command(base_url: str, har: Path, config_file: Path) -> list[str]:
    """The command docs/OPENAPI.md gives, against `base_url`, recording every exchange in `har`."""
    return [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_file), "run", f"{base_url}/openapi.json",
        "--header", f"Authorization: Bearer {TOKEN}",
        "--checks", "all", "--exclude-checks", "positive_data_acceptance",  # replaced by the hook's narrower one
        "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", str(SEED),
        "--workers", "1", "--no-color", "--output-truncate", "false",
        "--report", "har", "--report-har-path", str(har),
    ]  # fmt: skip


def test_schemathesis_finds_nothing_with_every_check(tmp_path: Path) -> None:
    app, store = management_app(tmp_path / "tide.db")
    har = tmp_path / "exchanges.har"
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks", "PYTHONPATH": _pythonpath()}
    try:
        with serve(app) as base_url:
            config_file = tmp_path / "schemathesis.toml"
            config_file.write_text(config(seed(base_url)))
            run = subprocess.run(
                schemathesis_command(base_url, har, config_file),
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp_path,  # its cache (.schemathesis/) goes there
                timeout=240,
                check=False,
            )
    finally:
        store.close()
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = Counter(entry["response"]["status"] for entry in entries)
    assert not [s for s in statuses if s >= 500], f"5xx answers: {statuses}\n{report}"
    # Not vacuous: hundreds of requests, and each create accepted some generated body.
    assert len(entries) > 20 * EXAMPLES_PER_OPERATION, statuses
    created = {
        e["request"]["url"].split("?")[0].removeprefix(base_url) for e in entries if e["response"]["status"] == 201
    }
    assert set(CREATES) <= created, f"creates never accepted a generated body: {set(CREATES) - created}"
    reached = {e["request"]["method"] for e in entries if "/deployments/seeded-chat" in e["request"]["url"] and e["response"]["status"] == 200}  # fmt: skip
    assert {"GET", "PATCH"} <= reached, f"the seeded deployment was reached only by {reached}"


def _pythonpath() -> str:
    root = str(Path(__file__).resolve().parents[2])
    return os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
