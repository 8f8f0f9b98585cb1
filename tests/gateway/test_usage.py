"""Token usage read from the end of a response as engines write it (JSON, an event stream, embeddings)."""

from __future__ import annotations

import orjson

from tide.gateway.usage import TAIL_BYTES, TailScanner, usage_tokens


def test_a_completion_body_with_usage_details() -> None:
    body = orjson.dumps(
        {
            "id": "x",
            "choices": [{"message": {"content": "ok"}}],
            "usage": {
                "prompt_tokens": 12,
                "total_tokens": 19,
                "completion_tokens": 7,
                "prompt_tokens_details": {"cached_tokens": 4},
            },
            "prompt_logprobs": None,
        }
    )
    assert usage_tokens(body) == (12, 7)


def test_an_event_stream_counts_its_last_usage_and_a_long_body_is_read_in_pieces() -> None:
    chunks = [b'data: {"choices":[{"delta":{"content":"%d"}}],"usage":null}\n\n' % i for i in range(2000)]
    chunks.append(b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2000,"total_tokens":2005}}\n\n')
    chunks.append(b"data: [DONE]\n\n")
    scanner = TailScanner()
    for chunk in chunks:
        scanner.feed(chunk)
    assert scanner.size - len(scanner.pieces[0]) < TAIL_BYTES  # only the tail is held
    assert scanner.tokens() == (5, 2000)


def test_no_usage_counts_nothing_and_embeddings_count_their_prompt() -> None:
    assert usage_tokens(b'data: {"choices":[{"delta":{}}],"usage":null}\n\ndata: [DONE]\n\n') == (0, 0)
    assert usage_tokens(b"") == (0, 0)
    assert usage_tokens(b'{"data":[{"embedding":[0.1]}],"usage":{"prompt_tokens":9,"total_tokens":9}}') == (9, 0)


def test_spacing_and_odd_values() -> None:
    assert usage_tokens(b'"usage" : { "prompt_tokens" : 3 , "completion_tokens" :4 }') == (3, 4)
    assert usage_tokens(b'"usage":{"prompt_tokens":null,"completion_tokens":"x"}') == (0, 0)
