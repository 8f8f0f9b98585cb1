"""Pure checks of bucket names and object paths, shared by spec validation and the weights CLI: a name that
could never be a bucket, or a path that climbs out of its bucket, is refused before any I/O."""

from __future__ import annotations

import re

# S3's bucket naming rules: 3-63 characters of lowercase letters, digits, dots and hyphens, starting and
# ending with a letter or digit, no two dots in a row, not an IP address, no reserved prefix or suffix.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")


def bucket_name_problem(name: str) -> str | None:
    """Why `name` cannot be a bucket, or None when it can."""
    if not _BUCKET.fullmatch(name):
        return (
            f"bucket name {name!r} is not valid: 3-63 characters of lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    if ".." in name or _IP.match(name) or name.startswith("xn--") or name.endswith("-s3alias"):
        return f"bucket name {name!r} is not valid: no '..', no IP address, no 'xn--' prefix or '-s3alias' suffix"
    return None


def object_path_problem(path: str) -> str | None:
    """Why `path` cannot name objects inside a bucket (it would climb out of it, or is not a path)."""
    if "\x00" in path or "\\" in path:
        return f"path {path!r} is not valid: no NUL or backslash"
    if path.startswith("/"):
        return f"path {path!r} is not valid: it must be relative to the bucket (no leading '/')"
    if any(part in (".", "..") for part in path.split("/")):
        return f"path {path!r} is not valid: no '.' or '..' segments"
    return None
