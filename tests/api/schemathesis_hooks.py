"""Schemathesis hooks for tests/api/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

`positive_data_acceptance_within_server_checks` is the built-in `positive_data_acceptance` (a request valid
by the document must not get a 400), narrowed by exactly what the document publishes: a 400 whose
`error.field` is a rule listed in the document's `x-tide-server-checks` (one field against another, against
the installation, or a range on a duration written as text: rules JSON Schema cannot state). Every other
400 to a schema-valid request still fails. The test runs it in place of the built-in one.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance


def _server_checked_field(response: Any, case: Any) -> bool:
    if response.status_code not in (400, 422):  # 422: only POST /deployments, an Idempotency-Key reused
        return False
    try:
        field = response.json()["error"]["field"]
    except (ValueError, KeyError, TypeError):
        return False
    listed = case.operation.schema.raw_schema.get("x-tide-server-checks", {})
    return isinstance(field, str) and re.sub(r"\[\d+\]", "", field) in listed


@schemathesis.check
def positive_data_acceptance_within_server_checks(ctx: Any, response: Any, case: Any) -> bool | None:
    if _server_checked_field(response, case):
        return None
    return positive_data_acceptance(ctx, response, case)
