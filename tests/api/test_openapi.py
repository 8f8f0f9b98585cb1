"""The OpenAPI documents tell the truth: every route with its statuses and the error shape, request schemas
that take the API's own examples and list every field the validators know (so a field added to a validator
and not to the schema fails here), real answers that match the response schemas, and /docs that works with
no internet. The gateway serves a document of its own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from fastapi.testclient import TestClient

import tide.api.docs_page as docs_page
from tests.api.test_hosted_conformance import CATALOG as HOSTED_CATALOG
from tests.api.test_hosted_conformance import CREATE_CLAIM, CREATE_DEPLOYMENT, CREATE_GATEWAY
from tests.claims.conftest import DECLARED as HOSTED_DECLARED
from tests.gateway.helpers import run, running_gateway, table, url
from tests.support.openapi_server import TOKEN, ZONE, management_app
from tide.api.openapi import DEPLOYMENT_EXAMPLE, ROUTES, components
from tide.autoscale.fields import TUNING
from tide.errors import FieldError
from tide.gateway.keys import GatewayKeys
from tide.gateway.paths import FORWARDED_ROUTES
from tide.scheduling import declared_inventory, validate_claim
from tide.spec import parse_deployment
from tide.spec.deployment import SECTION_KEYS
from tide.spec.gateway import parse_gateway
from tide.spec.schema import SERVER_CHECKS, section_properties

BASE = "/v1alpha1/inference"
ROOT = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((ROOT / "examples" / "tiny.yaml").read_text())
IGNORED = {"status", "id", "organizationId"}  # accepted and ignored (or checked apart): not in "allowed here"


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    app, store = management_app(tmp_path / "tide.db")
    yield TestClient(app, headers={"authorization": f"Bearer {TOKEN}"})
    store.close()


def validator(doc: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator of component `name` of `doc` (its $refs resolve inside the document)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def hosted_components() -> dict[str, Any]:
    inventory = declared_inventory(HOSTED_DECLARED)
    zones = [z for t in HOSTED_CATALOG.instance_types for z in t.zones]
    return {"components": {"schemas": components(HOSTED_CATALOG, zones, ([t.id for t in inventory.types], inventory.zones()))}}  # fmt: skip


def test_every_route_documents_its_statuses_the_error_shape_and_the_bearer_scheme(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "the API token (`tide up` prints it)",
    }
    operations = {(m, p): op for p, ops in doc["paths"].items() for m, op in ops.items()}
    assert set(operations) == set(ROUTES)
    for (method, path), operation in operations.items():
        statuses = set(operation["responses"])
        if path.startswith(BASE):
            assert operation["security"] == [{"bearer": []}], path
            assert "401" in statuses, (method, path)
        if (method, path) != ("post", f"{BASE}/deployments"):
            assert "422" not in statuses, f"{method} {path}: the API never answers 422 there"
        for status, answer in operation["responses"].items():
            if status >= "400":
                assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        if method in ("post", "patch"):
            assert "requestBody" in operation, (method, path)
    assert "409" in operations[("post", f"{BASE}/deployments")]["responses"]
    assert "404" in operations[("get", f"{BASE}/deployments/{{deployment_id}}")]["responses"]


def test_answers_match_the_documented_statuses_and_schemas(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()

    def check(method: str, template: str, response: Any) -> dict[str, Any]:  # a TestClient response
        answers = doc["paths"][template][method]["responses"]
        assert str(response.status_code) in answers, (method, template, response.status_code, response.text)
        ref = answers[str(response.status_code)]["content"]["application/json"]["schema"]["$ref"]
        body: dict[str, Any] = response.json()
        validator(doc, ref.rsplit("/", 1)[-1]).validate(body)
        return body

    d, g, c = f"{BASE}/deployments", f"{BASE}/gateways", f"{BASE}/capacityclaims"
    check("post", d, client.post(d, json=TINY))
    check("get", d, client.get(d))
    check("get", f"{d}/{{deployment_id}}", client.get(f"{d}/tiny-chat"))
    check("get", f"{d}/{{deployment_id}}/logs", client.get(f"{d}/tiny-chat/logs"))
    check("get", f"{d}/parameters", client.get(f"{d}/parameters"))
    error = check("post", d, client.post(d, json={**TINY, "autoscaling": {"max": 0}}))
    assert error["error"]["field"] == "autoscaling.max"
    check("post", d, client.post(d, json={**TINY, "id": "tiny-chat"}))  # 409
    check("get", f"{d}/{{deployment_id}}", client.get(f"{d}/nope-nope"))  # 404
    check("get", d, client.get(d, headers={"authorization": "Bearer wrong-token"}))  # 401
    claim = {"resources": {"instanceId": "h100-8x", "instanceCount": 1, "zones": [ZONE]}}
    check("post", c, client.post(c, json=claim))
    check("get", c, client.get(c))
    check("get", f"{BASE}/usage", client.get(f"{BASE}/usage"))
    gateway = {"name": "edge-one", "apiKeyAuth": {}, "pathBasedRouting": {}}
    check("post", g, client.post(g, json=gateway))
    check("get", g, client.get(g))
    check("post", f"{g}/{{gateway_id}}/keys", client.post(f"{g}/edge-one/keys", json={"name": "ci"}))
    check("get", f"{g}/{{gateway_id}}/keys", client.get(f"{g}/edge-one/keys"))
    check("delete", f"{g}/{{gateway_id}}", client.delete(f"{g}/default"))  # 409: the default gateway
    check("delete", f"{d}/{{deployment_id}}", client.delete(f"{d}/tiny-chat"))


def test_a_method_a_path_does_not_take_is_405_with_every_method_it_does_take(client: TestClient) -> None:
    response = client.put(f"{BASE}/deployments")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert client.put(f"{BASE}/deployments/parameters").headers["allow"] == "GET"  # not /deployments/{id}'s


def test_the_api_own_examples_are_valid_by_the_documented_schemas() -> None:
    doc = hosted_components()
    validator(doc, "DeploymentSpec").validate(CREATE_DEPLOYMENT)
    validator(doc, "GatewaySpec").validate(CREATE_GATEWAY)
    validator(doc, "CapacityClaimSpec").validate(CREATE_CLAIM)
    validator(doc, "DeploymentSpec").validate(TINY)
    old_shape = {"name": "tiny-chat", "weights": {"bucket": "models", "path": "tiny"}, "runtime": {"engine": "builtin"}}
    validator(doc, "DeploymentSpec").validate(old_shape)  # deprecated, still accepted: still documented
    # ...and the schema refuses what the validator refuses.
    assert not validator(doc, "DeploymentSpec").is_valid({**TINY, "traffic": {"weight": 1001}})
    assert not validator(doc, "DeploymentSpec").is_valid({**TINY, "model": {"name": "a/b", "bucket": "m", "path": "p"}})
    assert not validator(doc, "GatewaySpec").is_valid({**CREATE_GATEWAY, "apiKeyAuth": {}})  # two auth types
    # An external engine needs no weights, but the old shape's bucket and path still come together (schemathesis
    # found this PATCH rejected with `weights.path: required` while the schema took it).
    external = {"name": "chat", "runtime": {"engine": "external", "endpoints": ["http://127.0.0.1:9/v1"]}}
    assert validator(doc, "DeploymentSpec").is_valid({**external, "weights": {"ignorePatterns": None}})
    for half in ({"bucket": "models"}, {"path": "tiny"}):
        assert not validator(doc, "DeploymentSpec").is_valid({**external, "weights": half})


def _allowed(error: FieldError) -> set[str]:
    """The keys a validator says it takes, from its own unknown-field error."""
    listed = re.search(r"allowed(?: here)?: (.*)$", error.message)
    assert listed, error.message
    return {key.strip() for key in listed.group(1).split(",")}


@pytest.mark.parametrize("section", sorted(SECTION_KEYS))
def test_every_field_the_deployment_validator_knows_is_in_the_schema(section: str) -> None:
    raw: dict[str, Any] = {**TINY, "no-such-field": 1} if section == "" else dict(TINY)
    if section:
        node = raw
        for part in section.split("."):
            node[part] = dict(node.get(part) or {})
            node = node[part]
        node["no-such-field"] = 1
    with pytest.raises(FieldError) as refused:
        parse_deployment(raw, HOSTED_CATALOG)
    documented = section_properties(hosted_components()["components"]["schemas"]["DeploymentSpec"], section)
    assert _allowed(refused.value) == documented - IGNORED


def test_every_field_the_gateway_and_claim_validators_know_is_in_the_schema() -> None:
    schemas = hosted_components()["components"]["schemas"]
    with pytest.raises(FieldError) as refused:
        parse_gateway({**CREATE_GATEWAY, "no-such-field": 1})
    assert _allowed(refused.value) == set(schemas["GatewaySpec"]["properties"]) - IGNORED
    with pytest.raises(FieldError) as claim_refused:
        validate_claim({"resources": {"no-such-field": 1}}, declared_inventory(HOSTED_DECLARED))
    flat = schemas["CapacityClaimSpec"]["anyOf"][0]
    assert _allowed(claim_refused.value) == set(flat["properties"]["resources"]["properties"])


@pytest.mark.parametrize("field", [f for f in TUNING if f.kind != "duration"], ids=lambda f: f.name)
def test_autoscaling_ranges_agree_with_the_validator(field: Any) -> None:
    """Just outside a field's range both refuse; its knative default both accept."""
    doc = hosted_components()
    schema = validator(doc, "DeploymentSpec")
    inside = {**TINY, "autoscaling": {"min": 0, "max": 3, field.name: field.defaults["knative"]}}
    assert schema.is_valid(inside)
    parse_deployment(inside, HOSTED_CATALOG)
    outside = [field.low - 1] + ([field.high + 1] if field.high not in (None, float("inf")) else [])
    for value in outside:
        spec = {**TINY, "autoscaling": {"min": 0, "max": 3, field.name: value}}
        assert not schema.is_valid(spec), (field.name, value)
        with pytest.raises(FieldError):
            parse_deployment(spec, HOSTED_CATALOG)


