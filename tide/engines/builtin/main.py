"""Process entry of the built-in engine: arguments, lifecycle events, model loading, drain on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pathlib
import socket
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from tide.engines.builtin.server import EngineState, build_app
from tide.engines.events import emit_event

if TYPE_CHECKING:
    from tide.engines.builtin.loading import LoadedModel
    from tide.engines.builtin.scheduler import BatchScheduler

log = logging.getLogger("tide.engines.builtin")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tide.engines.builtin",
        description="Serve a Hugging Face causal LM over an OpenAI-compatible API.",
    )
    parser.add_argument("--model-dir", type=pathlib.Path, required=True, help="Hugging Face model directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (announced in the ready event)")
    parser.add_argument("--served-model-name", required=True, help="the `model` name clients send")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when available")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: OMP_NUM_THREADS if set, else half the cores)",
    )
    parser.add_argument("--max-batch-size", type=int, default=16, help="sequences decoded together (>= 1)")
    parser.add_argument(
        "--max-model-len", type=int, default=None, help="context length in tokens (default and ceiling: the model's)"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=30.0, help="seconds in-flight requests may take to finish after SIGTERM"
    )
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.max_batch_size < 1:
        parser.error("--max-batch-size must be at least 1")
    if args.drain_timeout < 0:
        parser.error("--drain-timeout must be >= 0")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    return args


class _EngineServer(uvicorn.Server):
    """uvicorn, except that SIGTERM/SIGINT start a drain instead of closing the listening socket at once:
    while draining, /health says 503 and new requests get 503, so the gateway moves on."""

    def __init__(self, config: uvicorn.Config, on_signal: threading.Event) -> None:
        super().__init__(config)
        self.on_signal = on_signal

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.on_signal.is_set():  # a second signal: stop now
            self.force_exit = True
            self.should_exit = True
        self.on_signal.set()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _load_in_thread(
    state: EngineState, args: argparse.Namespace, done: threading.Event, errors: list[BaseException]
) -> None:
    """Imports torch and loads the model off the event loop, so /health answers 503 meanwhile."""
    try:
        from tide.engines.builtin.loading import load_model, load_weights, warm_up

        started = time.monotonic()
        loaded = load_model(args.model_dir, dtype=args.dtype, device=args.device, threads=args.threads)
        if args.max_model_len is not None:
            if args.max_model_len > loaded.max_model_len:
                log.warning(
                    "--max-model-len %d is more than the model's %d; using %d",
                    args.max_model_len, loaded.max_model_len, loaded.max_model_len,
                )  # fmt: skip
            loaded.max_model_len = max(1, min(args.max_model_len, loaded.max_model_len))
        warm_up(loaded)
        scheduler = _scheduler_for(loaded, args)
        scheduler.start()
        state.loaded = loaded
        # How a wake rebuilds what a park dropped (tide.engines.builtin.parking).
        state.make_scheduler = lambda: _scheduler_for(loaded, args)
        state.reload_weights = lambda: load_weights(args.model_dir, dtype=args.dtype, device=loaded.device)
        state.scheduler = scheduler
        log.info("model ready in %.1f s", time.monotonic() - started)
    except BaseException as exc:
        errors.append(exc)
    finally:
        done.set()


def _scheduler_for(loaded: LoadedModel, args: argparse.Namespace) -> BatchScheduler:
    from tide.engines.builtin.scheduler import BatchScheduler

    return BatchScheduler(
        loaded.model,
        loaded.tokenizer,
        device=loaded.device,
        max_batch_size=args.max_batch_size,
        eos_token_ids=loaded.eos_token_ids,
        max_model_len=loaded.max_model_len,
        pad_token_id=loaded.pad_token_id,
    )


async def _lifecycle(
    server: _EngineServer, state: EngineState, args: argparse.Namespace, port: int, signalled: threading.Event
) -> int:
    loaded_event = threading.Event()
    errors: list[BaseException] = []
    # A daemon thread, not the default executor: a SIGTERM during loading must not wait for the load.
    threading.Thread(target=_load_in_thread, args=(state, args, loaded_event, errors), daemon=True).start()
    announced = False
    while not signalled.is_set():
        if loaded_event.is_set() and not announced:
            if errors:
                log.error("could not load %s: %s", args.model_dir, errors[0])
                emit_event("failed", error=str(errors[0]))
                server.should_exit = True
                return 1
            if server.started:
                state.port = port
                emit_event("ready", port=port)
                announced = True
        await asyncio.sleep(0.02)
    # Drain: refuse new work, let in-flight requests (streams too) finish, bounded by --drain-timeout.
    state.draining = True
    emit_event("draining")
    deadline = time.monotonic() + args.drain_timeout
    while state.in_flight > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    if state.in_flight:
        log.warning("drain timeout: %d requests still in flight are cut off", state.in_flight)
    server.should_exit = True
    return 0


async def _serve(args: argparse.Namespace, sock: socket.socket) -> int:
    port = int(sock.getsockname()[1])
    state = EngineState(served_model_name=args.served_model_name)
    signalled = threading.Event()
    config = uvicorn.Config(
        build_app(state),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        timeout_keep_alive=5,
    )
    server = _EngineServer(config, signalled)
    lifecycle = asyncio.create_task(_lifecycle(server, state, args, port, signalled))
    await server.serve(sockets=[sock])
    signalled.set()  # uvicorn stopped on its own (e.g. a load failure): end the lifecycle loop
    code = await lifecycle
    if state.scheduler is not None:
        state.scheduler.stop()
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a replica serves local files; it never reaches a hub
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tide.engines.builtin.modeldir import ModelDirError, check_model_dir

    try:
        check_model_dir(args.model_dir)
    except ModelDirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    emit_event("engine_load", model_dir=str(args.model_dir))
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        emit_event("failed", error=str(exc))
        return 2
    try:
        code = asyncio.run(_serve(args, sock))
    finally:
        sock.close()
    emit_event("stopped")
    # Exit without waiting on the daemon scheduler/loader threads or torch's teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
