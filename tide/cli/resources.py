"""`tide apply -f` and `tide delete`: the commands that take any kind of resource.

A file holds one or more YAML (or JSON) documents; each is a deployment unless its `kind:` says
`CapacityClaim` (also `claim`) or `Gateway`. A document is the spec as the API takes it, or what `tide get
... -o yaml` printed (`{deployment: {spec, status}}`, `{capacityClaim: ...}`, `{gateway: ...}` or `{spec,
status}`), so a fetched resource can be edited and applied again. An existing resource (same `id`, else the same `name`) is updated with the
whole spec; a new one is created.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import click
import yaml

from tide.cli.client import client, error_text, resource_id
from tide.sdk import Client, TideError


class Resources(Protocol):
    """What `apply` and `delete` use of an SDK namespace (`client.deployments`, `.claims`, `.gateways`)."""

    def create(self, spec: Mapping[str, Any]) -> Any: ...

    def update(self, resource_id: str, spec: Mapping[str, Any], /) -> Any: ...

    def delete(self, resource_id: str, /) -> Any: ...

    def list(self) -> Sequence[Any]: ...


@dataclass(frozen=True)
class Kind:
    name: str  # as `kind:` says it
    label: str  # as the output says it: `deployment/ID created`
    envelope: str  # the key `tide get ... -o yaml` wraps one in
    resources: Callable[[Client], Resources]
    needs_a_name: bool  # applying it twice without id or name would make two


DEPLOYMENT = Kind("Deployment", "deployment", "deployment", lambda api: api.deployments, needs_a_name=False)
CAPACITY_CLAIM = Kind("CapacityClaim", "capacityclaim", "capacityClaim", lambda api: api.claims, needs_a_name=True)
GATEWAY = Kind("Gateway", "gateway", "gateway", lambda api: api.gateways, needs_a_name=False)
KINDS = (DEPLOYMENT, CAPACITY_CLAIM, GATEWAY)
_BY_NAME = {k.name.lower(): k for k in KINDS} | {"claim": CAPACITY_CLAIM}


@dataclass(frozen=True)
class Document:
    path: str
    index: int  # 1-based, in its file
    kind: Kind
    spec: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.path} document {self.index} ({self.spec.get('name') or self.spec.get('id') or '?'})"


def parse_document(raw: dict[str, Any], path: str, index: int) -> Document:
    """The kind and spec of one document; ClickException naming the document and `kind` when unknown."""
    envelope = next((k for k in KINDS if isinstance(raw.get(k.envelope), dict) and len(raw) == 1), None)
    if envelope is not None:
        kind, inner = envelope, raw[envelope.envelope]
    else:
        given = raw.get("kind", DEPLOYMENT.name)
        found = _BY_NAME.get(str(given).replace("_", "").replace("-", "").lower())
        if found is None:
            raise click.ClickException(
                f"{path} document {index}: kind: {given!r} is not a kind Tide applies; use Deployment (the default), "
                "CapacityClaim or Gateway"
            )
        kind, inner = found, {k: v for k, v in raw.items() if k != "kind"}
    if isinstance(inner.get("spec"), dict):
        spec = dict(inner["spec"])
    else:
        spec = {k: v for k, v in inner.items() if k != "status"}
    return Document(path, index, kind, spec)


def load_documents(path: str) -> list[Document]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        raws = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{path} is not valid YAML: {exc}") from None
    documents = []
    for index, raw in enumerate(raws, 1):
        if not isinstance(raw, dict):
            raise click.ClickException(
                f"{path} document {index}: must be a mapping (a deployment, capacity claim or gateway)"
            )
        documents.append(parse_document(raw, path, index))
    return documents


class Applier:
    """Creates or updates documents, listing each kind's existing resources once, when first needed."""

    def __init__(self, api: Client) -> None:
        self.api = api
        self.existing: dict[str, list[dict[str, Any]]] = {}

    def _existing(self, kind: Kind) -> list[dict[str, Any]]:
        if kind.name not in self.existing:
            self.existing[kind.name] = [dict(item) for item in kind.resources(self.api).list()]
        return self.existing[kind.name]

    def apply(self, doc: Document) -> str:
        """Create or update; `KIND/ID created|configured|unchanged`."""
        existing = self._existing(doc.kind)
        target = match_existing(doc, existing)
        resources = doc.kind.resources(self.api)
        if target is None:
            created = dict(resources.create(doc.spec))
            existing.append(created)
            return f"{doc.kind.label}/{resource_id(created)} created"
        before = next(item for item in existing if resource_id(item) == target)
        updated = dict(resources.update(target, {**doc.spec, "id": target}))
        existing[existing.index(before)] = updated
        return f"{doc.kind.label}/{target} {'configured' if _changed(before, updated) else 'unchanged'}"


