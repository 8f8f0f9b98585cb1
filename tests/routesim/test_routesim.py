"""The routing simulator: trace reading, the replica model, the peer models, and the comparison."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tide.gateway.prefix import DEFAULT_INDEX_CHUNKS, chain_ids
from tide.routesim.__main__ import main
from tide.routesim.policies import POLICIES, LeastLoadedPolicy, TidePrefixAware, TideWithFeedback, VllmRouterCacheAware
from tide.routesim.replica import ServiceModel, SimReplica
from tide.routesim.run import replay
from tide.routesim.trace import TraceError, TraceRequest, read_trace


def conversations(count: int, turns: int, gap_s: float = 1.0) -> list[TraceRequest]:
    """`count` interleaved chats of `turns` turns; each turn resends the history plus two new blocks."""
    requests = []
    for turn in range(turns):
        for c in range(count):
            blocks = (0, *(1000 * c + b for b in range(1, 2 * turn + 3)))
            requests.append(TraceRequest((turn * count + c) * gap_s, blocks, 10))
    return requests


def write_trace(path: Path, requests: list[TraceRequest]) -> Path:
    lines = [
        orjson.dumps({"timestamp": r.arrival_s * 1000, "hash_ids": list(r.blocks), "output_length": r.output_tokens})
        for r in requests
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_replica_hits_only_the_cached_prefix_and_evicts_lru() -> None:
    replica = SimReplica(ServiceModel(cache_blocks=4, prefill_s_per_block=1.0, decode_s_per_token=0.0))
    assert replica.serve(chain_ids([1, 2, 3]), 0, now=0.0) == 3.0
    assert replica.serve(chain_ids([1, 2, 3, 4]), 0, now=10.0) == 1.0  # 3 cached, 1 to compute
    assert replica.hit_blocks == 3
    replica.serve(chain_ids([9]), 0, now=20.0)  # 5 names into 4: the oldest goes, the tail (as vLLM)
    assert replica.serve(chain_ids([1, 2, 3, 4]), 0, now=30.0) == 1.0
    replica.serve(chain_ids([7, 8, 9]), 0, now=40.0)  # three more: only the prefix's first block is left
    assert replica.serve(chain_ids([1, 2, 3, 4]), 0, now=50.0) == 3.0
    # prefill is one at a time: a request arriving while another prefills waits
    busy = SimReplica(ServiceModel(cache_blocks=10, prefill_s_per_block=1.0, decode_s_per_token=0.0))
    busy.serve(chain_ids([1, 2]), 0, now=0.0)
    assert busy.serve(chain_ids([7]), 0, now=0.5) == 2.5


@pytest.mark.parametrize(
    ("policy", "min_hit_rate", "max_hit_rate"),
    [
        ("round-robin", 0.0, 0.3),  # turns of one chat land on different replicas
        ("least-loaded", 0.0, 0.3),
        ("vllm-router", 0.7, 1.0),
        ("tide", 0.7, 1.0),
    ],
)
def test_cache_aware_policies_keep_chats_on_their_replica(
    policy: str, min_hit_rate: float, max_hit_rate: float
) -> None:
    model = ServiceModel(cache_blocks=1000, prefill_s_per_block=0.01, decode_s_per_token=0.0)
    result = replay(policy, POLICIES[policy](4, 1000, 1), conversations(7, 6), 4, model)
    assert min_hit_rate <= result.hit_rate <= max_hit_rate, result
    assert sum(result.per_replica_requests) == 42


def test_under_load_tide_spreads_chats_and_keeps_their_turns_together() -> None:
    # each request stays in flight 5 s while a new one arrives every 0.25 s: about 20 in flight
    model = ServiceModel(cache_blocks=1000, prefill_s_per_block=0.01, decode_s_per_token=0.5)
    result = replay("tide", POLICIES["tide"](4, 1000, 1), conversations(16, 6, gap_s=0.25), 4, model)
    assert result.balance <= 1.3, result
    assert result.hit_rate >= 0.6, result


def test_tide_named_as_the_gateway_names_small_blocks_spreads_chats_at_light_load() -> None:
    # one request in flight at most: a shared first block seen as its own name draws every chat to the
    # replica that saw it first; named with the chat's first block, as the gateway's first 1,152-byte
    # chunk names a scaled-down trace's first blocks, new chats go least-loaded and their turns stick
    model = ServiceModel(cache_blocks=1000, prefill_s_per_block=0.01, decode_s_per_token=0.0)
    piled = replay("tide", TidePrefixAware(4, 1000), conversations(8, 4), 4, model)
    assert piled.balance > 1.3, piled
    spread = replay("tide", TidePrefixAware(4, 1000, first_chunk_blocks=2), conversations(8, 4), 4, model)
    assert spread.balance <= 1.3, spread
    assert spread.hit_rate >= 0.6, spread


def test_vllm_router_model_sends_to_the_first_least_loaded_below_its_match_threshold() -> None:
    policy = VllmRouterCacheAware(3)
    first = chain_ids(range(10))
    assert policy.choose(first, [0, 0, 0], 0.0) == 0
    assert policy.choose(first, [5, 0, 0], 1.0) == 0  # full match, balanced by its thresholds: stays
    low_match = chain_ids([0, 1, 50, 51, 52, 53, 54, 55, 56, 57])  # 2/10 matched < 0.3
    assert policy.choose(low_match, [5, 3, 0], 2.0) == 2
    # imbalanced (max - min > 64 and max > 1.5 * min): the least loaded, whatever the match
    assert policy.choose(first, [100, 0, 20], 3.0) == 1


def test_vllm_router_model_follows_each_replicas_own_match_then_the_least_loaded_of_the_best() -> None:
    """0.1.17's rule: each replica's own matched share; the least loaded of those at the best share."""
    policy = VllmRouterCacheAware(3)
    prompt = chain_ids(range(10))
    assert policy.choose(prompt, [0, 0, 0], 0.0) == 0
    assert policy.choose(prompt, [100, 0, 20], 1.0) == 1  # imbalanced: replica 1 now holds it too
    # both hold it whole: the less loaded of the two, not replica 2, less loaded still but holding nothing
    assert policy.choose(prompt, [3, 2, 0], 2.0) == 1
    assert policy.choose(prompt, [1, 2, 0], 3.0) == 0
    longer = chain_ids(range(12))  # 10 of 12 on replicas 0 and 1; after this, 12 of 12 on replica 0
    assert policy.choose(longer, [0, 0, 0], 4.0) == 0
    assert policy.choose(longer, [5, 0, 0], 5.0) == 0  # the best share wins over load while balanced


@pytest.mark.parametrize(("cache_blocks", "shrinks"), [(1000, False), (6, True)])
def test_tide_feedback_shrinks_the_index_only_where_the_cache_is_smaller(cache_blocks: int, shrinks: bool) -> None:
    """The gateway's index (32,768 names) corrected by each request's hits: a replica whose cache keeps
    everything is never corrected; one whose cache holds a few blocks has its index shrunk."""
    model = ServiceModel(cache_blocks=cache_blocks, prefill_s_per_block=0.01, decode_s_per_token=0.0)
    for feedback in (False, True):
        policy = TideWithFeedback(4, feedback=feedback)
        result = replay("tide-feedback", policy, conversations(7, 6), 4, model)
        serving = [policy.indexes[r].capacity for r in range(4) if result.per_replica_requests[r]]
        assert serving
        if feedback and shrinks:
            assert max(serving) < DEFAULT_INDEX_CHUNKS, serving
        else:
            assert serving == [DEFAULT_INDEX_CHUNKS] * len(serving)


def test_least_loaded_rotates_ties() -> None:
    policy = LeastLoadedPolicy(3)
    assert [policy.choose((), [0, 0, 0], 0.0) for _ in range(3)] == [0, 1, 2]


def test_cli_prints_a_row_per_policy_and_replica_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write_trace(tmp_path / "trace.jsonl", conversations(6, 4))
    assert main(["--trace", str(trace), "--replicas", "2,3", "--cache-blocks", "100"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "%" in line]
    assert len(rows) == 2 * len(POLICIES)
    assert "| 3 | tide |" in out
    with pytest.raises(SystemExit):
        main(["--trace", str(trace), "--replicas", "2", "--tide-first-chunk-blocks", "0"])
    assert "--tide-first-chunk-blocks must be positive" in capsys.readouterr().err


def test_a_bad_trace_names_the_line(tmp_path: Path) -> None:
    trace = tmp_path / "bad.jsonl"
    trace.write_text('{"timestamp": 0, "hash_ids": [1]}\n{"timestamp": 1}\n')
    with pytest.raises(TraceError, match=r"bad.jsonl:2: .*hash_ids"):
        read_trace(trace)
    assert main(["--trace", str(trace)]) == 2
