"""What the sync and async clients share: each operation as a `Call` (method, path, query, body, and the
key its answer is wrapped in), reading an answer, and the pure rules of `wait`. No I/O here."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx

from tide.sdk.errors import (
    CONNECTION_FAILED,
    DEADLINE_EXCEEDED,
    DEPLOYMENT_FAILED,
    UNREACHABLE,
    TideError,
    error_from_answer,
)
from tide.sdk.types import Deployment

BASE = "/v1alpha1/inference"
LIST_PAGE_SIZE = 1000  # the largest page the API serves: what `list()` asks for while it follows pages

Query = Mapping[str, str | int | list[str]]
WarningHandler = Callable[[str], None]


@dataclass(frozen=True)
class Call:
    """One request: `path` under the API's base path; `unwrap` the key the answer holds the result in
    (`deployment`, `capacityClaim`, ...), None for the whole body."""

    method: str
    path: str
    params: Query = field(default_factory=dict)
    body: Any = None
    unwrap: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return BASE + self.path


def segment(value: str) -> str:
    """An id or name as one path segment (a name typed by a user may hold anything)."""
    return quote(str(value), safe="")


def read_answer(call: Call, response: httpx.Response, on_warning: WarningHandler | None) -> Any:
    """The result of `call` from its answer; TideError for an error answer. A `Warning` header (e.g. a
    deprecated spec shape, and how to write it now) goes to `on_warning`."""
    try:
        body: Any = response.json() if response.content else None
    except (ValueError, UnicodeDecodeError):
        body = None
    if response.status_code >= 400:
        raise error_from_answer(response.status_code, body, response.text)
    if body is None and response.status_code != 204:
        raise TideError(
            response.status_code,
            f"HTTP_{response.status_code}",
            f"{call.method} {call.url}: the answer is not JSON: {response.text.strip()[:200]!r}",
        )
    if on_warning is not None and "warning" in response.headers:
        on_warning(response.headers["warning"])
    return body[call.unwrap] if call.unwrap is not None else body


def connection_error(call: Call, server: str, exc: Exception) -> TideError:
    """The TideError for a request that got no answer."""
    if isinstance(exc, httpx.ConnectError):
        return TideError(None, UNREACHABLE, f"cannot reach the Tide API at {server} ({exc or 'refused'})")
    return TideError(
        None,
        CONNECTION_FAILED,
        f"{call.method} {call.url}: the connection to the Tide API at {server} failed ({type(exc).__name__}: "
        f"{exc or 'no detail'}); the request may or may not have been applied",
    )


def page_params(page_size: int | None, page_token: str | None) -> dict[str, str | int | list[str]]:
    params: dict[str, str | int | list[str]] = {}
    if page_size is not None:
        params["pageSize"] = page_size
    if page_token:
        params["pageToken"] = page_token
    return params


def instant(value: float | str | datetime | None) -> str | None:
    """A time for `/usage`: epoch seconds, an ISO-8601 string, or an aware datetime (naive means UTC)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat() if value.tzinfo else value.isoformat() + "Z"
    return repr(float(value))


# -- the operations ------------------------------------------------------------------------------------


def deployments_page(page_size: int | None = None, page_token: str | None = None) -> Call:
    return Call("GET", "/deployments", page_params(page_size, page_token))


def get_deployment(deployment_id: str) -> Call:
    return Call("GET", f"/deployments/{segment(deployment_id)}", unwrap="deployment")


def create_deployment(spec: Mapping[str, Any], idempotency_key: str | None = None) -> Call:
    headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
    return Call("POST", "/deployments", body=dict(spec), unwrap="deployment", headers=headers)


def update_deployment(deployment_id: str, spec: Mapping[str, Any]) -> Call:
    return Call("PATCH", f"/deployments/{segment(deployment_id)}", body=dict(spec), unwrap="deployment")


def delete_deployment(deployment_id: str) -> Call:
    return Call("DELETE", f"/deployments/{segment(deployment_id)}", unwrap="deployment")


def deployment_parameters() -> Call:
    return Call("GET", "/deployments/parameters")


def deployment_logs(deployment_id: str, tail: int, after: Mapping[str, int] | None) -> Call:
    params: dict[str, str | int | list[str]] = {"tail": tail}
    if after is not None:
        params["follow"] = "true"
        params["after"] = [f"{replica}:{offset}" for replica, offset in after.items()]
    return Call("GET", f"/deployments/{segment(deployment_id)}/logs", params)


def claims_page(page_size: int | None = None, page_token: str | None = None) -> Call:
    return Call("GET", "/capacityclaims", page_params(page_size, page_token))


def get_claim(claim_id: str) -> Call:
    return Call("GET", f"/capacityclaims/{segment(claim_id)}", unwrap="capacityClaim")


def create_claim(spec: Mapping[str, Any]) -> Call:
    return Call("POST", "/capacityclaims", body=dict(spec), unwrap="capacityClaim")


