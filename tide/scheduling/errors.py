"""Errors that name the offending field, so the API can answer `{"error": {..., "field": ...}}`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FieldError(ValueError):
    """Bad input, with the dotted path of the field at fault (API.md's camelCase paths)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InventoryError(FieldError):
    """A declared or constructed inventory is inconsistent."""


class ClaimError(FieldError):
    """A capacity claim spec breaks a rule of API.md."""


# Readers for documents parsed from YAML (declared inventories, simulator scenarios): `error` is the
# FieldError subclass the caller reports with.
def require_mapping(value: Any, path: str, error: type[FieldError]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise error(path, "must be a mapping")
    return value


def reject_unknown_keys(entry: Mapping[str, Any], allowed: set[str], path: str, error: type[FieldError]) -> None:
    for key in entry:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise error(where, f"unknown key; allowed: {', '.join(sorted(allowed))}")
