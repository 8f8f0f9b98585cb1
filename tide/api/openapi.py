"""The management API's OpenAPI document: what each route takes and answers, every status it returns.

FastAPI documents the path and query parameters from the handlers' signatures. Request bodies are read raw
(`read_json_body`) and checked by the spec validators, so their schemas come from the same constants and
tables (`tide.spec.schema`, built for this installation's catalog and zones each time the document is
asked for). Every route's answers are listed in `ROUTES`; `document` fails when a route of the app has no
entry, so a new route cannot go undocumented. No route answers 422 for a malformed request (the app turns
FastAPI's validation errors into 400), so no 422 is documented except where the API returns one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from tide.api.errors import BASE
from tide.api.gateways import KEY_LIMITS, MAX_KEY_LIMIT
from tide.api.paging import MAX_PAGE_SIZE
from tide.scheduling.claims import CAPACITY_TYPE_SERVERLESS, CAPACITY_TYPES
from tide.spec import Catalog
from tide.spec.schema import (
    NAME,
    SERVER_CHECKS,
    Schema,
    deployment_schema,
    gateway_schema,
    nullable,
    one_of_any_case,
)

BEARER = "bearer"
REF = "#/components/schemas/"

STATUS_TEXT = {
    200: "OK",
    201: "Created",
    400: "The request is malformed or a field is invalid: `error.field` names it",
    401: "No bearer token, or not the API's token",
    404: "No such resource",
    405: "The route does not take this method (the `Allow` header lists those it takes)",
    409: "Conflicts with the current state: `error.message` says what to change",
    422: "The Idempotency-Key was used for a different request",
}


@dataclass(frozen=True)
class RouteDoc:
    """One route's documentation: its request body (a component name) and answers (status -> component)."""

    ok: tuple[int, str]
    errors: tuple[int, ...] = ()
    body: str | None = None
    body_required: bool = True
    auth: bool = True
    summary: str = ""
    headers: tuple[tuple[str, Schema, str], ...] = ()  # request headers the handler reads: name, schema, doc


