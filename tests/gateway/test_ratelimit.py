"""The per-key limits: N requests, or T tokens, per one-minute window, then Retry-After until it ends."""

from __future__ import annotations

from tide.gateway.ratelimit import REQUESTS, TOKENS, KeyLimiter, Refusal


def test_limit_per_window_and_retry_after() -> None:
    limiter = KeyLimiter()
    assert [limiter.admit("a", 3, 100.0 + i) for i in range(3)] == [None, None, None]
    assert limiter.admit("a", 3, 103.0) == Refusal(REQUESTS, 57)  # the window began at 100
    assert limiter.admit("b", 3, 103.0) is None  # other keys are unaffected
    assert limiter.admit("c", None, 103.0) is None  # no limit
    assert limiter.admit("a", 3, 159.5) == Refusal(REQUESTS, 1)
    assert limiter.admit("a", 3, 160.0) is None  # a new window
    limiter.forget({"b"})
    assert set(limiter.windows) == {"b"}


def test_tokens_per_minute_counts_finished_responses() -> None:
    limiter = KeyLimiter()
    assert limiter.admit("a", None, 100.0, tokens_per_minute=50) is None
    assert limiter.admit("a", None, 100.5, tokens_per_minute=50) is None  # in flight: tokens not known yet
    limiter.record_tokens("a", 30, 101.0)
    assert limiter.admit("a", None, 102.0, tokens_per_minute=50) is None  # 30 < 50
    limiter.record_tokens("a", 30, 103.0)
    limiter.record_tokens("a", 30, 104.0)  # the requests admitted before the limit still count
    assert limiter.admit("a", None, 110.0, tokens_per_minute=50) == Refusal(TOKENS, 50)
    assert limiter.admit("b", None, 110.0, tokens_per_minute=50) is None  # other keys are unaffected
    assert limiter.admit("a", None, 160.0, tokens_per_minute=50) is None  # a new window, tokens start at 0
    assert limiter.windows["a"].tokens == 0


def test_the_request_limit_is_checked_with_the_token_limit() -> None:
    limiter = KeyLimiter()
    assert limiter.admit("a", 1, 0.0, tokens_per_minute=1000) is None
    assert limiter.admit("a", 1, 1.0, tokens_per_minute=1000) == Refusal(REQUESTS, 59)
