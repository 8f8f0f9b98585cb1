"""API keys the gateway accepts: `Authorization: Bearer <key>`, as OpenAI clients send their `api_key`.

Keys come from a file (one per line; blank lines and `#` comments ignored), re-read when it changes so a
key can be added or revoked without a restart, and/or from `TIDE_GATEWAY_API_KEYS` (comma-separated).
Only SHA-256 digests are held and compared: a lookup's timing says nothing useful about a key.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

ENV_KEYS = "TIDE_GATEWAY_API_KEYS"
_BEARER = b"bearer "


class ApiKeyError(ValueError):
    """The keys file cannot be used; the message names it and says why."""


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def parse_keys(text: str) -> list[str]:
    keys = []
    for line in text.splitlines():
        key = line.split("#", 1)[0].strip()
        if key:
            keys.append(key)
    return keys


class GatewayKeys:
    def __init__(self, path: Path | None = None, env_keys: str | None = None) -> None:
        self.path = path
        self._env = [k.strip() for k in (env_keys or "").split(",") if k.strip()]
        self._mtime_ns = -1
        self._file_keys: list[str] = []
        self._digests: frozenset[bytes] = frozenset()
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
        """Called about once a second. A file that cannot be read keeps the keys it had (logged)."""
        if self.path is None:
            return
        try:
            mtime_ns = self.path.stat().st_mtime_ns
        except OSError as error:
            log.error("gateway API keys file %s: %s; keeping the %d keys loaded before", self.path, error, self.count)
            return
        if mtime_ns != self._mtime_ns:
            try:
                self._load(self.path)
            except ApiKeyError as error:
                log.error("%s; keeping the %d keys loaded before", error, self.count)
                return
            self._rebuild()
            log.info("gateway API keys reloaded from %s: %d keys", self.path, self.count)

    def _load(self, path: Path) -> None:
        try:
            mtime_ns = path.stat().st_mtime_ns
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise ApiKeyError(f"gateway API keys file {path}: cannot be read ({error})") from None
        self._file_keys = parse_keys(text)
        self._mtime_ns = mtime_ns

    def _rebuild(self) -> None:
        self._digests = frozenset(_digest(k.encode()) for k in [*self._env, *self._file_keys])
