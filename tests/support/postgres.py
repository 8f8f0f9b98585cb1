"""A throwaway PostgreSQL server for tests, from the Debian `postgresql` package's binaries.

Nothing is installed at test time. `postgres_server()` runs initdb in a fresh temp dir, starts `postgres`
on a free loopback port (as the `postgres` or `nobody` user when we are root: postgres refuses to run as
root), waits until it accepts connections, yields a handle, and stops it and deletes the directory.
When the binaries or the driver are missing it raises `PostgresUnavailable`, whose message says what to
install; `skip_or_fail()` turns that into a pytest skip (or a failure when TIDE_REQUIRE_POSTGRES=1, for
CI, so a broken setup cannot pass silently).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

INSTALL_HINT = "install the server with `apt-get install -y postgresql` (Debian/Ubuntu)"
DB_USER = "tide"


class PostgresUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class PostgresServer:
    port: int
    bindir: Path
    datadir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{DB_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh empty database (tests stay independent without restarting the server); returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={DB_USER} dbname={database} connect_timeout=5"


def find_bindir() -> Path:
    """The newest /usr/lib/postgresql/<major>/bin holding initdb and postgres."""
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        bindir = Path(initdb).parent
        if (bindir / "postgres").exists():
            with contextlib.suppress(ValueError):
                found.append((int(bindir.parent.name.split(".")[0]), bindir))
    if not found:
        raise PostgresUnavailable(f"PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin); {INSTALL_HINT}")
    return max(found)[1]


def _check_driver() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise PostgresUnavailable("the psycopg driver is missing; pip install 'psycopg[binary]'") from exc


def _run_as() -> str | None:
    """The unprivileged user to run the server as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PostgresUnavailable("running as root and no `postgres` or `nobody` user exists to run the server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts_connections(port: int) -> bool:
    import psycopg

    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} user={DB_USER} dbname=postgres connect_timeout=2"):
            return True
    except psycopg.OperationalError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)  # "fast" shutdown: abort sessions, checkpoint, exit
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextlib.contextmanager
def postgres_server(start_timeout_s: float = 30.0) -> Iterator[PostgresServer]:
    bindir = find_bindir()
    _check_driver()
    user = _run_as()
    # Under /tmp itself, not pytest's tmp_path: that one is 0700 root and the server user could not enter it.
    root = Path(tempfile.mkdtemp(prefix="tide-pg-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        if user is not None:
            shutil.chown(root, user=user)
        datadir, log_path = root / "data", root / "server.log"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(root)}
        initdb_cmd = [str(bindir / "initdb"), "-D", str(datadir), "-U", DB_USER, "--auth=trust"]
        initdb = subprocess.run(
            [*initdb_cmd, "-E", "UTF8", "--locale=C", "--no-sync"],
            user=user,
            env=env,
            cwd=root,
            capture_output=True,
            timeout=120,
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stderr.decode(errors='replace')[-2000:]}")
        port = _free_port()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    *(str(bindir / "postgres"), "-D", str(datadir), "-p", str(port), "-k", str(root)),
                    *("-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100"),
                    # A throwaway cluster: durability buys nothing here and costs seconds per test run.
                    *("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
                ],
                user=user,
                env=env,
                cwd=root,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + start_timeout_s
        while not _accepts_connections(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"postgres did not start on port {port}:\n{tail}")
            time.sleep(0.05)
        yield PostgresServer(port=port, bindir=bindir, datadir=datadir)
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def skip_or_fail(exc: PostgresUnavailable) -> NoReturn:
    if os.environ.get("TIDE_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"TIDE_REQUIRE_POSTGRES=1 but {exc}")
    pytest.skip(str(exc))
