"""A local directory as a bucket: `<root>/<bucket>/<key>`.

Objects are copied into the cache (never hard-linked): the cache entry must not change if someone edits
the bucket directory, and `os.copy_file_range` stays in the kernel (a reflink on filesystems that can).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from tide.weights.errors import OBJECT_CHANGED, PATH_NOT_FOUND, WeightsError
from tide.weights.objects import BytesCallback, ObjectInfo

_COPY_CHUNK = 8 << 20


def _version(st: os.stat_result) -> str:
    return f"{st.st_size}-{st.st_mtime_ns}"


class FileBucket:
    def __init__(self, root: Path, name: str) -> None:
        self.root = Path(root)
        self.name = name
        self.directory = self.root / name
        self.location = f"file:{self.root.resolve()}"

    def uri(self, key: str = "") -> str:
        return (self.directory / key).resolve().as_uri() if key else self.directory.resolve().as_uri()

    def _inside(self, key: str) -> Path:
        """`key` under the bucket directory; a key that climbs out of it ('..', absolute) is refused."""
        path = self.directory / key
        if not path.resolve().is_relative_to(self.directory.resolve()):
            raise WeightsError(PATH_NOT_FOUND, f"path {key!r} leaves bucket {self.name!r}", key)
        return path

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = self._inside(prefix) if prefix else self.directory
        if not base.is_dir():
            raise WeightsError(PATH_NOT_FOUND, f"weights path {self.uri(prefix)} does not exist", self.uri(prefix))
        found: list[ObjectInfo] = []
        for dirpath, _dirs, files in os.walk(base):
            for fname in files:
                full = Path(dirpath) / fname
                st = full.stat()
                rel = full.relative_to(base).as_posix()
                key = full.relative_to(self.directory).as_posix()
                found.append(ObjectInfo(key=key, rel=rel, size=st.st_size, version=_version(st)))
        return found

    def read_into(self, obj: ObjectInfo, start: int, end: int, fd: int, on_bytes: BytesCallback) -> None:
        path = self.directory / obj.key
        try:
            src = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise WeightsError(
                OBJECT_CHANGED, f"{self.uri(obj.key)} was deleted during the download; retry", self.uri(obj.key)
            ) from None
        try:
            if _version(os.fstat(src)) != obj.version:
                raise WeightsError(
                    OBJECT_CHANGED, f"{self.uri(obj.key)} changed during the download; retry", self.uri(obj.key)
                )
            offset = start
            while offset < end:
                n = _copy(src, fd, offset, min(_COPY_CHUNK, end - offset))
                if n == 0:
                    raise WeightsError(
                        OBJECT_CHANGED, f"{self.uri(obj.key)} shrank during the download; retry", self.uri(obj.key)
                    )
                offset += n
                on_bytes(n)
            if _version(os.fstat(src)) != obj.version:
                raise WeightsError(
                    OBJECT_CHANGED, f"{self.uri(obj.key)} changed during the download; retry", self.uri(obj.key)
                )
        finally:
            os.close(src)

    def upload(self, local: Path, key: str, on_bytes: BytesCallback) -> None:
        dest = self._inside(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tide-upload")
        with open(local, "rb") as fsrc, open(tmp, "wb") as fdst:
            while True:
                chunk = fsrc.read(_COPY_CHUNK)
                if not chunk:
                    break
                fdst.write(chunk)
                on_bytes(len(chunk))
        shutil.copystat(local, tmp)
        os.replace(tmp, dest)


def _copy(src: int, dst: int, offset: int, count: int) -> int:
    try:
        return os.copy_file_range(src, dst, count, offset, offset)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    data = os.pread(src, count, offset)
    return os.pwrite(dst, data, offset) if data else 0
