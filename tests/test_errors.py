"""The one field error: what users read names the field, and a document read inside another is re-rooted."""

from __future__ import annotations

import pickle

from tide.errors import FieldError


def test_what_users_read_names_the_field() -> None:
    error = FieldError("autoscaling.max", "must be >= 1, not 0")
    assert str(error) == "autoscaling.max: must be >= 1, not 0"
    assert error.to_dict() == {
        "code": "INVALID_ARGUMENT",
        "message": "autoscaling.max: must be >= 1, not 0",
        "field": "autoscaling.max",
    }
    assert str(FieldError("", "a deployment spec must be a JSON object")) == "a deployment spec must be a JSON object"


def test_under_re_roots_the_field_and_keeps_the_rest() -> None:
    error = FieldError("autoscaling.window", "must be >= 6, got 1", code="OUT_OF_RANGE")
    moved = error.under("deployments[1]")
    assert (moved.field, moved.message, moved.code) == (
        "deployments[1].autoscaling.window",
        error.message,
        "OUT_OF_RANGE",
    )
    assert FieldError("[0].id", "duplicate").under("types").field == "types[0].id"
    assert FieldError("", "must be a mapping").under("inventory").field == "inventory"
    copied = pickle.loads(pickle.dumps(moved))  # crosses process boundaries (the sim suite's workers) intact
    assert str(copied) == str(moved) and copied.field == moved.field
