"""The per-key limit: N requests per one-minute window, then Retry-After until the window ends."""

from __future__ import annotations

from tide.gateway.ratelimit import KeyLimiter


def test_limit_per_window_and_retry_after() -> None:
    limiter = KeyLimiter()
    assert [limiter.admit("a", 3, 100.0 + i) for i in range(3)] == [None, None, None]
    assert limiter.admit("a", 3, 103.0) == 57  # the window began at 100
    assert limiter.admit("b", 3, 103.0) is None  # other keys are unaffected
    assert limiter.admit("c", None, 103.0) is None  # no limit
    assert limiter.admit("a", 3, 159.5) == 1
    assert limiter.admit("a", 3, 160.0) is None  # a new window
    limiter.forget({"b"})
    assert set(limiter.windows) == {"b"}
