"""What a bucket is to the rest of the room: list objects, read a byte range into a file, upload."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

BytesCallback = Callable[[int], None]


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # full key inside the bucket
    rel: str  # path relative to the weights directory: where it lands in the cache entry
    size: int
    version: str  # ETag (S3) or "size-mtime_ns" (file bucket): a changed object gets a new version

    @property
    def md5(self) -> str | None:
        """The ETag when it is a plain MD5 (single-part upload); multipart ETags ("...-N") are not."""
        tag = self.version.strip('"')
        if len(tag) == 32 and all(c in "0123456789abcdef" for c in tag.lower()):
            return tag.lower()
        return None


class Bucket(Protocol):
    name: str
    location: str  # where the bucket lives ("file:/root" or "s3:http://host:port"): part of cache keys

    def uri(self, key: str = "") -> str:
        """The object as a user writes it: s3://bucket/key or file:///root/bucket/key."""
        ...

    def list(self, prefix: str) -> list[ObjectInfo]:
        """All objects under `prefix/`, with `rel` relative to it. Raises WeightsError."""
        ...

    def read_into(self, obj: ObjectInfo, start: int, end: int, fd: int, on_bytes: BytesCallback) -> None:
        """Write bytes [start, end) of `obj` into `fd` at offset `start`; raise OBJECT_CHANGED when the
        object is no longer the listed version."""
        ...

    def upload(self, local: Path, key: str, on_bytes: BytesCallback) -> None: ...


def select(objects: Sequence[ObjectInfo], allow: Sequence[str], ignore: Sequence[str]) -> list[ObjectInfo]:
    """Filter by glob patterns on the relative path (Hugging Face allow/ignore semantics: allow none = all)."""

    def matches(rel: str, patterns: Sequence[str]) -> bool:
        return any(fnmatch.fnmatchcase(rel, p) for p in patterns)

    chosen = [o for o in objects if (not allow or matches(o.rel, allow)) and not matches(o.rel, ignore)]
    return sorted(chosen, key=lambda o: o.rel)
