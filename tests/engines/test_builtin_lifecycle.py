"""Lifecycle of the engine process: events on stdout, drain on SIGTERM, clear startup errors."""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
import threading

import httpx
import pytest

from tests.engines.engine_process import launch_engine

pytestmark = pytest.mark.timeout(120)


def test_sigterm_lets_an_in_flight_stream_finish_then_exits_zero(tiny_model_dir: pathlib.Path) -> None:
    engine = launch_engine(tiny_model_dir, "--drain-timeout", "30")
    try:
        assert httpx.get(f"{engine.base_url}/health").status_code == 200
        lines: list[str] = []
        first_chunk = threading.Event()

        def stream() -> None:
            body = {"model": "tiny", "prompt": "def main():", "max_tokens": 150, "stream": True, "temperature": 0}
            with httpx.stream("POST", f"{engine.base_url}/v1/completions", json=body, timeout=60) as response:
                for line in response.iter_lines():
                    if line:
                        lines.append(line)
                        first_chunk.set()

        reader = threading.Thread(target=stream)
        reader.start()
        assert first_chunk.wait(30)
        engine.proc.send_signal(signal.SIGTERM)
        engine.wait_for("draining", 10)
        # While draining: not healthy, and new work is refused so the gateway retries elsewhere.
        assert httpx.get(f"{engine.base_url}/health").status_code == 503
        refused = httpx.post(f"{engine.base_url}/v1/completions", json={"prompt": "x"}, timeout=10)
        assert refused.status_code == 503
        assert "draining" in refused.json()["error"]["message"]
        reader.join(60)
        assert engine.proc.wait(30) == 0
        engine.wait_for("stopped", 5)
    finally:
        engine.stop()
    assert lines[-1] == "data: [DONE]"
    final = json.loads(lines[-2].removeprefix("data: "))
    assert final["choices"][0]["finish_reason"] == "length"
    assert final["usage"]["completion_tokens"] == 150
    assert [e["phase"] for e in engine.seen] == ["engine_load", "ready", "draining", "stopped"]


def test_missing_model_dir_fails_fast_naming_the_flag(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tide.engines.builtin",
            "--model-dir",
            str(tmp_path / "absent"),
            "--port",
            "0",
            "--served-model-name",
            "tiny",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--model-dir" in result.stderr
    assert "TIDE_EVENT" not in result.stdout


def test_max_model_len_caps_the_context(tiny_model_dir: pathlib.Path) -> None:
    proc = launch_engine(tiny_model_dir, "--max-model-len", "32")
    try:
        body = {"model": "tiny", "prompt": "word " * 60, "max_tokens": 2}
        response = httpx.post(f"{proc.base_url}/v1/completions", json=body, timeout=30)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "context_length_exceeded" and "32 tokens" in error["message"]
    finally:
        proc.stop()
