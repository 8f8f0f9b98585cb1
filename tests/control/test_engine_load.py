"""Engine load scraping: each replica's /metrics over real HTTP, freshness, and what the autoscaler sees."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tide.control.engine_load import (
    EngineLoadScraper,
    Reading,
    ScrapeTarget,
    load_json,
    metrics_url,
    observed_concurrency,
)
from tide.control.metrics import ControlMetrics
from tide.engines.prometheus import BUILTIN_LOAD_METRICS, VLLM_LOAD_METRICS, EngineLoad

VLLM_PAGE = """# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="chat"} 3.0
vllm:num_requests_waiting{engine="0",model_name="chat"} 2.0
vllm:kv_cache_usage_perc{engine="0",model_name="chat"} 0.5
"""


class MetricsServer:
    """A loopback HTTP server answering /metrics with `page` (or 500 when `broken`)."""

    def __init__(self) -> None:
        self.page = VLLM_PAGE
        self.broken = False
        self.hang_ups = 0  # this many requests are read and then the connection closed, with no response
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        if self.hang_ups:
            self.hang_ups -= 1
            writer.close()
            return
        path = request.split(b" ")[1]
        status, body = (b"200 OK", self.page.encode()) if path == b"/metrics" else (b"404 Not Found", b"")
        if self.broken:
            status, body = b"500 Internal Server Error", b"boom"
        writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"


def with_server(body: Callable[[MetricsServer, str], Awaitable[None]]) -> None:
    async def main() -> None:
        server = MetricsServer()
        base_url = await server.start()
        try:
            await body(server, base_url)
        finally:
            assert server.server is not None
            server.server.close()

    asyncio.run(main())


def target(base_url: str, replica_id: str = "chat-r1", served_name: str = "chat") -> ScrapeTarget:
    return ScrapeTarget(replica_id, "chat", metrics_url(base_url, "/metrics"), VLLM_LOAD_METRICS, served_name)


def test_metrics_url_is_the_servers_root_not_the_openai_base() -> None:
    assert metrics_url("http://10.0.0.5:8001/v1", "/metrics") == "http://10.0.0.5:8001/metrics"
    assert metrics_url("http://[::1]:9000/v1/", "/metrics") == "http://[::1]:9000/metrics"


def test_gateway_and_engine_counts_are_not_added() -> None:
    busy = EngineLoad(running=3, waiting=1, kv_cache_usage=0.4)
    # Requests the gateway forwarded are in both counts: the larger one wins, they are not summed.
    assert observed_concurrency(4.0, [busy]) == 4.0
    # Requests queued at the gateway are only in its count.
    assert observed_concurrency(9.0, [busy]) == 9.0
    # Requests that reached the replicas directly are only in the engines' counts (summed over replicas).
    assert observed_concurrency(0.0, [busy, EngineLoad(2, 0, None)]) == 6.0
    # No engine reading (not scraped yet, or stale): the gateway alone.
    assert observed_concurrency(2.0, []) == 2.0


def test_scrapes_each_replica_and_forgets_gone_ones() -> None:
    with_server(scrapes_each_replica_and_forgets_gone_ones)


async def scrapes_each_replica_and_forgets_gone_ones(_: MetricsServer, base_url: str) -> None:
    now = 1000.0
    scraper = EngineLoadScraper(clock=lambda: now)
    try:
        await scraper.scrape([target(base_url, "chat-r1"), target(base_url, "chat-r2")])
        assert scraper.fresh("chat-r1", now) == EngineLoad(running=3, waiting=2, kv_cache_usage=0.5)
        assert scraper.fresh("chat-r2", now) is not None
        await scraper.scrape([target(base_url, "chat-r2")])
        assert scraper.fresh("chat-r1", now) is None
    finally:
        await scraper.close()


def test_a_reading_goes_stale_when_the_replica_stops_answering(caplog: pytest.LogCaptureFixture) -> None:
    with_server(reading_goes_stale)
    warnings = [r for r in caplog.records if "no load from" in r.getMessage()]
    assert len(warnings) == 1 and "500" in warnings[0].getMessage()  # once, not at every scrape


async def reading_goes_stale(server: MetricsServer, base_url: str) -> None:
    clock = [1000.0]
    scraper = EngineLoadScraper(clock=lambda: clock[0], stale_after_s=10)
    try:
        await scraper.scrape([target(base_url)])
        server.broken = True
        clock[0] += 5
        await scraper.scrape([target(base_url)])
        await scraper.scrape([target(base_url)])
        # The last good reading holds a while (one failed scrape is not "idle"), then is dropped.
        assert scraper.fresh("chat-r1", clock[0]) is not None
        assert scraper.fresh("chat-r1", clock[0] + 6) is None
    finally:
        await scraper.close()


def test_a_scrape_the_server_hangs_up_on_is_tried_again_at_once() -> None:
    # A busy engine's server closing a kept-alive connection as the scrape is sent ("Server disconnected
    # without sending a response") cost a whole scrape round of readings: vLLM's test saw only stale idle
    # readings in Tide's status while the engine ran four requests.
    with_server(hung_up_once)


async def hung_up_once(server: MetricsServer, base_url: str) -> None:
    clock = [0.0]
    scraper = EngineLoadScraper(clock=lambda: clock[0])
    try:
        server.hang_ups = 1
        await scraper.scrape([target(base_url)])
        assert scraper.fresh("chat-r1", 0.0) == EngineLoad(running=3, waiting=2, kv_cache_usage=0.5)
        server.hang_ups = 3  # hung up on twice in a row: a failed scrape, tried once more, not in a loop
        clock[0] = 2.0
        await scraper.scrape([target(base_url)])
        assert server.hang_ups == 1 and scraper.readings["chat-r1"].at == 0.0
    finally:
        await scraper.close()


def test_another_models_page_gives_no_reading() -> None:
    with_server(another_models_page)


async def another_models_page(_: MetricsServer, base_url: str) -> None:
    scraper = EngineLoadScraper(clock=lambda: 0.0)
    try:
        await scraper.scrape([target(base_url, served_name="another-model")])
        assert scraper.fresh("chat-r1", 0.0) is None
        # And the built-in engine's names do not match a vLLM page either.
        builtin = ScrapeTarget("chat-r1", "chat", metrics_url(base_url, "/metrics"), BUILTIN_LOAD_METRICS, "chat")
        await scraper.scrape([builtin])
        assert scraper.fresh("chat-r1", 0.0) is None
    finally:
        await scraper.close()


def test_status_and_metrics_show_the_prefix_cache_hit_rate() -> None:
    warm = EngineLoad(1, 0, 0.2, prefix_cache_hits=300, prefix_cache_queries=400)
    cold = EngineLoad(1, 0, 0.1, prefix_cache_hits=0, prefix_cache_queries=600)
    builtin = EngineLoad(1, 0, None)
    assert load_json([warm])["prefixCacheHitRate"] == 0.75
    assert load_json([warm, cold, builtin])["prefixCacheHitRate"] == 0.3  # tokens over the replicas
    assert "prefixCacheHitRate" not in load_json([builtin])
    metrics = ControlMetrics()
    metrics.set_engine_loads({"r1": Reading("d", warm, 0.0), "r2": Reading("d", builtin, 0.0)})
    text = metrics.exposition().decode()
    assert 'tide_replica_prefix_cache_hit_ratio{deployment="d",replica="r1"} 0.75' in text
    assert 'replica="r2"} ' not in text.split("tide_replica_prefix_cache_hit_ratio", 1)[1].split("# HELP")[0]
    metrics.set_engine_loads({})
    assert 'tide_replica_prefix_cache_hit_ratio{deployment="d"' not in metrics.exposition().decode()


def test_status_shows_a_nearly_empty_kv_cache_as_in_use() -> None:
    # One short request in vLLM's cache of a tiny model fills well under a thousandth of it.
    assert load_json([EngineLoad(1, 0, 0.0004)])["kvCacheUsage"] == 0.0004
    assert load_json([EngineLoad(1, 0, 0.123456)])["kvCacheUsage"] == 0.123
    assert load_json([EngineLoad(0, 0, 0.0)])["kvCacheUsage"] == 0.0
