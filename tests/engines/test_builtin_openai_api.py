"""The built-in engine through the official `openai` client and raw HTTP, as a real process on loopback."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.engines.engine_process import EngineProcess

pytestmark = pytest.mark.timeout(120)

CHAT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Write a function that adds two numbers."}]


def client(engine: EngineProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{engine.base_url}/v1", api_key="unused", max_retries=0, timeout=60)


def test_chat_completion_returns_text_usage_and_length_finish(engine: EngineProcess) -> None:
    reply = client(engine).chat.completions.create(model="tiny", messages=CHAT, max_tokens=12, temperature=0)
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 12
    assert reply.usage.prompt_tokens > 5  # the chat template wrapped the message
    assert reply.model == "tiny"


def test_max_completion_tokens_is_honoured(engine: EngineProcess) -> None:
    reply = client(engine).chat.completions.create(model="tiny", messages=CHAT, max_completion_tokens=3, temperature=0)
    assert reply.usage is not None and reply.usage.completion_tokens == 3


def test_completion_and_streamed_completion_agree_when_greedy(engine: EngineProcess) -> None:
    api = client(engine)
    plain = api.completions.create(model="tiny", prompt="def add(a, b):", max_tokens=10, temperature=0)
    chunks = list(
        api.completions.create(model="tiny", prompt="def add(a, b):", max_tokens=10, temperature=0, stream=True)
    )
    assert plain.choices[0].finish_reason == "length"
    assert "".join(c.choices[0].text for c in chunks if c.choices) == plain.choices[0].text
    assert len(chunks) > 3  # tokens arrive as they are produced, not in one piece
    assert chunks[-1].choices[0].finish_reason == "length"


def test_streamed_chat_matches_plain_chat_and_reports_usage(engine: EngineProcess) -> None:
    api = client(engine)
    plain = api.chat.completions.create(model="tiny", messages=CHAT, max_tokens=10, temperature=0)
    stream = api.chat.completions.create(
        model="tiny", messages=CHAT, max_tokens=10, temperature=0, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 10


def test_raw_stream_is_sse_ending_with_done(engine: EngineProcess) -> None:
    body = {"model": "tiny", "prompt": "import os", "max_tokens": 4, "stream": True}
    with httpx.stream("POST", f"{engine.base_url}/v1/completions", json=body, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"


def test_stop_string_cuts_the_text_and_finishes_with_stop(engine: EngineProcess) -> None:
    api = client(engine)
    full = api.completions.create(model="tiny", prompt="class Parser:", max_tokens=16, temperature=0)
    text = full.choices[0].text
    stop = text[len(text) // 2 :][:3]
    assert stop.strip(), f"greedy text too uniform for this test: {text!r}"
    cut = api.completions.create(model="tiny", prompt="class Parser:", max_tokens=16, temperature=0, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].text == text[: text.index(stop)]
    streamed = list(
        api.completions.create(
            model="tiny", prompt="class Parser:", max_tokens=16, temperature=0, stop=stop, stream=True
        )
    )
    assert "".join(c.choices[0].text for c in streamed) == cut.choices[0].text


def test_seed_makes_sampling_reproducible(engine: EngineProcess) -> None:
    api = client(engine)
    runs = [
        api.completions.create(model="tiny", prompt="x = ", max_tokens=12, temperature=1.0, top_p=0.95, seed=seed)
        .choices[0]
        .text
        for seed in (7, 7, 8)
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_models_health_load_and_metrics(engine: EngineProcess) -> None:
    assert [m.id for m in client(engine).models.list()] == ["tiny"]
    assert httpx.get(f"{engine.base_url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{engine.base_url}/load").json() == {"in_flight": 0, "waiting": 0, "running": 0}
    client(engine).completions.create(model="tiny", prompt="a", max_tokens=2)
    metrics = httpx.get(f"{engine.base_url}/metrics").text
    values = {line.split("{")[0]: float(line.split()[-1]) for line in metrics.splitlines() if not line.startswith("#")}
    assert values["tide_engine_requests_total"] >= 1
    assert values["tide_engine_generated_tokens_total"] >= 2
    assert values["tide_engine_in_flight_requests"] == 0


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        ("chat/completions", {"messages": CHAT, "temperature": 5}, "temperature"),
        ("chat/completions", {"messages": []}, "messages"),
        ("chat/completions", {"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ("chat/completions", {"messages": CHAT, "max_tokens": 0}, "max_tokens"),
        ("chat/completions", {"messages": CHAT, "max_tokens": 5000}, "max_tokens"),
        ("completions", {"prompt": 42}, "prompt"),
        ("completions", {"prompt": "hi", "top_p": "high"}, "top_p"),
        ("completions", {"prompt": "hi", "stop": [""]}, "stop"),
        ("completions", {"prompt": "hi", "n": 2}, "n"),
    ],
)
def test_bad_request_gets_400_naming_the_field(
    engine: EngineProcess, route: str, body: dict[str, object], param: str
) -> None:
    response = httpx.post(f"{engine.base_url}/v1/{route}", json={"model": "tiny", **body}, timeout=30)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert param.split("[")[0] in error["message"]


def test_unknown_model_is_404_and_the_sdk_raises(engine: EngineProcess) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(engine).chat.completions.create(model="other", messages=CHAT, max_tokens=2)
    assert "tiny" in str(caught.value)
    with pytest.raises(openai.BadRequestError):
        client(engine).chat.completions.create(model="tiny", messages=CHAT, temperature=-1)


def test_malformed_json_is_400(engine: EngineProcess) -> None:
    response = httpx.post(f"{engine.base_url}/v1/completions", content=b"{not json", timeout=30)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


def test_client_leaving_a_stream_frees_its_batch_slot(engine: EngineProcess) -> None:
    body = {"model": "tiny", "prompt": "while True:", "max_tokens": 1000, "stream": True, "temperature": 0}
    with httpx.stream("POST", f"{engine.base_url}/v1/completions", json=body, timeout=30) as response:
        lines = response.iter_lines()  # keep a reference: a dropped iterator closes the stream early
        for _ in range(3):
            next(lines)
        load = httpx.get(f"{engine.base_url}/load").json()
        assert load["running"] == 1, (load, response.status_code)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if httpx.get(f"{engine.base_url}/load").json() == {"in_flight": 0, "waiting": 0, "running": 0}:
            return
        time.sleep(0.05)
    raise AssertionError(f"the abandoned stream still holds the engine: {httpx.get(f'{engine.base_url}/load').json()}")


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        ("chat/completions", {"messages": [{"role": "user", "content": "word " * 400_000}]}, "messages"),
        ("completions", {"prompt": "word " * 400_000}, "prompt"),
    ],
)
def test_an_oversize_prompt_is_refused_before_tokenizing(
    engine: EngineProcess, route: str, body: dict[str, object], param: str
) -> None:
    # 2 MB of text: more bytes than the context can hold, refused by size, not after counting its tokens.
    response = httpx.post(f"{engine.base_url}/v1/{route}", json={"model": "tiny", **body}, timeout=60)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == param
    assert "2000000 bytes" in error["message"] and "maximum context length" in error["message"]
    # A prompt that fits is still served.
    assert client(engine).completions.create(model="tiny", prompt="word " * 20, max_tokens=2).choices