def _changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    if "generation" in before["status"]:  # a deployment's grows with each change of its spec
        return bool(before["status"]["generation"] != after["status"].get("generation"))
    return bool(before["spec"] != after["spec"])


def match_existing(doc: Document, existing: list[dict[str, Any]]) -> str | None:
    """The id of the resource `doc` updates: the one with its `id`, else the one with its `name`; None: new."""
    if doc.spec.get("id"):
        wanted = str(doc.spec["id"])
        return wanted if any(resource_id(item) == wanted for item in existing) else None
    name = doc.spec.get("name")
    if not name:
        if doc.kind.needs_a_name:
            raise click.ClickException(
                "a capacity claim to apply needs an id or a name, so that applying the file again updates it "
                "instead of claiming more instances"
            )
        return None  # the API names the missing field
    named = [resource_id(item) for item in existing if item["spec"].get("name") == name]
    if len(named) > 1:
        raise click.ClickException(f"several {doc.kind.label}s are named {name!r} ({', '.join(named)}): add `id:`")
    return named[0] if named else None


@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True, help="YAML/JSON file(s), or - for stdin.")
@click.pass_context
def apply(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Create or update deployments, capacity claims and gateways from files.

    YAML documents that mirror the API's JSON spec, separated by ---, each a deployment unless it says
    `kind: CapacityClaim` or `kind: Gateway`. An existing resource (same id, else same name) is updated
    with the whole spec."""
    documents = [doc for path in files for doc in load_documents(path)]
    applier = Applier(client(ctx))
    for done, doc in enumerate(documents):
        try:
            click.echo(applier.apply(doc))
        except (click.ClickException, TideError) as exc:
            message = exc.message if isinstance(exc, click.ClickException) else error_text(exc)
            applied = f"{done} of {len(documents)} documents applied before it" if done else "nothing applied"
            raise click.ClickException(f"{doc.label}: {message}\n{applied}") from None


def _delete(api: Client, kind: Kind, name: str) -> str:
    """By id; or by name when exactly one has it (the API does that itself for deployments)."""
    resources = kind.resources(api)
    try:
        deleted = resources.delete(name)
    except TideError as exc:
        named = [resource_id(r) for r in resources.list() if r["spec"].get("name") == name] if exc.status == 404 else []
        if len(named) > 1:
            raise click.ClickException(
                f"several {kind.label}s are named {name!r} ({', '.join(named)}): use an id"
            ) from None
        if not named:
            raise
        deleted = resources.delete(named[0])
    return f"{kind.label}/{resource_id(deleted)} {'deleting' if kind is DEPLOYMENT else 'deleted'}"


_DELETE_KINDS = _BY_NAME | {f"{name}s": kind for name, kind in _BY_NAME.items()}


@click.command()
@click.argument("kind_or_name")
@click.argument("name", required=False)
@click.pass_context
def delete(ctx: click.Context, kind_or_name: str, name: str | None) -> None:
    """Delete a deployment, a capacity claim or a gateway.

    `tide delete NAME` or `tide delete deployment NAME`: the deployment's replicas finish in-flight
    requests first. `tide delete claim ID` (or its name): the claim's instances are released.
    `tide delete gateway ID`: only once no deployment names it."""
    if name is None:
        kind, name = DEPLOYMENT, kind_or_name
    else:
        found = _DELETE_KINDS.get(kind_or_name.lower())
        if found is None:
            raise click.BadParameter(f"{kind_or_name!r}: use deployment, claim or gateway", param_hint="KIND")
        kind = found
    click.echo(_delete(client(ctx), kind, name))
