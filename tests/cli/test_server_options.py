"""`tide up` / `tide controller` / `tide gateway` options reach the server's configuration as a user wrote them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tide import cli
from tide.config import ServerConfig


@pytest.fixture()
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What `tide up` would run, instead of running it."""
    calls: list[Any] = []
    import tide.server

    monkeypatch.setattr(tide.server, "run_server", lambda config, ray=None: calls.append(config))
    monkeypatch.setattr(
        tide.server, "run_controller", lambda config, lease_ttl_s, ray=None: calls.append((config, lease_ttl_s))
    )
    return calls


def invoke(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli.main, ["--data-dir", str(tmp_path), *args])


def test_durations_with_units_bare_seconds_and_zero_for_off(tmp_path: Path, captured: list[Any]) -> None:
    assert invoke(tmp_path, "up", "--upstream-idle-timeout", "90s", "--usage-retention", "30d").exit_code == 0
    config: ServerConfig = captured[-1]
    assert config.upstream_idle_timeout_s == 90 and config.usage_retention_s == 30 * 86400
    assert invoke(tmp_path, "up", "--upstream-idle-timeout", "0", "--usage-retention", "0").exit_code == 0
    assert captured[-1].upstream_idle_timeout_s is None and captured[-1].usage_retention_s is None
    assert invoke(tmp_path, "up", "--upstream-idle-timeout", "45").exit_code == 0
    assert captured[-1].upstream_idle_timeout_s == 45
    assert invoke(tmp_path, "up").exit_code == 0  # the defaults
    assert captured[-1].upstream_idle_timeout_s == 600 and captured[-1].usage_retention_s == 90 * 86400


def test_a_bad_duration_names_the_option(tmp_path: Path, captured: list[Any]) -> None:
    result = invoke(tmp_path, "up", "--usage-retention", "3 weeks")
    assert result.exit_code == 2 and "--usage-retention" in result.output
    result = invoke(tmp_path, "up", "--upstream-idle-timeout", "-5")
    assert result.exit_code == 2 and "negative" in result.output
    assert captured == []


def test_every_node_option_reaches_the_config_of_up_and_controller(tmp_path: Path, captured: list[Any]) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("instanceTypes: []\n")
    keys = tmp_path / "keys"
    keys.write_text("sk-1\n")
    node = ["--buckets-dir", str(tmp_path / "b"), "--drain-timeout", "7", "--inventory", str(inventory),
            "--cpu-slots", "3", "--usage-retention", "2h"]  # fmt: skip
    assert invoke(tmp_path, "up", *node, "--api-keys-file", str(keys), "--gateway-port", "9000").exit_code == 0
    assert invoke(tmp_path, "controller", *node, "--lease-ttl", "4", "--api-port", "9001").exit_code == 0
    up_config, (controller_config, lease_ttl) = captured
    for config in (up_config, controller_config):
        assert config.buckets_dir == tmp_path / "b" and config.drain_timeout_s == 7
        assert config.inventory_path == inventory and config.cpu_slots == 3 and config.usage_retention_s == 7200
    assert up_config.api_keys_file == keys and up_config.gateway_port == 9000
    assert controller_config.api_port == 9001 and lease_ttl == 4


def test_log_retention_and_cache_budget_have_defaults_and_flags(tmp_path: Path, captured: list[Any]) -> None:
    assert invoke(tmp_path, "up").exit_code == 0
    config: ServerConfig = captured[-1]
    assert config.log_retention_s == 7 * 86400 and config.logs_per_deployment == 20
    assert config.cache_budget_bytes == 50 * 10**9
    args = ("up", "--log-retention", "1d", "--logs-per-deployment", "5", "--cache-budget", "2GiB")
    assert invoke(tmp_path, *args).exit_code == 0
    config = captured[-1]
    assert (config.log_retention_s, config.logs_per_deployment, config.cache_budget_bytes) == (86400, 5, 2 * 2**30)
    assert invoke(tmp_path, "up", "--log-retention", "0", "--cache-budget", "0").exit_code == 0
    assert captured[-1].log_retention_s is None and captured[-1].cache_budget_bytes is None
    result = invoke(tmp_path, "up", "--cache-budget", "lots")
    assert result.exit_code == 2 and "--cache-budget" in result.output


def test_connection_limits_have_flags(tmp_path: Path, captured: list[Any]) -> None:
    args = ("up", "--max-header-bytes", "16384", "--header-timeout", "5s", "--max-unfinished-connections", "64")
    assert invoke(tmp_path, *args).exit_code == 0
    limits = captured[-1].connection_limits
    assert (limits.max_head_bytes, limits.head_timeout_s, limits.max_unfinished) == (16384, 5, 64)
    assert invoke(tmp_path, "up").exit_code == 0
    assert captured[-1].connection_limits.idle_timeout_s == 75
    assert invoke(tmp_path, "up", "--header-timeout", "0").exit_code == 2


def test_the_warm_pool_is_on_by_default_and_sized_by_flag_or_environment(
    tmp_path: Path, captured: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIDE_WARM_POOL", raising=False)
    assert invoke(tmp_path, "up").exit_code == 0
    assert captured[-1].warm_pool == 1
    assert invoke(tmp_path, "up", "--warm-pool", "0").exit_code == 0
    assert captured[-1].warm_pool == 0
    monkeypatch.setenv("TIDE_WARM_POOL", "3")
    assert invoke(tmp_path, "up").exit_code == 0
    assert captured[-1].warm_pool == 3
    bad = invoke(tmp_path, "up", "--warm-pool", "-1")
    assert bad.exit_code == 2 and "--warm-pool" in bad.output
