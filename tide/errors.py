"""The one error type for bad input: a field, named the way API.md names it, and what is wrong with it.

Every room that validates input (spec, autoscale, scheduling, sim, api, the CLI) raises `FieldError`; a
caller that reads a field from inside a larger document re-roots the error under its path with `under`
rather than wrapping it in another type. Imports nothing of tide.
"""

from __future__ import annotations

from typing import Self


class FieldError(ValueError):
    """`field` is the camelCase path at fault (`autoscaling.max`, `deployments[1].priority`; "" for the
    whole document); `message` says what is wrong without naming the field (`must be >= 1, not 0`); str()
    is the two together (`autoscaling.max: must be >= 1, not 0`), which is what users see."""

    def __init__(self, field: str, message: str, code: str = "INVALID_ARGUMENT") -> None:
        super().__init__(field, message, code)
        self.field = field
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def to_dict(self) -> dict[str, str]:
        """The body of the API's `{"error": ...}`: the message names the field."""
        return {"code": self.code, "message": str(self), "field": self.field}

    def under(self, prefix: str) -> Self:
        """The same error, its field read from inside `prefix`: `autoscaling.max` under `deployments[1]` is
        `deployments[1].autoscaling.max`; `[0].id` under `types` is `types[0].id`; "" becomes `prefix`."""
        if not self.field:
            field = prefix
        elif not prefix or self.field.startswith("["):
            field = f"{prefix}{self.field}"
        else:
            field = f"{prefix}.{self.field}"
        return type(self)(field, self.message, self.code)
