"""The gateway's OpenAPI document: the OpenAI-compatible routes it forwards, `/v1/models`, health (pure).

Built from the gateway's own tables (`FORWARDED_ROUTES`, the statuses it answers in `errors.REASONS`, the
error shape of `errors.error_payload`), so it lists what the gateway serves and nothing else. The gateway
answers `GET /openapi.json` with it; the management API's `/docs` shows it next to its own document.
Request bodies are the OpenAI API's: the gateway reads only `model` (body-based routing) and forwards the
rest unchanged, so the document states that much and leaves the other fields open.
"""

from __future__ import annotations

from typing import Any

from tide.gateway.errors import REASONS
from tide.gateway.paths import FORWARDED_ROUTES

OPENAPI_PATH = b"/openapi.json"
ERROR_REF = {"$ref": "#/components/schemas/Error"}

# Why the gateway answers each status itself (a replica's own answers are forwarded unchanged).
STATUS_TEXT = {
    400: "The body is not JSON, names no model, or the path has '.' segments",
    401: "No API key, or not one this gateway accepts",
    404: "No such model, or a route the gateway does not serve",
    405: "The route does not take this method (the `Allow` header names the one it takes)",
    408: "The request head did not arrive in time",
    413: "The body is larger than the gateway accepts",
    429: "The API key's requests per minute are used up, or the deployment's queue is full (see Retry-After)",
    431: "Too many or too large request headers",
    502: "The replica failed while answering",
    503: "No replica can answer: the deployment is failing, out of rotation, or its queue wait ran out",
    504: "The replica did not answer in time",
}
FORWARDED_ERRORS = (400, 401, 404, 405, 408, 413, 429, 431, 502, 503, 504)
OWN_ERRORS = (405, 408, 431)  # /v1/models and health: no key, no body, no replica


def _error_answers(statuses: tuple[int, ...]) -> dict[str, Any]:
    retry = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait before retrying"}}
    out: dict[str, Any] = {}
    for status in statuses:
        out[str(status)] = {
            "description": STATUS_TEXT[status],
            "content": {"application/json": {"schema": ERROR_REF}},
            **({"headers": retry} if status in (429, 503) else {}),
        }
    return out


def _model_parameter() -> dict[str, Any]:
    return {
        "name": "model",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "path-based routing: the model name as the first path segment",
    }


def document(secured: bool = True, version: str = "v1") -> dict[str, Any]:
    """The gateway's OpenAPI 3.1 document. `secured`: whether the gateway that answers needs a key (an
    apiKeyAuth gateway, or `--api-keys-file`); an open gateway documents no security and no 401."""
    assert set(FORWARDED_ERRORS) <= set(REASONS), "every documented status is one the gateway sends"
    model = {"type": "string", "description": "the model name a deployment serves"}
    path_body = {
        "type": "object",
        "properties": {"model": model},
        "additionalProperties": True,
        "description": "the OpenAI API's request; the gateway forwards it unchanged",
    }
    # Without a model in the path, the body's `model` routes (or a routing header, x-tide-model by default).
    body = {**path_body, "required": ["model"]}
    security: list[dict[str, list[str]]] = [{"bearer": []}] if secured else []
    errors = tuple(s for s in FORWARDED_ERRORS if secured or s != 401)
    forwarded = {
        "summary": "",
        "security": security,
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {
            "200": {
                "description": "The replica's answer, forwarded (JSON, or text/event-stream when `stream` is true)",
                "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {}},
            },
            **_error_answers(errors),
        },
    }
    models = {
        "security": security,
        "responses": {
            "200": {
                "description": "The models this gateway serves",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ModelList"}}},
            },
            **_error_answers(tuple(s for s in (401, 404, 429, *OWN_ERRORS) if secured or s != 401)),
        },
    }
    paths: dict[str, Any] = {}
    for route in sorted(r.decode() for r in FORWARDED_ROUTES):
        paths[f"/v1{route}"] = {"post": {**forwarded, "summary": f"Forwarded to a replica's /v1{route}"}}
        by_path = {"required": True, "content": {"application/json": {"schema": path_body}}}
        paths[f"/{{model}}/v1{route}"] = {
            "post": {
                **forwarded,
                "summary": f"Path-based routing: /v1{route}",
                "parameters": [_model_parameter()],
                "requestBody": by_path,
            }
        }
    paths["/v1/models"] = {"get": {**models, "summary": "List models"}}
    paths["/{model}/v1/models"] = {"get": {**models, "summary": "One model", "parameters": [_model_parameter()]}}
    health = {
        "summary": "The gateway is up",
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
            },
            **_error_answers(OWN_ERRORS),
        },
    }
    paths["/health"] = {"get": health}
    paths["/healthz"] = {"get": health}
    model_card = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "model"},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
        },
        "required": ["id", "object"],
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tide gateway",
            "version": version,
            "description": "OpenAI-compatible endpoint: route by the body's `model`, a header, or the first path "
            "segment (per gateway, GET /v1alpha1/inference/gateways on the management API).",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["message", "type"],
                            "properties": {
                                "message": {"type": "string"},
                                "type": {"type": "string", "examples": ["invalid_request_error", "server_error"]},
                                "param": {"type": ["string", "null"]},
                                "code": {"type": ["string", "null"], "examples": ["model_not_found", "queue_full"]},
                            },
                        }
                    },
                },
                "ModelList": {
                    "type": "object",
                    "required": ["object", "data"],
                    "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": model_card}},
                },
                "Health": {"type": "object", "properties": {"status": {"const": "ok"}}, "required": ["status"]},
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API key of the gateway (apiKeyAuth), or the management API's token",
                }
            },
        },
    }
