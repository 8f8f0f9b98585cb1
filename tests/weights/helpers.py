"""Shared helpers for the weights tests: small models in a bucket, and reading a tree back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tide.weights import TransferSettings

# Small ranges so a few MiB exercise the multi-range path.
SETTINGS = TransferSettings(range_bytes=1 << 20, threads=4)


def model_files(weights_bytes: int = 5 * (1 << 20) + 12345) -> dict[str, bytes]:
    return {
        "config.json": b'{"model_type": "llama"}',
        "tokenizer.json": b'{"version": "1.0"}' * 10,
        "model.safetensors": os.urandom(weights_bytes),
        "extra/notes.md": b"# notes\n",
        "original/consolidated.pth": os.urandom(1000),
    }


def put_model(s3: Any, bucket: str, prefix: str, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{rel}", Body=data)


def tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}
