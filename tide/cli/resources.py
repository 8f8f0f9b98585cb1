"""`tide apply -f` and `tide delete`: the commands that take any kind of resource.

A file holds one or more YAML (or JSON) documents; each is a deployment unless its `kind:` says
`CapacityClaim` (also `claim`). A document is the spec as the API takes it, or what `tide get ... -o yaml`
printed (`{deployment: {spec, status}}`, `{capacityClaim: ...}` or `{spec, status}`), so a fetched resource
can be edited and applied again. An existing resource (same `id`, else the same `name`) is updated with the
whole spec; a new one is created.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from tide.cli.client import client, error_text, resource_id
from tide.sdk import Client, TideError

DEPLOYMENT = "Deployment"
CAPACITY_CLAIM = "CapacityClaim"
_KINDS = {"deployment": DEPLOYMENT, "capacityclaim": CAPACITY_CLAIM, "claim": CAPACITY_CLAIM}
_ENVELOPES = {"deployment": DEPLOYMENT, "capacityClaim": CAPACITY_CLAIM}  # what `get -o yaml` prints
_LABELS = {DEPLOYMENT: "deployment", CAPACITY_CLAIM: "capacityclaim"}


@dataclass(frozen=True)
class Document:
    path: str
    index: int  # 1-based, in its file
    kind: str
    spec: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.path} document {self.index} ({self.spec.get('name') or self.spec.get('id') or '?'})"


def parse_document(raw: dict[str, Any], path: str, index: int) -> Document:
    """The kind and spec of one document; ClickException naming the document and `kind` when unknown."""
    envelope = next((k for k in _ENVELOPES if isinstance(raw.get(k), dict) and len(raw) == 1), None)
    if envelope is not None:
        kind, inner = _ENVELOPES[envelope], raw[envelope]
    else:
        given = raw.get("kind", DEPLOYMENT)
        kind = _KINDS.get(str(given).replace("_", "").replace("-", "").lower(), "")
        if not kind:
            raise click.ClickException(
                f"{path} document {index}: kind: {given!r} is not a kind Tide applies; use Deployment (the default) "
                "or CapacityClaim"
            )
        inner = {k: v for k, v in raw.items() if k != "kind"}
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
            raise click.ClickException(f"{path} document {index}: must be a mapping (a deployment or capacity claim)")
        documents.append(parse_document(raw, path, index))
    return documents


class Applier:
    """Creates or updates documents, listing each kind's existing resources once, when first needed."""

    def __init__(self, api: Client) -> None:
        self.api = api
        self.existing: dict[str, list[dict[str, Any]]] = {}

    def _existing(self, kind: str) -> list[dict[str, Any]]:
        if kind not in self.existing:
            items = self.api.deployments.list() if kind == DEPLOYMENT else self.api.claims.list()
            self.existing[kind] = [dict(i) for i in items]
        return self.existing[kind]

    def apply(self, doc: Document) -> str:
        """Create or update; `KIND/ID created|configured|unchanged`."""
        existing = self._existing(doc.kind)
        target = match_existing(doc, existing)
        label = _LABELS[doc.kind]
        resources = self.api.deployments if doc.kind == DEPLOYMENT else self.api.claims
        if target is None:
            created = dict(resources.create(doc.spec))
            existing.append(created)
            return f"{label}/{resource_id(created)} created"
        before = next(item for item in existing if resource_id(item) == target)
        updated = dict(resources.update(target, {**doc.spec, "id": target}))
        existing[existing.index(before)] = updated
        return f"{label}/{target} {'configured' if _changed(doc.kind, before, updated) else 'unchanged'}"


def _changed(kind: str, before: dict[str, Any], after: dict[str, Any]) -> bool:
    if kind == DEPLOYMENT:  # the generation grows with each change of the spec
        return bool(before["status"].get("generation") != after["status"].get("generation"))
    return bool(before["spec"] != after["spec"])


def match_existing(doc: Document, existing: list[dict[str, Any]]) -> str | None:
    """The id of the resource `doc` updates: the one with its `id`, else the one with its `name`; None: new."""
    if doc.spec.get("id"):
        wanted = str(doc.spec["id"])
        return wanted if any(resource_id(item) == wanted for item in existing) else None
    name = doc.spec.get("name")
    if not name:
        if doc.kind == CAPACITY_CLAIM:
            raise click.ClickException(
                "a capacity claim to apply needs an id or a name, so that applying the file again updates it "
                "instead of claiming more instances"
            )
        return None  # the API names the missing field
    named = [resource_id(item) for item in existing if item["spec"].get("name") == name]
    if len(named) > 1:
        raise click.ClickException(f"several {_LABELS[doc.kind]}s are named {name!r} ({', '.join(named)}): add `id:`")
    return named[0] if named else None


@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True, help="YAML/JSON file(s), or - for stdin.")
@click.pass_context
def apply(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Create or update deployments and capacity claims from files: YAML documents that mirror the API's
    JSON spec, separated by ---, each a deployment unless it says `kind: CapacityClaim`."""
    documents = [doc for path in files for doc in load_documents(path)]
    applier = Applier(client(ctx))
    for done, doc in enumerate(documents):
        try:
            click.echo(applier.apply(doc))
        except (click.ClickException, TideError) as exc:
            message = exc.message if isinstance(exc, click.ClickException) else error_text(exc)
            applied = f"{done} of {len(documents)} documents applied before it" if done else "nothing applied"
            raise click.ClickException(f"{doc.label}: {message}\n{applied}") from None


def _delete_deployment(api: Client, name: str) -> str:
    return f"deployment/{resource_id(api.deployments.delete(name))} deleting"


def _delete_claim(api: Client, name: str) -> str:
    """By id; or by name when exactly one claim has it."""
    try:
        deleted = api.claims.delete(name)
    except TideError as exc:
        named = (
            [resource_id(c) for c in api.claims.list() if c["spec"].get("name") == name] if exc.status == 404 else []
        )
        if len(named) > 1:
            raise click.ClickException(
                f"several capacity claims are named {name!r} ({', '.join(named)}): use an id"
            ) from None
        if not named:
            raise
        deleted = api.claims.delete(named[0])
    return f"capacityclaim/{resource_id(deleted)} deleted"


_DELETERS: dict[str, Callable[[Client, str], str]] = {
    "deployment": _delete_deployment,
    "deployments": _delete_deployment,
    "claim": _delete_claim,
    "claims": _delete_claim,
    "capacityclaim": _delete_claim,
    "capacityclaims": _delete_claim,
}


@click.command()
@click.argument("kind_or_name")
@click.argument("name", required=False)
@click.pass_context
def delete(ctx: click.Context, kind_or_name: str, name: str | None) -> None:
    """Delete a deployment or a capacity claim.

    `tide delete NAME` or `tide delete deployment NAME`: the deployment's replicas finish in-flight
    requests first. `tide delete claim ID` (or its name): the claim's instances are released."""
    if name is None:
        kind, name = "deployment", kind_or_name
    else:
        kind = kind_or_name.lower()
        if kind not in _DELETERS:
            raise click.BadParameter(f"{kind_or_name!r}: use deployment or claim", param_hint="KIND")
    click.echo(_DELETERS[kind](client(ctx), name))
