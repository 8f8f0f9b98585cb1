"""The tiny model served through Tide as a user would: the official openai client, updates, restarts."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import httpx
from openai import OpenAI

from tests.e2e.conftest import TideProcess, tiny_spec
from tests.support.waiting import wait_until


def openai_client(tide: TideProcess) -> OpenAI:
    return OpenAI(base_url=tide.gateway_url, api_key="unused", max_retries=0, timeout=60)


def test_openai_client_chat_completion_streaming_and_models(clean_tide: TideProcess) -> None:
    clean_tide.apply(tiny_spec())
    clean_tide.wait_for("tiny-chat", "STATUS_READY", ready=1)
    client = openai_client(clean_tide)

    assert "tiny-chat" in [m.id for m in client.models.list()]

    # Greedy: sampled, the random-weight model can pick its end token first (empty content).
    chat = client.chat.completions.create(
        model="tiny-chat", messages=[{"role": "user", "content": "hello"}], max_tokens=8, temperature=0
    )
    assert chat.choices[0].message.content
    assert chat.usage is not None and 0 < chat.usage.completion_tokens <= 8

    completion = client.completions.create(model="tiny-chat", prompt="The tide", max_tokens=8, temperature=0)
    assert completion.choices[0].text

    chunks = list(
        client.chat.completions.create(
            model="tiny-chat", messages=[{"role": "user", "content": "stream"}], max_tokens=8, stream=True
        )
    )
    assert len(chunks) >= 2
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    text_chunks = list(client.completions.create(model="tiny-chat", prompt="Once", max_tokens=8, stream=True))
    assert len(text_chunks) >= 2

    # Path-based routing reaches the same deployment.
    by_path = OpenAI(base_url=f"{clean_tide.gateway_url[:-3]}/tiny-chat/v1", api_key="x", max_retries=0)
    assert by_path.completions.create(model="tiny-chat", prompt="x", max_tokens=2).choices


def test_spec_change_rolls_out_without_a_failed_request(clean_tide: TideProcess) -> None:
    clean_tide.apply(tiny_spec())
    before = clean_tide.wait_for("tiny-chat", "STATUS_READY", ready=1)
    old_ids = {r["id"] for r in before["replicas"]}

    failures: list[str] = []
    served = [0]
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                body = {"model": "tiny-chat", "prompt": "roll", "max_tokens": 4}
                try:
                    response = client.post(f"{clean_tide.gateway_url}/completions", json=body)
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                    else:
                        served[0] += 1
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: served[0] >= 5, 60, "load flowing before the rollout")
        clean_tide.apply(tiny_spec(runtime={"engine": "builtin", "engineConfig": {"max-batch-size": "8"}}))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status = clean_tide.status("tiny-chat")
            ids = {r["id"] for r in status["replicas"]}
            if status["status"] == "STATUS_READY" and ids and not ids & old_ids:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"rollout never finished: {clean_tide.status('tiny-chat')}")
        served_by_new = served[0]
        wait_until(lambda: served[0] >= served_by_new + 5, 60, "requests served by the new replica")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert served[0] > 10


def test_missing_weights_fail_with_a_condition_naming_the_path(clean_tide: TideProcess) -> None:
    clean_tide.apply(tiny_spec("ghost-model", weights={"bucket": "models", "path": "does/not/exist"}))
    status = clean_tide.wait_for("ghost-model", "STATUS_FAILED")
    messages = " ".join(c["message"] for c in status["conditions"])
    assert "does/not/exist" in messages

    clean_tide.apply(tiny_spec("half-model", weights={"bucket": "models", "path": "no-config"}))
    status = clean_tide.wait_for("half-model", "STATUS_FAILED")
    messages = " ".join(c["message"] for c in status["conditions"])
    assert "no-config" in messages and "config.json" in messages


def test_restart_keeps_every_deployment(clean_tide: TideProcess) -> None:
    clean_tide.apply(tiny_spec())
    clean_tide.apply(tiny_spec("tiny-other", traffic={"weight": 7}))
    clean_tide.wait_for("tiny-chat", "STATUS_READY", ready=1)
    clean_tide.stop()
    clean_tide.start()
    with clean_tide.api() as api:
        items = {i["spec"]["id"]: i for i in api.get("/deployments").json()["deployments"]}
    assert set(items) == {"tiny-chat", "tiny-other"}
    assert items["tiny-other"]["spec"]["traffic"]["weight"] == 7
    clean_tide.wait_for("tiny-chat", "STATUS_READY", ready=1)
    reply = openai_client(clean_tide).completions.create(model="tiny-chat", prompt="back", max_tokens=2)
    assert reply.choices


def test_cli_apply_get_logs_delete(clean_tide: TideProcess, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(
        "name: tiny-cli\nweights: {bucket: models, path: tiny}\nruntime: {engine: builtin}\n"
        "autoscaling: {min: 1, max: 1}\n"
    )
    assert "created" in clean_tide.cli("apply", "-f", str(spec_file)).stdout
    assert "unchanged" in clean_tide.cli("apply", "-f", str(spec_file)).stdout
    spec_file.write_text(spec_file.read_text() + "traffic: {weight: 50}\n")
    assert "configured" in clean_tide.cli("apply", "-f", str(spec_file)).stdout
    clean_tide.cli("wait", "tiny-cli", "--timeout", "90")
    table = clean_tide.cli("get", "deployments").stdout
    assert "tiny-cli" in table and "READY" in table and "1/1" in table
    detail = clean_tide.cli("get", "deployment", "tiny-cli").stdout
    assert "ready" in detail and "STATUS_READY" in detail
    # where the replica runs, and how long each phase of its start took, from the controller's status
    assert "local-cpu, zone local" in detail and "engine load " in detail and ", ready for " in detail, detail
    logs = clean_tide.cli("logs", "tiny-cli").stdout
    assert "==> tiny-cli-" in logs
    bad = spec_file.with_name("bad.yaml")
    bad.write_text(
        "name: tiny-cli\nweights: {bucket: models, path: tiny}\nruntime: {engine: builtin}\nautoscaling: {min: 3, max: 2}\n"
    )
    result = clean_tide.cli("apply", "-f", str(bad), check=False)
    assert result.returncode != 0 and "autoscaling.max" in result.stderr
    assert "deleting" in clean_tide.cli("delete", "tiny-cli").stdout


def test_logs_follow_shows_a_new_replica_start_during_a_rolling_update(clean_tide: TideProcess) -> None:
    clean_tide.apply(tiny_spec("tiny-follow"))
    first = clean_tide.wait_for("tiny-follow", "STATUS_READY", ready=1)["replicas"][0]["id"]
    follow = subprocess.Popen(
        [sys.executable, "-m", "tide.cli", "--data-dir", str(clean_tide.data_dir), "logs", "tiny-follow", "-f",
         "--tail", "5", "--interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=clean_tide.env(), text=True,
    )  # fmt: skip
    lines: list[str] = []
    assert follow.stdout is not None
    stdout = follow.stdout
    reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any(line.startswith(f"==> {first} <==") for line in lines) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any(line.startswith(f"==> {first} <==") for line in lines), lines
        # A change to the engine config rolls the deployment: the new replica's start shows up, prefixed.
        clean_tide.apply(
            tiny_spec("tiny-follow", runtime={"engine": "builtin", "engineConfig": {"max-batch-size": "4"}})
        )
        deadline = time.monotonic() + 90
        new: list[str] = []
        while time.monotonic() < deadline:
            new = [line for line in lines if line.startswith("[tiny-follow-") and not line.startswith(f"[{first}]")]
            if any("model ready" in line for line in new):
                break
            time.sleep(0.2)
        assert any("model ready" in line for line in new), lines[-30:]
        assert follow.poll() is None  # still following
    finally:
        follow.send_signal(signal.SIGINT)
        follow.wait(timeout=10)
