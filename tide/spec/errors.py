"""The one error type of the spec room: a bad field, named the way API.md names it."""

from __future__ import annotations


class SpecError(ValueError):
    """A deployment or claim field is invalid. `field` is the camelCase path, e.g. `autoscaling.max`."""

    def __init__(self, field: str, message: str, code: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "field": self.field}
