"""`tide demo`: the main job end to end on the embedded default, as a user would do it by hand.

Starts `tide up`, builds the tiny model into a local bucket, applies a deployment, streams a chat answer
through the gateway, then puts load on it and shows the replicas scale up, down and to zero.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click
import httpx

from tide.cli.deployments import describe_deployment
from tide.config import read_client_token

DEMO_SPEC: dict[str, Any] = {
    "name": "tiny-chat",
    "model": {"name": "tiny-chat", "bucket": "models", "path": "tiny"},
    "runtime": {"engine": "builtin"},
    "autoscaling": {
        "min": 0,
        "max": 3,
        "concurrency": 2,
        "profile": "knative",
        "window": "6s",
        "scaleToZeroGracePeriod": "4s",
        "scaleDownDelay": "0s",
    },
}


@click.command()
@click.option("--gateway-port", default=8080, show_default=True)
@click.option("--api-port", default=8081, show_default=True)
@click.option("--load-seconds", default=40.0, show_default=True, help="How long to drive concurrent load.")
@click.option("--concurrency", default=8, show_default=True, help="Concurrent clients during the load phase.")
@click.pass_context
def demo_command(ctx: click.Context, gateway_port: int, api_port: int, load_seconds: float, concurrency: int) -> None:
    """Start Tide, deploy the tiny model from a local bucket, chat with it, and watch it scale."""
    data_dir: Path = ctx.find_root().obj["data_dir"]
    data_dir.mkdir(parents=True, exist_ok=True)
    bucket_dir = data_dir / "buckets" / "models" / "tiny"
    if not (bucket_dir / "config.json").exists():
        click.secho("1. building the tiny demo model into the local bucket models/tiny", bold=True)
        from tide.model.tiny import make_tiny_model

        make_tiny_model(bucket_dir)
    else:
        click.secho(f"1. tiny model already in the local bucket: {bucket_dir}", bold=True)

    click.secho("2. starting `tide up`", bold=True)
    log_path = data_dir / "demo-server.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tide.cli",
            "--data-dir",
            str(data_dir),
            "up",
            "--gateway-port",
            str(gateway_port),
            "--api-port",
            str(api_port),
        ],
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    api = f"http://127.0.0.1:{api_port}/v1alpha1/inference"
    gateway = f"http://127.0.0.1:{gateway_port}/v1"
    try:
        token = _wait_for_api(api, data_dir, server, log_path)
        headers = {"authorization": f"Bearer {token}"}
        with httpx.Client(headers=headers, timeout=30) as http:
            click.secho("3. applying deployment tiny-chat (min 0, max 3, knative profile, 6 s window)", bold=True)
            existing = http.get(f"{api}/deployments/tiny-chat")
            if existing.status_code == 404:
                _check(http.post(f"{api}/deployments", json=DEMO_SPEC))
            else:
                _check(http.patch(f"{api}/deployments/tiny-chat", json=DEMO_SPEC))

            click.secho("4. chat through the gateway (streamed; the first request wakes it from zero)", bold=True)
            started = time.monotonic()
            _stream_chat(gateway, "Say hello to Tide.")
            click.echo("   (random weights: the words are noise; the path that served them is real)")
            click.echo(f"   (answered in {time.monotonic() - started:.1f} s, cold start included)")
            _print_status(http, api)

            click.secho(f"5. {concurrency} concurrent clients for {load_seconds:.0f} s: watch it scale up", bold=True)
            counts = _drive_load(http, api, gateway, concurrency, load_seconds)
            click.echo(f"   load done: {counts['ok']} ok, {counts['failed']} failed")

            click.secho("6. idle: watch it scale down and to zero", bold=True)
            _watch(http, api, seconds=45.0, until_zero=True)
            _print_status(http, api)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        click.echo(f"tide stopped (server log: {log_path})")


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise click.ClickException(f"{response.status_code}: {response.text}")
    data: dict[str, Any] = response.json()
    return data


def _wait_for_api(api: str, data_dir: Path, server: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise click.ClickException(f"`tide up` exited early:\n{log_path.read_text()[-2000:]}")
        token = read_client_token(data_dir)
        if token:
            try:
                if httpx.get(f"{api}/deployments", headers={"authorization": f"Bearer {token}"}).status_code == 200:
                    return token
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise click.ClickException(f"`tide up` did not answer within 60 s; see {log_path}")


def _stream_chat(gateway: str, prompt: str) -> None:
    body = {
        "model": "tiny-chat",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 24,
        "stream": True,
    }
    click.echo("   > ", nl=False)
    with httpx.stream("POST", f"{gateway}/chat/completions", json=body, timeout=300) as response:
        if response.status_code != 200:
            raise click.ClickException(f"gateway answered {response.status_code}: {response.read().decode()}")
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise click.ClickException(f"stream error: {chunk['error']}")
            delta = chunk["choices"][0].get("delta", {}).get("content") or ""
            click.echo(delta, nl=False)
    click.echo("")


def _print_status(http: httpx.Client, api: str) -> None:
    item = _check(http.get(f"{api}/deployments/tiny-chat"))["deployment"]
    click.echo("\n".join("   " + line for line in describe_deployment(item, time.time()).splitlines()))


def _status_line(http: httpx.Client, api: str) -> tuple[str, int]:
    status = _check(http.get(f"{api}/deployments/tiny-chat"))["deployment"].get("status") or {}
    replicas = status.get("replicas") or []
    phases = ", ".join(sorted(r["phase"] for r in replicas)) or "none"
    decision = (status.get("lastScalingDecision") or {}).get("reason", "")
    line = (
        f"   {status.get('status', '?').removeprefix('STATUS_'):8} ready {status.get('readyReplicas', 0)}"
        f" / desired {status.get('desiredReplicas', 0)}  [{phases}]  {decision}"
    )
    return line, len(replicas)


def _drive_load(http: httpx.Client, api: str, gateway: str, concurrency: int, seconds: float) -> dict[str, int]:
    counts = {"ok": 0, "failed": 0}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(timeout=300) as c:
            while time.monotonic() < stop_at:
                body = {"model": "tiny-chat", "prompt": "The tide comes in", "max_tokens": 32}
                try:
                    ok = c.post(f"{gateway}/completions", json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    counts["ok" if ok else "failed"] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        click.echo(_status_line(http, api)[0])
        time.sleep(2.0)
    return counts


def _watch(http: httpx.Client, api: str, seconds: float, until_zero: bool) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line, live = _status_line(http, api)
        click.echo(line)
        if until_zero and live == 0:
            return
        time.sleep(2.0)
