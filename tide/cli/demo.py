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
from tide.sdk import Client, TideError

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
    api = f"http://127.0.0.1:{api_port}"
    gateway = f"http://127.0.0.1:{gateway_port}/v1"
    try:
        token = _wait_for_api(api, data_dir, server, log_path)
        with Client(api, token) as tide:
            click.secho("3. applying deployment tiny-chat (min 0, max 3, knative profile, 6 s window)", bold=True)
            try:
                tide.deployments.update("tiny-chat", DEMO_SPEC)
            except TideError as exc:
                if exc.status != 404:
                    raise
                tide.deployments.create(DEMO_SPEC)

            click.secho("4. chat through the gateway (streamed; the first request wakes it from zero)", bold=True)
            started = time.monotonic()
            _stream_chat(gateway, "Say hello to Tide.")
            click.echo("   (random weights: the words are noise; the path that served them is real)")
            click.echo(f"   (answered in {time.monotonic() - started:.1f} s, cold start included)")
            _print_status(tide)

            click.secho(f"5. {concurrency} concurrent clients for {load_seconds:.0f} s: watch it scale up", bold=True)
            counts = _drive_load(tide, gateway, concurrency, load_seconds)
            click.echo(f"   load done: {counts['ok']} ok, {counts['failed']} failed")

            click.secho("6. idle: watch it scale down and to zero", bold=True)
            _watch(tide, seconds=45.0, until_zero=True)
            _print_status(tide)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        click.echo(f"tide stopped (server log: {log_path})")


def _wait_for_api(api: str, data_dir: Path, server: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise click.ClickException(f"`tide up` exited early:\n{log_path.read_text()[-2000:]}")
        token = read_client_token(data_dir)
        if token:
            try:
                with Client(api, token, timeout=5) as tide:
                    tide.deployments.list_page(page_size=1)
                return token
            except TideError:
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


def _print_status(tide: Client) -> None:
    item = tide.deployments.get("tiny-chat")
    click.echo("\n".join("   " + line for line in describe_deployment(item, time.time()).splitlines()))


def _status_line(tide: Client) -> tuple[str, int]:
    status = tide.deployments.get("tiny-chat")["status"]
    replicas = status.get("replicas") or []
    phases = ", ".join(sorted(r["phase"] for r in replicas)) or "none"
    decision = (status.get("lastScalingDecision") or {}).get("reason", "")
    line = (
        f"   {status.get('status', '?').removeprefix('STATUS_'):8} ready {status.get('readyReplicas', 0)}"
        f" / desired {status.get('desiredReplicas', 0)}  [{phases}]  {decision}"
    )
    return line, len(replicas)


def _drive_load(tide: Client, gateway: str, concurrency: int, seconds: float) -> dict[str, int]:
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
        click.echo(_status_line(tide)[0])
        time.sleep(2.0)
    return counts


def _watch(tide: Client, seconds: float, until_zero: bool) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line, live = _status_line(tide)
        click.echo(line)
        if until_zero and live == 0:
            return
        time.sleep(2.0)
