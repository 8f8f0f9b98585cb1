"""API keys the gateway accepts: `Authorization: Bearer <key>`, as OpenAI clients send their `api_key`.

Keys come from a file (one per line; blank lines and comments ignored: a line starting with `#`, or
` #` after a key), re-read when it changes so a key can be added or revoked without a restart, and/or
from `TIDE_GATEWAY_API_KEYS` (comma-separated). Only SHA-256 digests are held and compared: a lookup's
timing says nothing useful about a key.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

ENV_KEYS = "TIDE_GATEWAY_API_KEYS"
_BEARER = b"bearer "
_TRAILING_COMMENT = re.compile(rb"\s+#.*$")  # a `#` inside a key is part of the key


class ApiKeyError(ValueError):
    """The keys file cannot be used; the message names it and says why."""


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def parse_keys(data: bytes) -> list[bytes]:
    keys = []
    for line in data.splitlines():
        key = _TRAILING_COMMENT.sub(b"", line).strip()
        if key and not key.startswith(b"#"):
            keys.append(key)
    return keys


class GatewayKeys:
    def __init__(self, path: Path | None = None, env_keys: str | None = None) -> None:
        self.path = path
        self._env = [k.strip().encode() for k in (env_keys or "").split(",") if k.strip()]
        self._file_version: tuple[int, int, int] | None = None  # (mtime_ns, size, inode) of what was read
        self._file_keys: list[bytes] = []
        self._digests: frozenset[bytes] = frozenset()
        self._reload_error: str | None = None
        if path is not None:
            self._load(path)  # at start a missing or unreadable file is an error, not an open gateway
        self._rebuild()

    @classmethod
    def from_config(cls, path: Path | None) -> GatewayKeys | None:
        """The keys of `path` and the environment; None when neither gives any (the gateway is open)."""
        env = os.environ.get(ENV_KEYS)
        if path is None and not (env and env.strip(" ,")):
            return None
        return cls(path, env)

    @property
    def count(self) -> int:
        return len(self._digests)

    def accepts(self, authorization: bytes | None) -> bool:
        if authorization is None or authorization[:7].lower() != _BEARER:
            return False
        return _digest(authorization[7:].strip()) in self._digests

    def reload_if_changed(self) -> None:
        """Called about once a second. A file that cannot be read keeps the keys it had (logged once)."""
        if self.path is None:
            return
        try:
            version = _version(self.path)
            if version == self._file_version:
                return
            self._load(self.path)
        except (OSError, ApiKeyError) as error:
            message = f"gateway API keys file {self.path}: {error}; keeping the {self.count} keys loaded before"
            if message != self._reload_error:
                log.error("%s", message)
                self._reload_error = message
            return
        self._reload_error = None
        self._rebuild()
        log.info("gateway API keys reloaded from %s: %d keys", self.path, self.count)

    def _load(self, path: Path) -> None:
        # Read, then check nothing changed meanwhile (an editor's truncate-then-write): a half-written
        # file read now would otherwise stay loaded, its version looking current.
        for _ in range(3):
            try:
                before = _version(path)
                data = path.read_bytes()
                after = _version(path)
            except OSError as error:
                raise ApiKeyError(f"gateway API keys file {path}: cannot be read ({error})") from None
            if before == after:
                self._file_keys = parse_keys(data)
                self._file_version = after
                return
        raise ApiKeyError(f"gateway API keys file {path}: kept changing while being read")

    def _rebuild(self) -> None:
        self._digests = frozenset(_digest(k) for k in [*self._env, *self._file_keys])


def _version(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size, stat.st_ino
