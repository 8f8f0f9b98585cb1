"""An S3-protocol bucket through boto3.

boto3 with a thread per byte range was the fastest client measured on this machine (SeaweedFS on
loopback, 1 GiB object: 1.5-1.8 GB/s with 16 x 64 MiB ranges, vs 1.1-1.3 for aiohttp and obstore;
see /work/shared/research/WEIGHTS-AND-ENGINES.md section 3.2). Range bodies are `readinto` a reusable
per-thread 1 MiB buffer and `pwrite` at their offset, so no file is ever held whole in memory.

No instance-metadata query ever happens: the IMDS and container credential providers are removed
from the credential chain, and AWS_EC2_METADATA_DISABLED is set for anything else botocore consults.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from tide.weights.errors import (
    ACCESS_DENIED,
    BUCKET_NOT_FOUND,
    OBJECT_CHANGED,
    PATH_NOT_FOUND,
    UNAVAILABLE,
    WeightsError,
)
from tide.weights.objects import BytesCallback, ObjectInfo

_BUFFER_BYTES = 1 << 20
_MULTIPART_BYTES = 64 << 20
_ACCESS_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden", "AllAccessDisabled"}
_CHANGED_CODES = {"PreconditionFailed", "412", "NoSuchKey", "404", "InvalidRange", "416"}


@functools.lru_cache(maxsize=16)
def make_client(
    endpoint_url: str | None,
    region: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    max_connections: int = 64,
) -> Any:
    """One client per configuration, reused: creating one costs 0.2-0.3 s here, and clients are thread-safe."""
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    session = boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region or "us-east-1",
    )
    resolver = session._session.get_component("credential_provider")
    for provider in ("iam-role", "container-role"):
        if resolver.get_provider(provider) is not None:
            resolver.remove(provider)
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"} if endpoint_url else {},
        max_pool_connections=max_connections,
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
    )
    return session.client("s3", endpoint_url=endpoint_url, config=config)


class S3Bucket:
    def __init__(self, client: Any, name: str, endpoint_url: str | None) -> None:
        self.client = client
        self.name = name
        self.location = f"s3:{endpoint_url or 'aws'}"
        self._local = threading.local()

    def uri(self, key: str = "") -> str:
        return f"s3://{self.name}/{key}" if key else f"s3://{self.name}"

    def _translate(self, exc: Exception, key: str, during: str) -> WeightsError:
        ref = self.uri(key)
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return WeightsError(
                ACCESS_DENIED,
                f"no S3 credentials to {during} {ref}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                ref,
            )
        if isinstance(exc, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError):
            return WeightsError(UNAVAILABLE, f"cannot reach the S3 endpoint to {during} {ref}: {exc}", ref)
        if isinstance(exc, botocore.exceptions.ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket":
                return WeightsError(
                    BUCKET_NOT_FOUND, f"bucket {self.uri()} does not exist at {self.location[3:]}", self.uri()
                )
            if code in _ACCESS_CODES:
                return WeightsError(
                    ACCESS_DENIED,
                    f"access denied to {during} {ref} ({code}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy",
                    ref,
                )
            return WeightsError(UNAVAILABLE, f"S3 error to {during} {ref}: {code}: {exc}", ref)
        return WeightsError(UNAVAILABLE, f"S3 failure to {during} {ref}: {exc}", ref)

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = prefix.strip("/") + "/" if prefix.strip("/") else ""
        found: list[ObjectInfo] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=base):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if key.endswith("/"):
                        continue  # "directory marker" objects some tools create
                    found.append(
                        ObjectInfo(key=key, rel=key[len(base) :], size=int(item["Size"]), version=item["ETag"])
                    )
        except WeightsError:
            raise
        except Exception as exc:
            raise self._translate(exc, base, "list") from exc
        if not found:
            raise WeightsError(PATH_NOT_FOUND, f"weights path {self.uri(base)} has no objects", self.uri(base))
        return found

    def _buffer(self) -> memoryview:
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = memoryview(bytearray(_BUFFER_BYTES))
            self._local.buf = buf
        return buf

    def read_into(self, obj: ObjectInfo, start: int, end: int, fd: int, on_bytes: BytesCallback) -> None:
        ref = self.uri(obj.key)
        try:
            resp = self.client.get_object(
                Bucket=self.name, Key=obj.key, Range=f"bytes={start}-{end - 1}", IfMatch=obj.version
            )
        except Exception as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in _CHANGED_CODES:
                raise WeightsError(
                    OBJECT_CHANGED, f"{ref} changed or was deleted during the download ({code}); retry", ref
                ) from exc
            raise self._translate(exc, obj.key, "read") from exc
        # Servers may answer 200 with a Content-Range (rclone): trust the header, not the status.
        content_range = str(resp.get("ContentRange") or "")
        if content_range:
            first, _, total = content_range.removeprefix("bytes ").replace("/", "-").partition("-")
            if total.rsplit("-", 1)[-1] != str(obj.size):
                resp["Body"].close()
                raise WeightsError(
                    OBJECT_CHANGED,
                    f"{ref} is now {content_range.rsplit('/', 1)[-1]} bytes, listed as {obj.size}; retry",
                    ref,
                )
            if first != str(start):
                resp["Body"].close()
                raise WeightsError(UNAVAILABLE, f"{ref}: asked for bytes from {start}, got {content_range}", ref)
        elif start != 0:
            resp["Body"].close()
            raise WeightsError(UNAVAILABLE, f"{ref}: the server ignored the Range header (no Content-Range)", ref)
        elif int(resp.get("ContentLength", -1)) != obj.size:
            resp["Body"].close()
            raise WeightsError(
                OBJECT_CHANGED, f"{ref} is now {resp.get('ContentLength')} bytes, listed as {obj.size}; retry", ref
            )
        raw = resp["Body"]._raw_stream
        # urllib3's readinto is read() plus a copy, and http.client's read(n) copies once more: read
        # the http.client response directly (one copy, socket -> buffer), then pwrite (one more).
        reader = getattr(raw, "_fp", None) or raw
        buf = self._buffer()
        offset = start
        complete = False
        try:
            while offset < end:
                n = reader.readinto(buf[: min(_BUFFER_BYTES, end - offset)])
                if not n:
                    break
                written = 0
                while written < n:
                    written += os.pwrite(fd, buf[written:n], offset + written)
                offset += n
                on_bytes(n)
            complete = offset == end
        finally:
            if complete and reader is not raw and getattr(reader, "isclosed", lambda: False)():
                raw.release_conn()  # body fully read: the connection goes back to the pool
            else:
                resp["Body"].close()
        if not complete:
            raise WeightsError(
                UNAVAILABLE, f"{ref}: connection closed after {offset - start} of {end - start} bytes; retry", ref
            )

    def upload(self, local: Path, key: str, on_bytes: BytesCallback) -> None:
        transfer = TransferConfig(
            multipart_threshold=_MULTIPART_BYTES, multipart_chunksize=_MULTIPART_BYTES, max_concurrency=8
        )
        try:
            self.client.upload_file(str(local), self.name, key, Config=transfer, Callback=on_bytes)
        except Exception as exc:
            cause = exc.__cause__ or exc.__context__
            inner = (
                cause if isinstance(exc, boto3.exceptions.S3UploadFailedError) and isinstance(cause, Exception) else exc
            )
            raise self._translate(inner, key, "upload") from exc
