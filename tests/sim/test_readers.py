"""Trace readers on small inline samples and on the real shared traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tide.sim.readers import TraceError, detect_format, read_trace

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "traces"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_azure_llm_csv(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "azure.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:50.9951690,396,109\n"
        "2023-11-16 18:15:46.6805900,374,44\n",
    )
    trace = read_trace(path)
    assert detect_format(path) == "azure-llm"
    assert trace.arrivals == pytest.approx([0.0, 4.314579])  # sorted, shifted to start at 0
    assert trace.input_tokens == [374, 396] and trace.output_tokens == [44, 109]


def test_mooncake_jsonl_and_arrivals_csv(tmp_path: Path) -> None:
    records = [
        {"timestamp": 3000, "input_length": 10, "output_length": 5, "hash_ids": [1]},
        {"timestamp": 0, "input_length": 7, "output_length": 2, "hash_ids": []},
    ]
    jsonl = write(tmp_path, "m.jsonl", "\n".join(json.dumps(r) for r in records) + "\n")
    csv_path = write(tmp_path, "m.csv", "timestamp_ms,input_length,output_length,n_hash_blocks\n0,7,2,0\n3000,10,5,1\n")
    for path in (jsonl, csv_path):
        trace = read_trace(path)
        assert trace.arrivals == [0.0, 3.0]
        assert trace.input_tokens == [7, 10] and trace.output_tokens == [2, 5]


def test_mooncake_jitter_spreads_ticks(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", "timestamp_ms,input_length,output_length,n_hash_blocks\n" + "0,1,1,0\n" * 50)
    trace = read_trace(path, jitter=3.0, seed=1)
    assert len(set(trace.arrivals)) == 50 and trace.span < 3.0


def test_azure_functions_minute_counts(tmp_path: Path) -> None:
    path = write(tmp_path, "af.csv", "minute,count\n0,0\n1,3\n2,0\n3,2\n")
    trace = read_trace(path, seed=3)
    assert detect_format(path) == "azure-functions"
    assert len(trace) == 5
    assert 60 < trace.span < 180  # minute 1 to minute 3, spread within each minute
    assert read_trace(path, seed=3).arrivals == trace.arrivals  # seeded: reproducible


def test_azure_functions_wide_file_with_durations(tmp_path: Path) -> None:
    header = "HashFunction,HashOwner,HashApp,minute_1,minute_2\n"
    write(
        tmp_path,
        "durations_per_function_x.csv",
        "HashOwner,HashApp,HashFunction,Average\naa,aa,aaa1,500\nbb,bb,bbb2,2000\n",
    )
    path = write(tmp_path, "inv.csv", header + "aaa1,aa,aa,2,0\nbbb2,bb,bb,0,3\n")
    everything = read_trace(path)
    assert len(everything) == 5 and sorted(set(everything.durations or [])) == [0.5, 2.0]
    one = read_trace(path, select="1")
    assert len(one) == 3 and set(one.durations or []) == {2.0}
    assert len(read_trace(path, select="aaa")) == 2
    with pytest.raises(TraceError, match="out of range"):
        read_trace(path, select="9")


def test_gentd26_requests_and_minute_counts(tmp_path: Path) -> None:
    requests = write(
        tmp_path,
        "lora.csv",
        "gmt_create,predict_type,predict_status,exec_time_seconds,groupId,prompt_length,negative_prompt_length,"
        "num_images_per_prompt,num_inference_steps,checkpoint_model_version_id,num_lora\n"
        "2024-11-15 16:57:50,TXT_2_IMG,SUCCEED,32.0,G0,63,26,1,30,M0000,0\n"
        "2024-11-15 16:58:00,TXT_2_IMG,SUCCEED,12.5,G1,63,,1,30,M0001,0\n"
        "2024-11-15 16:59:50,TXT_2_IMG,PENDING,,G1,63,,1,30,M0000,0\n",
    )
    trace = read_trace(requests)
    assert trace.arrivals == [0.0, 10.0, 120.0]
    assert trace.durations is not None and trace.durations[:2] == [32.0, 12.5]
    assert len(read_trace(requests, select="M0000")) == 2
    counts = write(tmp_path, "mmc.csv", "model,minute,count\nM0000,0,1\nM0001,5,4\n")
    assert len(read_trace(counts)) == 5 and len(read_trace(counts, select="M0001")) == 4


def test_simple_csv_with_and_without_tokens(tmp_path: Path) -> None:
    with_tokens = read_trace(write(tmp_path, "a.csv", "timestamp,input,output\n1.5,100,20\n0.5,10,2\n"))
    assert with_tokens.arrivals == [0.0, 1.0] and with_tokens.output_tokens == [2, 20]
    bare = read_trace(write(tmp_path, "b.csv", "3\n1\n2\n"), "simple")
    assert bare.arrivals == [0.0, 1.0, 2.0] and bare.input_tokens is None


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="not found"):
        read_trace(tmp_path / "missing.csv")
    with pytest.raises(TraceError, match="unknown trace format"):
        read_trace(write(tmp_path, "x.csv", "1\n"), "parquet")
    with pytest.raises(TraceError, match="not a number"):
        read_trace(write(tmp_path, "y.csv", "1\nsoon\n"))
    with pytest.raises(TraceError, match="no requests"):
        read_trace(write(tmp_path, "z.csv", "model,minute,count\nM1,0,1\n"), select="M9")


REAL = [
    ("azure_llm_2023/AzureLLMInferenceTrace_conv.csv", None, 19366, True),
    ("azure_llm_2023/AzureLLMInferenceTrace_code.csv", None, 8819, True),
    ("mooncake_fast25/conversation_trace.jsonl", None, 12031, True),
    ("mooncake_fast25/conversation_trace_arrivals.csv", None, 12031, True),
    ("alibaba_gentd26/lora_request_trace.csv", "M0002", 8234, False),
    ("alibaba_gentd26/model_minute_counts.csv", "M0001", 4012, False),
    ("azure_functions_2019_sample/functions/af2019_sparse.csv", None, 77, False),
    ("azure_functions_2019_sample/invocations_per_function_1350.csv", "0", 481, False),
]


@pytest.mark.parametrize(("relative", "select", "count", "tokens"), REAL)
def test_real_shared_traces(relative: str, select: str | None, count: int, tokens: bool) -> None:
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"shared trace not found: {path}")
    trace = read_trace(path, select=select)
    assert len(trace) == count
    assert trace.arrivals[0] == 0.0 and trace.arrivals == sorted(trace.arrivals)
    assert (trace.input_tokens is not None) is tokens
