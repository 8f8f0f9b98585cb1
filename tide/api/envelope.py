"""The hosted API's wire format, in one place: records -> response bodies, and the deprecation notice
for requests still in the old deployment shape.

Handlers build their answers only through this module, so the shape (envelope keys, RFC 3339 times,
condition fields) is one fact here (API.md, docs/API-NOTES.md).
"""

from __future__ import annotations

from typing import Any

from tide.spec import legacy_fields

# Until the release after this one; then the old shape gets a 400 that says how to write it now.
SUNSET = "the next release"


def deprecation_headers(raw: Any) -> dict[str, str]:
    """`Deprecation` and `Warning` headers when a deployment request used the old shape, else none."""
    used = legacy_fields(raw)
    if not used:
        return {}
    text = (
        f"deprecated deployment fields {', '.join(used)}: write model: {{name, bucket, path}} instead "
        f"(model.name is the name clients route by); the old shape is refused from {SUNSET}"
    )
    return {"Deprecation": "true", "Warning": f'299 tide "{text}"'}
