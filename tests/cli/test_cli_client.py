"""The CLI against a real management API: clear errors instead of tracebacks, partial applies reported,
`tide wait` on a deployment scaled to zero, `tide --version`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner

from tide import __version__, cli
from tide.api.app import ApiContext, create_app
from tide.api.parameters import parameters_json
from tide.spec import InstanceTypeInfo, default_catalog
from tide.store import Store

CATALOG = default_catalog(builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none", 8, 0, 0),))
TOKEN = "tide_test_token"
SPEC = "name: {name}\nweights: {{bucket: models, path: tiny}}\nruntime: {{engine: builtin}}\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    store = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    app = create_app(
        ApiContext(
            store=store,
            catalog=lambda: CATALOG,
            token=TOKEN,
            wake_controller=lambda: None,
            logs=lambda deployment_id, tail, after: {},
            parameters=lambda: parameters_json(CATALOG),
        )
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", store
    server.should_exit = True
    thread.join(10)
    store.close()


def tide(server: str, tmp_path: Path, *args: str) -> Any:
    env = {"TIDE_API_TOKEN": TOKEN}
    return CliRunner().invoke(cli.main, ["--server", server, "--data-dir", str(tmp_path), *args], env=env)


def test_version(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.main, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"tide {__version__}"


def test_apply_of_a_missing_file_is_an_error_not_a_traceback(api: tuple[str, Store], tmp_path: Path) -> None:
    result = tide(api[0], tmp_path, "apply", "-f", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert "cannot read" in result.output and "nope.yaml" in result.output
    assert result.exc_info is None or result.exc_info[0] is SystemExit


def test_a_multi_document_apply_says_what_was_applied_before_a_bad_document(
    api: tuple[str, Store], tmp_path: Path
) -> None:
    specs = tmp_path / "specs.yaml"
    bad = "name: broken\nweights: {bucket: models, path: tiny}\nruntime: {engine: builtin, engineConfig: {dtype: float16}}\n"
    specs.write_text(SPEC.format(name="first") + "---\n" + bad + "---\n" + SPEC.format(name="third"))
    result = tide(api[0], tmp_path, "apply", "-f", str(specs))
    assert result.exit_code == 1
    assert "deployment/first created" in result.output
    assert "document 2 (broken)" in result.output and "runtime.engineConfig.dtype" in result.output
    assert "1 of 3 documents applied before it" in result.output
    assert [r.id for r in api[1].list_deployments()] == ["first"]


def test_a_dropped_connection_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def drop() -> None:  # accepts, then hangs up without answering
        for _ in range(3):
            conn, _ = listener.accept()
            conn.close()

    threading.Thread(target=drop, daemon=True).start()
    specs = tmp_path / "spec.yaml"
    specs.write_text(SPEC.format(name="x"))
    result = tide(f"http://127.0.0.1:{listener.getsockname()[1]}", tmp_path, "apply", "-f", str(specs))
    listener.close()
    assert result.exit_code == 1
    assert "connection to the Tide API" in result.output and "Traceback" not in result.output


def test_wait_on_a_ready_deployment_scaled_to_zero_returns(api: tuple[str, Store], tmp_path: Path) -> None:
    server, store = api
    specs = tmp_path / "spec.yaml"
    specs.write_text(SPEC.format(name="idle"))
    assert tide(server, tmp_path, "apply", "-f", str(specs)).exit_code == 0
    store.set_status("idle", {"state": "STATUS_READY", "readyReplicas": 0, "desiredReplicas": 0, "conditions": []})
    result = tide(server, tmp_path, "wait", "idle", "--timeout", "3")
    assert result.exit_code == 0, result.output
    assert "STATUS_READY" in result.output
