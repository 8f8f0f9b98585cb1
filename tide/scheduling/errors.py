"""Errors that name the offending field, so the API can answer `{"error": {..., "field": ...}}`."""

from __future__ import annotations


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
