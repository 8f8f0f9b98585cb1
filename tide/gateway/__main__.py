"""Standalone gateway: `python -m tide.gateway --port 8080 --routes routes.yaml` (SIGHUP reloads the file)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time
from pathlib import Path

import uvloop

from tide.errors import FieldError
from tide.gateway.gateway import Gateway
from tide.gateway.keys import ENV_KEYS, ApiKeyError, GatewayKeys
from tide.gateway.route_file import load_route_file
from tide.gc_pauses import freeze_after_full_collections
from tide.spec.durations import parse_duration_option
from tide.timing import UPSTREAM_IDLE_TIMEOUT_S

log = logging.getLogger("tide.gateway")


async def serve(
    host: str,
    port: int,
    routes_path: str,
    model_header: str,
    idle_timeout_s: float | None,
    api_keys: GatewayKeys | None,
) -> None:
    gateway = Gateway(
        load_route_file(routes_path),
        model_header=model_header,
        upstream_idle_timeout_s=idle_timeout_s,
        api_keys=api_keys,
    )
    await gateway.start(host, port)
    log.info("gateway listening on http://%s:%d", host, gateway.port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def reload() -> None:
        try:
            gateway.set_routes(load_route_file(routes_path))
            log.info("routes reloaded from %s", routes_path)
        except (OSError, ValueError) as error:
            log.error("routes not reloaded: %s", error)

    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    await stopping.wait()
    await gateway.stop(grace_s=5.0)


def _duration(text: str) -> float:
    try:
        return parse_duration_option(text, "--upstream-idle-timeout")
    except FieldError as error:
        raise argparse.ArgumentTypeError(error.message) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tide.gateway", description="Tide's OpenAI-compatible gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--routes", required=True, help="YAML file: {models: {NAME: [{deployment, weight, endpoints}]}}"
    )
    parser.add_argument("--model-header", default="x-tide-model", help="request header that names the model")
    parser.add_argument(
        "--upstream-idle-timeout",
        type=_duration,
        default=UPSTREAM_IDLE_TIMEOUT_S,
        help='how long a replica may hold a request without sending a byte before it is cut off ("10m"; 0: never)',
    )
    parser.add_argument(
        "--api-keys-file",
        type=Path,
        default=None,
        help=f"API keys clients must send as `Authorization: Bearer <key>`, one per line (also ${ENV_KEYS})",
    )
    args = parser.parse_args(argv)
    try:
        api_keys = GatewayKeys.from_config(args.api_keys_file)
    except ApiKeyError as error:
        parser.error(str(error))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    idle_timeout_s = args.upstream_idle_timeout or None
    freeze_after_full_collections(time.monotonic)
    uvloop.run(serve(args.host, args.port, args.routes, args.model_header, idle_timeout_s, api_keys))


if __name__ == "__main__":
    main()
