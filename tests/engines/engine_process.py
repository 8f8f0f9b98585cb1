"""Starting the built-in engine as a real child process and reading its TIDE_EVENT lines."""

from __future__ import annotations

import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tide.engines.events import parse_event

READY_TIMEOUT_S = 90.0


@dataclass
class EngineProcess:
    proc: subprocess.Popen[str]
    events: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    seen: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, phase: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.events.empty():
                    raise AssertionError(f"engine exited with {self.proc.returncode} before {phase!r}") from None
                continue
            self.seen.append(event)
            if event.get("phase") == phase:
                return event
        raise AssertionError(f"no {phase!r} event within {timeout} s; saw {self.seen}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def launch_engine(model_dir: pathlib.Path, *extra: str, name: str = "tiny") -> EngineProcess:
    """Start `python -m tide.engines.builtin` on a free port and wait until it announces readiness."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tide.engines.builtin",
            "--model-dir",
            str(model_dir),
            "--port",
            "0",
            "--served-model-name",
            name,
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    engine = EngineProcess(proc)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = parse_event(line.rstrip("\n"))
            if event is not None:
                engine.events.put(event)

    threading.Thread(target=pump, daemon=True).start()
    try:
        engine.wait_for("engine_load", READY_TIMEOUT_S)
        engine.port = int(engine.wait_for("ready", READY_TIMEOUT_S)["port"])
    except BaseException:
        engine.stop()
        raise
    return engine
