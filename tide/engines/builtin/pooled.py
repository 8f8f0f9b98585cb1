"""A warm engine process: `python -m tide.engines.builtin.pooled`.

Started ahead of need by a backend's warm pool. It imports what every replica of the built-in engine
imports (torch, transformers and the model classes they load lazily, uvicorn, the engine's own modules:
~99% of a cold start on CPU), announces `TIDE_EVENT {"phase": "pooled"}`, then waits on stdin for one
order, a JSON line:

    {"argv": [python, "-m", "tide.engines.builtin", ...], "env": {...}, "log": "/path/replica.log"}

It then becomes exactly that replica: its environment is replaced by `env` (the same environment a
freshly launched replica gets), its stderr goes to `log`, and it runs the engine's `main` with the
argument list. CUDA is not touched before the order: `CUDA_VISIBLE_DEVICES` only counts if it is set
before CUDA initialises, so a pooled process can become a replica on any GPU. EOF on stdin (the backend
closed the pool) ends it.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from tide.engines.events import emit_event

ENGINE_MODULE = "tide.engines.builtin"


def preload() -> None:
    """Import the runtime a replica needs before it reads its weights (no model, no device)."""
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import uvicorn  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache  # noqa: F401

    # transformers imports each model family on first use; these are the ones small servable models use.
    for family in ("llama", "qwen2", "mistral", "gpt2"):
        try:
            __import__(f"transformers.models.{family}.modeling_{family}")
        except ImportError:
            continue
    import tokenizers  # noqa: F401
    from transformers import PreTrainedTokenizerFast  # noqa: F401

    import tide.engines.builtin.loading
    import tide.engines.builtin.main
    import tide.engines.builtin.scheduler
    import tide.engines.builtin.server  # noqa: F401


def parse_order(line: str) -> tuple[list[str], dict[str, str], str | None]:
    """The engine arguments, environment and log path of an order line; ValueError names what is wrong."""
    order: Any = json.loads(line)
    if not isinstance(order, dict):
        raise ValueError("an order is a JSON object")
    argv = order.get("argv")
    if not isinstance(argv, list) or len(argv) < 3 or argv[1:3] != ["-m", ENGINE_MODULE]:
        raise ValueError(f"argv must be [python, '-m', '{ENGINE_MODULE}', ...]; got {argv!r}")
    env = order.get("env")
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ValueError("env must map names to strings")
    log = order.get("log")
    if log is not None and not isinstance(log, str):
        raise ValueError("log must be a path")
    return [str(a) for a in argv[3:]], env, log


def become(env: dict[str, str], log: str | None) -> None:
    """Take on the replica's environment and log file, as if it had been launched with them."""
    os.environ.clear()
    os.environ.update(env)
    if log is not None:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
    if "OMP_NUM_THREADS" in env:  # torch read it at import, before the order: apply it now
        import torch

        torch.set_num_threads(max(1, int(env["OMP_NUM_THREADS"])))


def main() -> int:
    preload()
    emit_event("pooled", pid=os.getpid())
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the pool closed: never taken
    try:
        args, env, log = parse_order(line)
    except ValueError as exc:
        print(f"error: bad order from the backend: {exc}", file=sys.stderr)
        emit_event("failed", error=f"bad warm-pool order: {exc}")
        return 2
    become(env, log)
    from tide.engines.builtin.main import main as engine_main

    return engine_main(args)


if __name__ == "__main__":
    sys.exit(main())