def test_server_checks_name_fields_the_schema_documents() -> None:
    """Every rule the document says only the server checks is about a field it documents."""
    schema = hosted_components()["components"]["schemas"]["DeploymentSpec"]
    autoscaling = section_properties(schema, "autoscaling")
    for field in SERVER_CHECKS:
        if field.startswith("autoscaling.") and field.count(".") == 1:
            assert field.split(".", 1)[1] in autoscaling, field


def test_docs_load_nothing_from_another_host(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    init = client.get("/docs/init.js").text
    for text in (page.text, init):
        assert not re.search(r"(https?:)?//[a-z]", text.replace("http://www.w3.org", "")), text
    if docs_page.swagger_vendored():
        assert 'src="/docs/swagger-ui-bundle.js"' in page.text
        assert client.get("/docs/swagger-ui-bundle.js").status_code == 200
        assert client.get("/docs/swagger-ui.css").status_code == 200
    assert client.get("/gateway/openapi.json").json()["info"]["title"] == "Tide gateway"


def test_docs_without_swagger_list_every_operation(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docs_page, "SWAGGER_JS", Path("/nonexistent/swagger-ui-bundle.js"))
    page = client.get("/docs")
    assert page.status_code == 200
    assert "<script" not in page.text and "scripts/vendor-ui.sh" in page.text
    assert f"PATCH {BASE}/deployments/{{deployment_id}}" in page.text
    assert "POST /v1/chat/completions" in page.text  # the gateway's document too


@pytest.mark.parametrize("keyed", [True, False], ids=["with-keys", "open"])
def test_the_gateway_serves_its_own_document(keyed: bool) -> None:
    options = {"api_keys": GatewayKeys(env_keys="gateway-key-123456")} if keyed else {}

    async def scenario() -> dict[str, Any]:
        async with running_gateway(table(), **options) as gateway, httpx.AsyncClient() as http:
            response = await http.get(url(gateway, "/openapi.json"))  # no key needed for the document
            assert response.status_code == 200
            wrong = await http.post(url(gateway, "/openapi.json"))
            assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"
            body: dict[str, Any] = response.json()
            return body

    doc = run(scenario())
    for route in FORWARDED_ROUTES:
        operation = doc["paths"][f"/v1{route.decode()}"]["post"]
        assert {"400", "404", "405", "429", "503"} <= set(operation["responses"])
        assert ("401" in operation["responses"]) == keyed  # an open gateway never answers 401
        assert operation["security"] == ([{"bearer": []}] if keyed else [])
        assert f"/{{model}}/v1{route.decode()}" in doc["paths"]
    assert {"/v1/models", "/health", "/healthz"} <= set(doc["paths"])


def test_the_documented_deployment_example_is_the_repository_example() -> None:
    assert DEPLOYMENT_EXAMPLE == TINY
    doc = hosted_components()
    for name in ("DeploymentSpec", "GatewaySpec", "CapacityClaimSpec", "ApiKeyRequest"):
        schema = doc["components"]["schemas"][name]
        assert schema["examples"], name
        for example in schema["examples"]:
            validator(doc, name).validate(example)


def test_the_served_examples_are_accepted(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for path, name in (
        ("/deployments", "DeploymentSpec"),
        ("/gateways", "GatewaySpec"),
        ("/capacityclaims", "CapacityClaimSpec"),
    ):
        created = client.post(BASE + path, json=schemas[name]["examples"][0])
        assert created.status_code == 201, (path, created.text)
    key = client.post(f"{BASE}/gateways/edge-gateway/keys", json=schemas["ApiKeyRequest"]["examples"][0])
    assert key.status_code == 201, key.text
