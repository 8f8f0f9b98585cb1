"""Readers for documents parsed from YAML (declared inventories, simulator scenarios): their errors are
`tide.errors.FieldError`, naming the offending key by its path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tide.errors import FieldError


def require_mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FieldError(path, "must be a mapping")
    return value


def reject_unknown_keys(entry: Mapping[str, Any], allowed: set[str], path: str) -> None:
    for key in entry:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise FieldError(where, f"unknown key; allowed: {', '.join(sorted(allowed))}")
