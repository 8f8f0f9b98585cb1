"""Where buckets live: a local directory of buckets and/or an S3-protocol endpoint, and which one wins."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tide.weights.errors import BUCKET_NOT_FOUND, WeightsError
from tide.weights.file_bucket import FileBucket
from tide.weights.objects import Bucket


@dataclass(frozen=True)
class WeightsSource:
    """A weights directory: `path` inside `bucket`, filtered by glob patterns on the relative file path."""

    bucket: str
    path: str
    allow_patterns: tuple[str, ...] = ()
    ignore_patterns: tuple[str, ...] = ()

    @property
    def prefix(self) -> str:
        return self.path.strip("/")


@dataclass(frozen=True)
class StorageConfig:
    local_root: Path | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_enabled: bool | None = None  # None: on when an endpoint or credentials are configured

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> StorageConfig:
        """TIDE_BUCKETS_DIR; TIDE_S3_ENDPOINT_URL or AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL;
        AWS_REGION or AWS_DEFAULT_REGION; AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY. Keyword overrides win
        (None means "not given")."""
        e = os.environ if env is None else env
        root = e.get("TIDE_BUCKETS_DIR")
        values: dict[str, Any] = {
            "local_root": Path(root).expanduser() if root else None,
            "s3_endpoint_url": e.get("TIDE_S3_ENDPOINT_URL")
            or e.get("AWS_ENDPOINT_URL_S3")
            or e.get("AWS_ENDPOINT_URL"),
            "s3_region": e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION"),
            "s3_access_key_id": e.get("AWS_ACCESS_KEY_ID"),
            "s3_secret_access_key": e.get("AWS_SECRET_ACCESS_KEY"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values["local_root"] is not None:
            values["local_root"] = Path(values["local_root"])
        return cls(**values)

    @property
    def s3_configured(self) -> bool:
        if self.s3_enabled is not None:
            return self.s3_enabled
        return bool(self.s3_endpoint_url or self.s3_access_key_id)

    def s3_bucket(self, name: str, max_connections: int = 64) -> Bucket:
        from tide.weights.s3_bucket import S3Bucket, make_client  # boto3 import only when S3 is used

        client = make_client(
            self.s3_endpoint_url, self.s3_region, self.s3_access_key_id, self.s3_secret_access_key, max_connections
        )
        return S3Bucket(client, name, self.s3_endpoint_url)

    def places(self, name: str) -> str:
        looked = []
        if self.local_root is not None:
            looked.append(f"local directory {self.local_root / name}")
        looked.append(
            f"S3 endpoint {self.s3_endpoint_url or 'AWS default'}"
            if self.s3_configured
            else "S3 (not configured: set TIDE_S3_ENDPOINT_URL and AWS credentials)"
        )
        return " and ".join(looked)

    def resolve(self, name: str, max_connections: int = 64) -> Bucket:
        """A local bucket directory that exists wins; else S3 when configured; else BUCKET_NOT_FOUND."""
        if not name or "/" in name or name in (".", ".."):
            raise WeightsError(BUCKET_NOT_FOUND, f"bucket name {name!r} is not valid", name)
        if self.local_root is not None and (self.local_root / name).is_dir():
            return FileBucket(self.local_root, name)
        if self.s3_configured:
            return self.s3_bucket(name, max_connections)
        raise WeightsError(
            BUCKET_NOT_FOUND,
            f"bucket {name!r} not found; looked in {self.places(name)}",
            name,
        )

    def resolve_for_upload(self, name: str) -> Bucket:
        """Like `resolve`, but a missing local bucket is created when S3 is not configured (push to a fresh root)."""
        try:
            return self.resolve(name)
        except WeightsError:
            if self.local_root is None or self.s3_configured:
                raise
            (self.local_root / name).mkdir(parents=True, exist_ok=True)
            return FileBucket(self.local_root, name)
