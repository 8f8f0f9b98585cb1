"""The weights room: buckets (local directory or S3), parallel resumable download, node cache, progress."""

from tide.weights.cache import CacheLease, WeightsCache
from tide.weights.errors import (
    ACCESS_DENIED,
    BUCKET_NOT_FOUND,
    CORRUPT,
    DISK_FULL,
    MISSING_FILE,
    OBJECT_CHANGED,
    PATH_NOT_FOUND,
    UNAVAILABLE,
    WeightsError,
)
from tide.weights.objects import ObjectInfo
from tide.weights.progress import DownloadProgress, ProgressCallback
from tide.weights.push import parse_bucket_path, pull, push_directory
from tide.weights.storage import StorageConfig, WeightsSource
from tide.weights.transfer import TransferSettings

__all__ = [
    "ACCESS_DENIED",
    "BUCKET_NOT_FOUND",
    "CORRUPT",
    "DISK_FULL",
    "MISSING_FILE",
    "OBJECT_CHANGED",
    "PATH_NOT_FOUND",
    "UNAVAILABLE",
    "CacheLease",
    "DownloadProgress",
    "ObjectInfo",
    "ProgressCallback",
    "StorageConfig",
    "TransferSettings",
    "WeightsCache",
    "WeightsError",
    "WeightsSource",
    "parse_bucket_path",
    "pull",
    "push_directory",
]
