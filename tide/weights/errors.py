"""Failures of the weights room that a user can act on: each names the object and says what to do."""

from __future__ import annotations

BUCKET_NOT_FOUND = "BUCKET_NOT_FOUND"
PATH_NOT_FOUND = "PATH_NOT_FOUND"
ACCESS_DENIED = "ACCESS_DENIED"
OBJECT_CHANGED = "OBJECT_CHANGED"
DISK_FULL = "DISK_FULL"
MISSING_FILE = "MISSING_FILE"
CORRUPT = "CORRUPT"  # bytes that do not match the ETag MD5 or the checksum manifest
UNAVAILABLE = "UNAVAILABLE"  # storage could not be reached; retrying may help


class WeightsError(Exception):
    """`code` is one of the constants above; `object_ref` names the bucket, path or object (e.g. s3://b/k)."""

    def __init__(self, code: str, message: str, object_ref: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.object_ref = object_ref

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