def update_claim(claim_id: str, spec: Mapping[str, Any]) -> Call:
    return Call("PATCH", f"/capacityclaims/{segment(claim_id)}", body=dict(spec), unwrap="capacityClaim")


def delete_claim(claim_id: str) -> Call:
    return Call("DELETE", f"/capacityclaims/{segment(claim_id)}", unwrap="capacityClaim")


def list_gateways() -> Call:
    return Call("GET", "/gateways", unwrap="gateways")


def get_gateway(gateway_id: str) -> Call:
    return Call("GET", f"/gateways/{segment(gateway_id)}", unwrap="gateway")


def create_gateway(spec: Mapping[str, Any]) -> Call:
    return Call("POST", "/gateways", body=dict(spec), unwrap="gateway")


def update_gateway(gateway_id: str, spec: Mapping[str, Any]) -> Call:
    return Call("PATCH", f"/gateways/{segment(gateway_id)}", body=dict(spec), unwrap="gateway")


def delete_gateway(gateway_id: str) -> Call:
    return Call("DELETE", f"/gateways/{segment(gateway_id)}", unwrap="gateway")


def gateway_parameters() -> Call:
    return Call("GET", "/gateways/parameters")


def create_key(
    gateway_id: str, name: str | None, requests_per_minute: int | None, tokens_per_minute: int | None = None
) -> Call:
    body: dict[str, Any] = {"name": name} if name else {}
    if requests_per_minute is not None:
        body["requestsPerMinute"] = requests_per_minute
    if tokens_per_minute is not None:
        body["tokensPerMinute"] = tokens_per_minute
    return Call("POST", f"/gateways/{segment(gateway_id)}/keys", body=body)


def list_keys(gateway_id: str) -> Call:
    return Call("GET", f"/gateways/{segment(gateway_id)}/keys", unwrap="apiKeys")


def revoke_key(gateway_id: str, key_id: str) -> Call:
    return Call("DELETE", f"/gateways/{segment(gateway_id)}/keys/{segment(key_id)}", unwrap="apiKey")


def usage(start: float | str | datetime | None, end: float | str | datetime | None) -> Call:
    params = {k: v for k, v in (("start", instant(start)), ("end", instant(end))) if v is not None}
    return Call("GET", "/usage", params)


def request_kwargs(call: Call, token: str | None) -> dict[str, Any]:
    """httpx's `request(**...)` arguments for `call`."""
    headers = dict(call.headers)
    if token:
        headers["authorization"] = f"Bearer {token}"
    kwargs: dict[str, Any] = {"params": dict(call.params), "headers": headers}
    if call.body is not None:
        kwargs["content"] = json.dumps(call.body).encode()
        headers["content-type"] = "application/json"
    return kwargs


# -- wait ----------------------------------------------------------------------------------------------

Verdict = Literal["reached", "failed", "waiting"]


def wait_verdict(item: Deployment, state: str) -> Verdict:
    """Whether a wait for `state` is over. READY counts once a replica serves, or when none is wanted
    (scaled to zero, disabled): there is nothing more to wait for. FAILED ends a wait for any other state."""
    status = item.get("status") or {}
    current = status.get("status")
    serving = status.get("readyReplicas", 0) > 0 or status.get("desiredReplicas") == 0
    if current == state and (state != "STATUS_READY" or serving):
        return "reached"
    if current == "STATUS_FAILED" and state != current:
        return "failed"
    return "waiting"


def progress_key(item: Deployment) -> tuple[Any, ...]:
    """What a waiting user wants to hear about when it changes: the state, ready/desired, each replica's
    phase and progress (in 10 % steps), and the first condition."""
    status = item.get("status") or {}
    conditions = status.get("conditions") or []
    return (
        status.get("status"),
        status.get("readyReplicas", 0),
        status.get("desiredReplicas", 0),
        tuple((r.get("id"), r.get("phase"), _tenth(r.get("progress"))) for r in status.get("replicas") or []),
        conditions[0].get("message") if conditions else None,
    )


def _tenth(progress: Any) -> int | None:
    percent = progress.get("percent") if isinstance(progress, dict) else None
    return int(percent // 10) if isinstance(percent, int | float) else None


def wait_error(item: Deployment, state: str, verdict: Verdict, waited_s: float) -> TideError:
    status = item.get("status") or {}
    deployment_id = item["spec"]["id"]
    conditions = status.get("conditions") or []
    why = f": {conditions[0]['message']}" if conditions else ""
    if verdict == "failed":
        return TideError(None, DEPLOYMENT_FAILED, f"deployment {deployment_id} failed{why}", resource=item)
    return TideError(
        None,
        DEADLINE_EXCEEDED,
        f"deployment {deployment_id} is {status.get('status')} after {waited_s:.0f} s, not {state}{why}",
        resource=item,
    )