D = f"{BASE}/deployments"
C = f"{BASE}/capacityclaims"
G = f"{BASE}/gateways"
IDEMPOTENCY = ("Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 255}, "retrying with the same key and body answers the deployment it created")  # fmt: skip

ROUTES: dict[tuple[str, str], RouteDoc] = {
    ("get", "/healthz"): RouteDoc((200, "Health"), auth=False, summary="The API process is up"),
    ("get", "/metrics"): RouteDoc((200, "Metrics"), auth=False, summary="Prometheus metrics of the control plane"),
    ("get", D): RouteDoc((200, "DeploymentList"), (400,), summary="List deployments, one page"),
    ("post", D): RouteDoc(
        (201, "DeploymentAnswer"), (400, 409, 422), body="DeploymentSpec", summary="Create a deployment",
        headers=(IDEMPOTENCY,),
    ),
    ("get", f"{D}/parameters"): RouteDoc((200, "Parameters"), summary="What a deployment may choose here"),
    ("get", f"{D}/{{deployment_id}}"): RouteDoc((200, "DeploymentAnswer"), (404, 409), summary="Get a deployment"),
    ("patch", f"{D}/{{deployment_id}}"): RouteDoc(
        (200, "DeploymentAnswer"), (400, 404, 409), body="DeploymentSpec",
        summary="Replace a deployment's spec (omitted fields go back to their defaults)",
    ),
    ("delete", f"{D}/{{deployment_id}}"): RouteDoc(
        (200, "DeploymentAnswer"), (404, 409), summary="Delete a deployment (it drains, then goes)"
    ),
    ("get", f"{D}/{{deployment_id}}/logs"): RouteDoc((200, "Logs"), (400, 404, 409), summary="Replica logs"),
    ("get", C): RouteDoc((200, "CapacityClaimList"), (400,), summary="List capacity claims, one page"),
    ("post", C): RouteDoc((201, "CapacityClaimAnswer"), (400, 409), body="CapacityClaimSpec", summary="Create a claim"),
    ("get", f"{C}/{{claim_id}}"): RouteDoc((200, "CapacityClaimAnswer"), (404,), summary="Get a capacity claim"),
    ("patch", f"{C}/{{claim_id}}"): RouteDoc(
        (200, "CapacityClaimAnswer"), (400, 404), body="CapacityClaimSpec", summary="Replace a claim's spec"
    ),
    ("delete", f"{C}/{{claim_id}}"): RouteDoc((200, "CapacityClaimAnswer"), (404,), summary="Delete a claim"),
    ("get", f"{BASE}/usage"): RouteDoc((200, "Usage"), (400,), summary="GPU-minutes per deployment"),
    ("get", G): RouteDoc((200, "GatewayList"), summary="List gateways"),
    ("get", f"{G}/parameters"): RouteDoc((200, "GatewayParameters"), summary="Zones a gateway may name"),
    ("post", G): RouteDoc((201, "GatewayAnswer"), (400, 409), body="GatewaySpec", summary="Create a gateway"),
    ("get", f"{G}/{{gateway_id}}"): RouteDoc((200, "GatewayAnswer"), (404,), summary="Get a gateway"),
    ("patch", f"{G}/{{gateway_id}}"): RouteDoc(
        (200, "GatewayAnswer"), (400, 404), body="GatewaySpec", summary="Replace a gateway's spec"
    ),
    ("delete", f"{G}/{{gateway_id}}"): RouteDoc(
        (200, "GatewayAnswer"), (404, 409), summary="Delete a gateway no deployment names"
    ),
    ("post", f"{G}/{{gateway_id}}/keys"): RouteDoc(
        (201, "ApiKeyCreated"), (400, 404), body="ApiKeyRequest", body_required=False,
        summary="Issue an API key (the key is in this answer only)",
    ),
    ("get", f"{G}/{{gateway_id}}/keys"): RouteDoc((200, "ApiKeyList"), (404,), summary="List a gateway's keys"),
    ("delete", f"{G}/{{gateway_id}}/keys/{{key_id}}"): RouteDoc(
        (200, "ApiKeyAnswer"), (404,), summary="Revoke an API key"
    ),
}  # fmt: skip


# Request examples, shown by /docs and sent by schemathesis' example phase. The deployment is examples/tiny.yaml
# (a test keeps them equal); the claim's instance type and zone are this installation's (`components`).
DEPLOYMENT_EXAMPLE: dict[str, Any] = {
    "name": "tiny-chat",
    "model": {"name": "tiny-chat", "bucket": "models", "path": "tiny"},
    "runtime": {"engine": "builtin"},
    "autoscaling": {"min": 1, "max": 3, "concurrency": 4},
    "traffic": {"weight": 100},
}
GATEWAY_EXAMPLE: dict[str, Any] = {"name": "edge-gateway", "apiKeyAuth": {}, "bodyBasedRouting": {}}
KEY_EXAMPLE: dict[str, Any] = {"name": "ci", "requestsPerMinute": 600}


def _obj(properties: Schema, required: Iterable[str] = (), *, closed: bool = False, **extra: Any) -> Schema:
    out: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        out["required"] = list(required)
    if closed:
        out["additionalProperties"] = False
    return out


def _ref(name: str) -> Schema:
    return {"$ref": REF + name}


TIME: Schema = {"type": "string", "format": "date-time"}
STRINGS: Schema = {"type": "array", "items": {"type": "string"}}
PAGE_TOKEN: Schema = {"type": "string", "description": "pass as pageToken for the next page"}


def _status(extra: Schema | None = None) -> Schema:
    """`status` of a resource: its state, RFC 3339 times, conditions, then fields of its own."""
    condition = _obj(
        {
            "type": {"type": "string"},
            "status": {"type": "string"},
            "lastUpdateTime": {"type": ["string", "null"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "zone": {"type": "string"},
        },
        ["type", "status", "reason", "message"],
    )
    props: Schema = {
        "status": {"type": "string", "examples": ["STATUS_READY", "STATUS_CREATING", "STATUS_DELETING"]},
        "createdAt": TIME,
        "updatedAt": TIME,
        "conditions": {"type": "array", "items": condition},
        **(extra or {}),
    }
    return _obj(props, ["status", "createdAt", "updatedAt", "conditions"])


def _resource(spec: Schema, status: Schema) -> Schema:
    return _obj({"spec": spec, "status": status}, ["spec", "status"])


def _stored_deployment_spec() -> Schema:
    """A deployment's spec as the API answers it (`deployment_to_dict`: every default filled in)."""
    section = {"type": "object"}
    return _obj(
        {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "gatewayIds": STRINGS,
            "model": _obj({"name": {"type": "string"}, "bucket": {"type": "string"}, "path": {"type": "string"}}, ["name"]),
            "weights": section,
            "runtime": _obj({"engine": {"type": "string"}, "version": {"type": "string"}, "engineConfig": section}, ["engine", "version"]),
            "resources": _obj({"instanceType": {"type": "string"}, "gpuCount": {"type": "integer"}}, ["instanceType", "gpuCount"]),
            "autoscaling": _obj({"min": {"type": "integer"}, "max": {"type": "integer"}}, ["min", "max"]),
            "traffic": _obj({"weight": {"type": "integer"}, "routing": {"type": "string"}}, ["weight", "routing"]),
            "disabled": {"type": "boolean"},
        },
        ["id", "name", "gatewayIds", "model", "runtime", "resources", "autoscaling", "traffic", "disabled"],
    )  # fmt: skip


def claim_schema(instance_types: Iterable[str], zones: Iterable[str]) -> Schema:
    """The body of POST/PATCH /capacityclaims (tide.scheduling.validate_claim and the API's id/name rules):
    the spec itself, or a GET answer sent back (the spec under `spec`, or the whole `capacityClaim`)."""
    types, zone_list = sorted(instance_types), sorted(zones)
    resources = _obj(
        {
            "instanceId": {**one_of_any_case(types), "description": "an instance type (any letter case)"},
            "instanceCount": {"type": "integer", "minimum": 1},
            "capacityType": {"enum": list(CAPACITY_TYPES), "default": CAPACITY_TYPE_SERVERLESS},
            "zones": {
                "type": "array",
                "items": {"enum": zone_list} if zone_list else {"type": "string"},
                "minItems": 1,
                "uniqueItems": True,
                "description": "in order of preference",
            },
        },
        ["instanceId", "instanceCount", "zones"],
        closed=True,
    )
    name = nullable({"type": "string", "minLength": 1, "maxLength": 63})
    claim_id = nullable(NAME)
    flat = _obj(
        {"id": claim_id, "name": name, "resources": resources, "status": {}, "organizationId": {}},
        ["resources"],
        closed=True,
    )
    spec = _obj(
        {"id": claim_id, "name": name, "resources": resources, "organizationId": {}}, ["resources"], closed=True
    )
    wrapped = _obj(
        {"id": claim_id, "spec": spec, "status": {}, "createdAt": {}, "updatedAt": {}}, ["spec"], closed=True
    )
    answer = _obj({"capacityClaim": {"anyOf": [flat, wrapped]}}, ["capacityClaim"], closed=True)
    out: Schema = {"anyOf": [flat, wrapped, answer], "description": "a capacity claim: reserved instances held for you"}
    if types and zone_list:
        resources_example = {"instanceId": types[0], "instanceCount": 1, "zones": [zone_list[0]]}
        out["examples"] = [{"name": "team-reserved", "resources": resources_example}]
    return out


def components(
    catalog: Catalog, zones: Iterable[str], claim_choices: tuple[Iterable[str], Iterable[str]] = ((), ())
) -> dict[str, Schema]:
    """Every schema the document names. `claim_choices`: the instance types and zones of the inventory
    capacity claims are checked against."""
    zone_list = sorted(zones)
    key = _obj(
        {
            "id": {"type": "string"},
            "gatewayId": {"type": "string"},
            "name": {"type": "string"},
            "prefix": {"type": "string", "description": "the key's first characters, to tell keys apart"},
            "createdAt": TIME,
            **{limit: {"type": "integer", "minimum": 1} for limit in KEY_LIMITS},
        },
        ["id", "gatewayId", "name", "prefix", "createdAt"],
    )
    deployment = _resource(
        _stored_deployment_spec(),
        _status({"generation": {"type": "integer"}, "observedGeneration": {"type": "integer"}}),
    )
    claim = _resource(
        _obj({"id": {"type": "string"}, "resources": {"type": "object"}}, ["id", "resources"]),
        _status({"allocatedInstances": {"type": "integer"}, "pendingInstances": {"type": "integer"}}),
    )
    gateway = _resource(
        _obj({"id": {"type": "string"}, "name": {"type": "string"}, "zones": STRINGS}, ["id", "name", "zones"]),
        _status({"endpoints": {**STRINGS, "description": "base URLs clients use"}}),
    )
    usage_replica = _obj(
        {"replicaId": {"type": "string"}, "minutes": {"type": "integer"}, "gpuMinutes": {"type": "integer"},
         "parked": {"type": "boolean"}},
        ["replicaId", "minutes", "gpuMinutes"],
    )  # fmt: skip
    usage_deployment = _obj(
        {"deploymentId": {"type": "string"}, "gpuMinutes": {"type": "integer"}, "parkedMinutes": {"type": "integer"},
         "replicas": {"type": "array", "items": usage_replica}},
        ["deploymentId", "gpuMinutes", "parkedMinutes", "replicas"],
    )  # fmt: skip
    return {
        "Error": _obj(
            {
                "error": _obj(
                    {
                        "code": {"type": "string", "examples": ["INVALID_ARGUMENT", "NOT_FOUND"]},
                        "message": {"type": "string", "description": "what is wrong and what to do"},
                        "field": {"type": "string", "description": "the field or parameter at fault"},
                    },
                    ["code", "message"],
                )
            },
            ["error"],
        ),
        "Health": _obj({"status": {"const": "ok"}}, ["status"]),
        "Metrics": {"type": "string", "description": "Prometheus text exposition"},
        "DeploymentSpec": {**deployment_schema(catalog), "examples": [DEPLOYMENT_EXAMPLE]},
        "Deployment": deployment,
        "DeploymentAnswer": _obj({"deployment": _ref("Deployment")}, ["deployment"]),
        "DeploymentList": _obj(
            {"deployments": {"type": "array", "items": _ref("Deployment")}, "nextPageToken": PAGE_TOKEN},
            ["deployments"],
        ),
        "Parameters": _obj(
            {
                "resourceParameters": {"type": "object"},
                "runtimeParameters": {"type": "object"},
                "zoneInstanceTypes": {"type": "object", "additionalProperties": STRINGS},
            },
            ["resourceParameters", "runtimeParameters"],
        ),
        "Logs": _obj(
            {
                "id": {"type": "string"},
                "replicas": {"type": "object", "additionalProperties": {"type": "string"}},
                "offsets": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
            ["id", "replicas", "offsets"],
        ),
        "CapacityClaimSpec": claim_schema(*claim_choices),
        "CapacityClaim": claim,
        "CapacityClaimAnswer": _obj({"capacityClaim": _ref("CapacityClaim")}, ["capacityClaim"]),
        "CapacityClaimList": _obj(
            {"capacityClaims": {"type": "array", "items": _ref("CapacityClaim")}, "nextPageToken": PAGE_TOKEN},
            ["capacityClaims"],
        ),
        "Usage": _obj(
            {
                "start": {"type": "number"},
                "end": {"type": "number"},
                "totalGpuMinutes": {"type": "integer"},
                "deployments": {"type": "array", "items": usage_deployment},
                "gateways": {
                    "type": "array",
                    "items": {"type": "object"},
                    "description": "requests and tokens per gateway and API key since the gateways started",
                },
            },
            ["start", "end", "totalGpuMinutes", "deployments"],
        ),
        "GatewaySpec": {**gateway_schema(zone_list), "examples": [GATEWAY_EXAMPLE]},
        "Gateway": gateway,
        "GatewayAnswer": _obj({"gateway": _ref("Gateway")}, ["gateway"]),
        "GatewayList": _obj({"gateways": {"type": "array", "items": _ref("Gateway")}}, ["gateways"]),
        "GatewayParameters": _obj({"zones": STRINGS}, ["zones"]),
        "ApiKeyRequest": _obj(
            {
                "name": nullable({"type": "string", "maxLength": 63, "description": "a label"}),
                **{
                    limit: nullable(
                        {"type": "integer", "minimum": 1, "maximum": MAX_KEY_LIMIT, "description": "per minute"}
                    )
                    for limit in KEY_LIMITS
                },
            },
            closed=True,
            examples=[KEY_EXAMPLE],
        ),
        "ApiKey": key,
        "ApiKeyAnswer": _obj({"apiKey": _ref("ApiKey")}, ["apiKey"]),
        "ApiKeyCreated": _obj(
            {"apiKey": _ref("ApiKey"), "key": {"type": "string", "description": "the key: shown only here"}},
            ["apiKey", "key"],
        ),
        "ApiKeyList": _obj({"apiKeys": {"type": "array", "items": _ref("ApiKey")}}, ["apiKeys"]),
    }


def _json(name: str) -> dict[str, Any]:
    media = "text/plain" if name == "Metrics" else "application/json"
    return {media: {"schema": _ref(name)}}


# What a create answers that other routes take: (create route) -> [(route, {parameter: where in the answer})].
# Published as OpenAPI links, so a client (and schemathesis' stateful phase) can follow create -> get/update/delete.
LINKS: dict[tuple[str, str], list[tuple[tuple[str, str], dict[str, str]]]] = {
    ("post", D): [
        ((m, p), {"deployment_id": "$response.body#/deployment/spec/id"})
        for m, p in (("get", f"{D}/{{deployment_id}}"), ("patch", f"{D}/{{deployment_id}}"),
                     ("delete", f"{D}/{{deployment_id}}"), ("get", f"{D}/{{deployment_id}}/logs"))
    ],
    ("post", C): [
        ((m, f"{C}/{{claim_id}}"), {"claim_id": "$response.body#/capacityClaim/spec/id"})
        for m in ("get", "patch", "delete")
    ],
    ("post", G): [
        ((m, p), {"gateway_id": "$response.body#/gateway/spec/id"})
        for m, p in (("get", f"{G}/{{gateway_id}}"), ("patch", f"{G}/{{gateway_id}}"), ("delete", f"{G}/{{gateway_id}}"),
                     ("post", f"{G}/{{gateway_id}}/keys"), ("get", f"{G}/{{gateway_id}}/keys"))
    ],
    ("post", f"{G}/{{gateway_id}}/keys"): [
        (("delete", f"{G}/{{gateway_id}}/keys/{{key_id}}"),
         {"gateway_id": "$response.body#/apiKey/gatewayId", "key_id": "$response.body#/apiKey/id"}),
    ],
}  # fmt: skip


def _links(openapi: dict[str, Any]) -> None:
    """Attach LINKS to the create routes' success answers, naming targets by their operationId."""
    paths = openapi["paths"]
    for (method, path), targets in LINKS.items():
        if method not in paths.get(path, {}):  # an app without that router (capacity claims)
            continue
        answer = next(iter(paths[path][method]["responses"].values()))
        links = {}
        for (target_method, target_path), parameters in targets:
            operation_id = openapi["paths"][target_path][target_method]["operationId"]
            name = f"{target_method.capitalize()}{target_path.rsplit('/', 1)[-1].strip('{}').title().replace('_', '')}"
            links[name] = {"operationId": operation_id, "parameters": parameters}
        answer["links"] = links


def _answers(doc: RouteDoc, path: str) -> dict[str, Any]:
    status, name = doc.ok
    answers: dict[str, Any] = {str(status): {"description": STATUS_TEXT[status], "content": _json(name)}}
    if status == 201 and path == D:
        answers[str(status)]["headers"] = {
            "Deprecation": {"schema": {"type": "string"}, "description": "the request used the old shape"},
            "Warning": {"schema": {"type": "string"}, "description": "how to write it now"},
            "Idempotent-Replayed": {"schema": {"type": "string"}, "description": "an earlier request's answer"},
        }
    errors = (*((401,) if doc.auth else ()), *doc.errors)
    for error in sorted(set(errors)):
        answers[str(error)] = {"description": STATUS_TEXT[error], "content": _json("Error")}
    return answers


ClaimChoices = Callable[[], tuple[Iterable[str], Iterable[str]]]


def document(
    app: FastAPI, catalog: Catalog, zones: Iterable[str], claim_choices: tuple[Iterable[str], Iterable[str]] = ((), ())
) -> dict[str, Any]:
    """The OpenAPI document of `app` for an installation with this catalog, these zones and (capacity
    claims) these instance types and zones."""
    description = (
        f"{app.description}\n\nEvery `/v1alpha1` route takes `Authorization: Bearer <token>`. Errors are "
        '`{"error": {"code", "message", "field"}}`; `x-tide-server-checks` lists the rules the schemas '
        "cannot state. Before any route, the connection limits may answer 408 (headers too slow), 431 "
        "(headers too large) or 503 (too many unfinished requests) and close (docs/LIMITS.md)."
    )
    openapi = get_openapi(
        title=app.title, version=app.version, openapi_version="3.1.0", description=description, routes=app.routes
    )
    schemas = components(catalog, zones, claim_choices)
    openapi["components"] = {
        "schemas": schemas,
        "securitySchemes": {BEARER: {"type": "http", "scheme": "bearer", "description": "the API token (`tide up` prints it)"}},
    }  # fmt: skip
    openapi["x-tide-server-checks"] = dict(SERVER_CHECKS)
    documented = {
        (m.lower(), r.path)
        for r in app.routes
        if isinstance(r, APIRoute) and r.include_in_schema
        for m in r.methods or ()
    }
    missing = documented - set(ROUTES)
    if missing:
        raise RuntimeError(f"routes without an entry in tide.api.openapi.ROUTES: {sorted(missing)}")
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            doc = ROUTES[(method, path)]
            operation["summary"] = doc.summary or operation.get("summary", "")
            operation["tags"] = [_tag(path)]
            operation["responses"] = _answers(doc, path)
            if doc.auth:
                operation["security"] = [{BEARER: []}]
            for name, schema, text in doc.headers:
                operation.setdefault("parameters", []).append(
                    {"name": name, "in": "header", "required": False, "schema": schema, "description": text}
                )
            for parameter in operation.get("parameters", []):
                _describe(parameter)
            if doc.body is not None:
                operation["requestBody"] = {"required": doc.body_required, "content": _json(doc.body)}
    _links(openapi)
    return openapi


INSTANT: Schema = {
    "anyOf": [
        {"type": "string", "pattern": r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"},
        {"type": "string", "format": "date-time"},
    ],
    "examples": ["2026-11-24T15:00:00Z", "1764000000"],
}
PARAMETERS: dict[str, tuple[str, Schema]] = {
    "pageSize": (
        f"items per page: 0 or absent for 100; more than {MAX_PAGE_SIZE} is lowered to it",
        {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]},
    ),
    "pageToken": ("the nextPageToken of the previous page", {"anyOf": [{"type": "string"}, {"type": "null"}]}),
    "start": ("from (epoch seconds or ISO-8601; default 24 h before end)", nullable_instant := {"anyOf": [INSTANT, {"const": ""}, {"type": "null"}]}),
    "end": ("until (epoch seconds or ISO-8601; default now)", nullable_instant),
    "tail": ("the last lines of each replica's log (1-10000; outside is brought within)", {"type": "integer"}),
    "after": ("with follow: REPLICA:OFFSET, repeated (the offsets of the previous answer)", {"type": "array", "items": {"type": "string", "pattern": r"^.+:[0-9]+$", "not": {"pattern": "\n"}}}),
}  # fmt: skip


def _tag(path: str) -> str:
    """The group an operation is listed under in /docs."""
    if not path.startswith(BASE):
        return "system"
    resource = path.removeprefix(BASE).split("/")[1]
    return {"capacityclaims": "capacity", "usage": "capacity"}.get(resource, resource)


def _describe(parameter: dict[str, Any]) -> None:
    """What the handlers accept beyond the parameter's type."""
    if parameter.get("in") == "query" and parameter["name"] in PARAMETERS:
        parameter["description"], parameter["schema"] = PARAMETERS[parameter["name"]]


def install(
    app: FastAPI,
    catalog: Callable[[], Catalog],
    zones: Callable[[], Iterable[str]],
    claim_choices: ClaimChoices = lambda: ((), ()),
) -> None:
    """Serve `document` at /openapi.json, built on each request (the catalog changes as engines and
    instances come and go)."""

    def openapi() -> dict[str, Any]:
        return document(app, catalog(), zones(), claim_choices())

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["ROUTES", "RouteDoc", "claim_schema", "components", "document", "install"]
