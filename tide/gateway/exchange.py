"""One proxied request: queueing for a replica, sending, relaying the response, retrying, cancelling.

Retry rule: a request is retried on another replica only while nothing of the response has reached the
client. After that, a cut stream ends with an SSE error event (for event streams) or a cut connection.
When no other replica is left to try, the request goes back to the head of its deployment's queue and
waits, like a request that found no ready replica, for one it has not tried (the controller replaces a
dead replica) or, after `unhealthy_s`, for any; it fails with 502 after `max_attempts` failed tries and
with 503 at the queue wait limit. Waiting is the queue's business (activator.py): an exchange asks it to
wait, again or no more, and tells it when a replica it used has room again.

An exchange does not know the gateway: what it needs besides its client and its deployment is the
`Upstreams` it is given (connections, where to report on replicas, background tasks, the retry limit).

Idle rule: a replica that sends nothing for the gateway's `upstream_idle_timeout_s` while holding a request
(a hung engine) has its connection closed, which cancels the work; the client gets a 504 if nothing was
sent yet, else an SSE error event or a cut connection, as for a stream cut short. It is not retried: the
work may have run, and a second replica would likely hang the same way on the same request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from tide.gateway.cachefeedback import CacheFeedback, confirmed_chunks
from tide.gateway.errors import error_payload, error_response
from tide.gateway.prefix import prompt_bytes
from tide.gateway.usage import TailScanner, usage_cached, usage_tokens

if TYPE_CHECKING:
    from tide.gateway.balancing import DeploymentState, ReplicaState
    from tide.gateway.gateway import Account
    from tide.gateway.replicas import ReplicaBook
    from tide.gateway.server import ClientConnection, IncomingRequest
    from tide.gateway.tasks import BackgroundTasks
    from tide.gateway.upstream import UpstreamConnection, UpstreamPool

# Hop-by-hop headers (RFC 9110 7.6.1) and framing headers the gateway sets itself.
HOP_BY_HOP = frozenset(
    [b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te", b"trailer", b"upgrade",
     b"content-length", b"host", b"expect"]
)  # fmt: skip

_FRAMING_LENGTH, _FRAMING_CHUNKED, _FRAMING_CLOSE, _FRAMING_NONE = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Upstreams:
    """The narrow interface an exchange works through (one per gateway)."""

    pool: UpstreamPool  # keep-alive connections to replicas
    replicas: ReplicaBook  # where failures, hangs and the end of draining replicas' requests are told
    tasks: BackgroundTasks  # connecting runs in the background
    max_attempts: int  # failed tries before a 502
    count_tokens: Callable[[Account, int, int], None]  # a response's token usage, for its key and gateway


class Exchange:
    __slots__ = (
        "_feedback", "_forwarded_headers", "_framing", "_head_sent", "_out", "_predicted", "_quiet_since",
        "_reads_seen", "_sent_requests", "_stale_retries", "_streaming_events", "_tail", "_tracked",
        "_upstream_until_close",
        "account", "attempts", "client", "deployment", "done", "prefix", "replica", "request", "suffix", "tried",
        "upstream", "upstreams",
    )  # fmt: skip

    def __init__(
        self, upstreams: Upstreams, client: ClientConnection, request: IncomingRequest, deployment: DeploymentState,
        suffix: bytes, dropped_headers: frozenset[bytes],
    ) -> None:  # fmt: skip
        self.upstreams = upstreams
        self.client = client
        self.request = request
        self.deployment = deployment
        self.suffix = suffix  # the path after /v1, with the query string
        self.replica: ReplicaState | None = None
        self.upstream: UpstreamConnection | None = None
        self.tried: set[str] = set()
        self.prefix: tuple[int, ...] = ()  # the prompt's chunk names, for prefix-aware deployments
        self.attempts = 0
        self.done = False
        self._stale_retries = 0
        self._reads_seen = -1  # the upstream's read count at the last idle sweep; -1: not yet seen
        self._quiet_since = 0.0
        self._head_sent = False
        self._framing = _FRAMING_LENGTH
        self._streaming_events = False
        self._upstream_until_close = False  # the replica's body ends when it closes (no length, not chunked)
        self._out: list[bytes] = []
        # Usage accounting (tide/gateway/usage.py): whom this request counts for, and the tail of a
        # successful response, read for the engine's token usage when it ends.
        self.account: Account | None = None
        self._tail: TailScanner | None = None
        # Prefix-aware requests to a replica whose engine reports cached tokens: its feedback (when there is
        # a prediction to check or the request is counted in flight), the chunks its index predicted held
        # (0: none to check), whether it brought names (counted in flight until it ends), its index's
        # request count then (cachefeedback.py).
        self._feedback: CacheFeedback | None = None
        self._predicted = 0
        self._tracked = False
        self._sent_requests = 0
        self._forwarded_headers = b"".join(
            [name + b": " + value + b"\r\n" for name, value in request.headers if name not in dropped_headers]
        )

    # ---- dispatch -------------------------------------------------------------------------------
    def start_on(self, replica: ReplicaState, fresh_connection: bool = False) -> None:
        """Send the request to `replica` (which the caller checked has room)."""
        self.replica = replica
        self._reads_seen = -1
        replica.in_flight += 1
        replica.deployment.in_flight += 1
        prefix = self.prefix
        if prefix:
            feedback = replica.cache_feedback
            if feedback.listening:  # its engine reports cached tokens: what to check at the response
                # (Inline, not a method: this runs per request, and a Python call costs about 1k instructions.)
                held, replica.prefix_held = replica.prefix_held, 0  # what the pick that chose it predicted
                tracked = held < len(prefix)  # it brings names: counted in flight until it ends
                predicted = feedback.sent(prefix[0], held, len(prefix))
                if predicted or tracked:
                    self._feedback = feedback
                    self._predicted = predicted
                    self._tracked = tracked
                    self._sent_requests = replica.prefix_index.requests
        connection = None if fresh_connection else self.upstreams.pool.take_idle(replica.address)
        if connection is not None:
            self.upstream = connection
            connection.send(self, self._request_bytes(replica))
        else:
            self.upstreams.tasks.spawn(self._connect_and_send(replica))

    async def _connect_and_send(self, replica: ReplicaState) -> None:
        try:
            connection = await self.upstreams.pool.connect(replica.address, replica.use_tls)
        except (TimeoutError, OSError):
            if not self.done and self.replica is replica:
                self._failed_before_response(replica, fresh_connection=True)
            return
        if self.done or self.replica is not replica:  # cancelled while connecting: keep it for others
            self.upstreams.pool.release(connection)
            return
        self.upstream = connection
        connection.send(self, self._request_bytes(replica))

    def _request_bytes(self, replica: ReplicaState) -> bytes:
        request = self.request
        body = request.body
        return b"".join(
            [
                request.method, b" ", replica.path_prefix, self.suffix, b" HTTP/1.1\r\nhost: ",
                replica.host_header, b"\r\n", self._forwarded_headers,
                b"content-length: ", str(len(body)).encode(), b"\r\n\r\n", body,
            ]
        )  # fmt: skip

    # ---- upstream callbacks ---------------------------------------------------------------------
    def on_upstream_head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        framing = _FRAMING_CLOSE
        lines = [b"HTTP/1.1 ", str(status).encode(), b" ", reason or b"OK", b"\r\n"]
        for name, value in headers:
            lower = name.lower()
            if lower == b"content-length":
                if framing == _FRAMING_CLOSE:
                    framing = _FRAMING_LENGTH
                lines += (name, b": ", value, b"\r\n")
            elif lower == b"transfer-encoding":
                if b"chunked" in value.lower():
                    framing = _FRAMING_CHUNKED
            elif lower in HOP_BY_HOP:
                continue
            else:
                if lower == b"content-type" and value.startswith(b"text/event-stream"):
                    self._streaming_events = True
                lines += (name, b": ", value, b"\r\n")
        self._upstream_until_close = framing == _FRAMING_CLOSE
        if (self.account is not None or self._predicted) and 200 <= status < 300:
            self._tail = TailScanner()
        if status < 200 or status in (204, 304):
            framing = _FRAMING_NONE
        elif framing != _FRAMING_LENGTH:
            # The replica streams (chunked or until close): re-frame as chunked so the client connection
            # can be kept; an HTTP/1.0 client gets the body until the connection closes.
            framing = _FRAMING_CHUNKED if self.request.http11 else _FRAMING_CLOSE
            if framing == _FRAMING_CHUNKED:
                lines.append(b"transfer-encoding: chunked\r\n")
        if not self._client_keep_alive(framing):
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        self._framing = framing
        self._out.append(b"".join(lines))

    def on_upstream_body(self, body: bytes) -> None:
        if self._tail is not None:
            self._tail.feed(body)
        if self._framing == _FRAMING_CHUNKED:
            self._out.append(b"%x\r\n%b\r\n" % (len(body), body))
        else:
            self._out.append(body)

    def flush(self) -> None:
        out = self._out
        if out:
            self._head_sent = True
            client = self.client
            client.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
            if client.writing_paused:
                self.pause_upstream()

    def on_upstream_complete(self, connection: UpstreamConnection) -> None:
        self.upstream = None
        if self._framing == _FRAMING_CHUNKED:
            self.client.write(b"0\r\n\r\n")
        self._finish(self._client_keep_alive(self._framing))

    def on_upstream_lost(self, connection: UpstreamConnection, protocol_error: bool) -> None:
        self.upstream = None
        if self.done:
            return
        self.flush()
        if not self._head_sent:
            assert self.replica is not None
            stale = connection.requests_sent > 1 and not connection.response_started and not protocol_error
            self._failed_before_response(self.replica, fresh_connection=not stale)
            return
        if self._upstream_until_close:  # the close was the end of the body
            self._finish(False)
        else:
            self._end_cut_response("The model server closed the stream early", "upstream_disconnected")

    def _end_cut_response(self, message: str, code: str) -> None:
        """The response started and will not be completed: an event stream ends with an error event the
        client can show; any other body can only be cut (the client sees a short read)."""
        self._count_error(code)
        if self._streaming_events and self._framing in (_FRAMING_CHUNKED, _FRAMING_CLOSE):
            event = b"data: " + orjson.dumps(error_payload(message, "server_error", code)) + b"\n\n"
            if self._framing == _FRAMING_CHUNKED:
                self.client.write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(event), event))
                self._finish(self.request.keep_alive)
            else:  # an HTTP/1.0 client: the event, then the close that ends the body
                self.client.write(event)
                self._finish(False)
        else:
            self._release_replica()
            self.done = True
            self.client.exchange = None
            self.client.abort()

    def _failed_before_response(self, replica: ReplicaState, fresh_connection: bool) -> None:
        """Nothing reached the client yet: try again, on another replica if this one looks broken."""
        self._release_replica()
        if not fresh_connection and self._stale_retries < 2:
            # A kept-alive connection the replica had already closed: not the replica's fault.
            self._stale_retries += 1
            self._retry_on(replica)
            return
        self.upstreams.replicas.failed(replica)
        self.tried.add(replica.replica_id)
        self.attempts += 1
        if self.attempts < self.upstreams.max_attempts:
            other = self.deployment.pick_replica(exclude=self.tried, prefix=self.prefix)
            if other is not None:
                self.start_on(other)
            else:
                self.deployment.queue.wait_again(self)
            return
        self.respond_error(
            502,
            f"Could not reach a replica of deployment '{self.deployment.deployment_id}' "
            f"after {self.attempts} attempt(s)",
            "server_error",
            "upstream_unavailable",
        )

    def _retry_on(self, replica: ReplicaState) -> None:
        if replica.active and replica.has_room():
            self.start_on(replica, fresh_connection=True)
        else:
            other = self.deployment.pick_replica(exclude=self.tried, prefix=self.prefix)
            if other is not None:
                self.start_on(other)
            else:
                self.respond_error(502, "The replica closed the connection", "server_error", "upstream_unavailable")

    # ---- idle watchdog ---------------------------------------------------------------------------
    def check_idle(self, now: float, timeout_s: float) -> None:
        """Called by the gateway's sweep: time out if the replica has sent nothing for `timeout_s`.
        Reading paused for a slow client is the client's doing, not the replica's: it counts as activity."""
        upstream = self.upstream
        if upstream is None or self.done:  # queued or connecting: the queue and connect timeouts cover it
            return
        if upstream.reads != self._reads_seen or upstream.reading_paused:
            self._reads_seen = upstream.reads
            self._quiet_since = now
        elif now - self._quiet_since >= timeout_s:
            self._idle_timed_out(timeout_s)

    def _idle_timed_out(self, timeout_s: float) -> None:
        upstream, replica = self.upstream, self.replica
        assert upstream is not None and replica is not None
        self.upstream = None
        upstream.exchange = None
        upstream.close()
        what = f"replica {replica.replica_id} of deployment '{self.deployment.deployment_id}'"
        message = (
            f"The {what} sent nothing for {timeout_s:g}s (the gateway's upstream idle timeout); "
            "the request was cancelled on the replica"
        )
        self.upstreams.replicas.timed_out(replica, timeout_s)
        self.flush()
        if not self._head_sent:
            self.respond_error(504, message, "server_error", "upstream_timeout")
        else:
            self._end_cut_response(message, "upstream_timeout")

    # ---- client side ----------------------------------------------------------------------------
    def pause_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    def cancel(self) -> None:
        """The client went away: stop waiting, and cancel the replica's work by closing its connection."""
        if self.done:
            return
        self.done = True
        self.deployment.queue.leave(self)
        upstream = self.upstream
        if upstream is not None:
            self.upstream = None
            upstream.exchange = None
            upstream.close()
        self._release_replica()

    def respond_error(
        self, status: int, message: str, error_type: str, code: str | None, retry_after_s: int | None = None
    ) -> None:
        if self.done:
            return
        self._count_error(code or str(status))
        keep_alive = self.request.keep_alive
        self.done = True
        self._release_replica()
        self.client.respond(
            error_response(status, message, error_type, code, keep_alive=keep_alive, retry_after_s=retry_after_s),
            keep_alive,
        )

    def _count_error(self, code: str) -> None:
        self.deployment.count_error(code)

    def _client_keep_alive(self, framing: int) -> bool:
        return self.request.keep_alive and framing != _FRAMING_CLOSE

    def _finish(self, keep_alive: bool) -> None:
        self.done = True
        tail = self._tail
        if tail is not None:
            self._tail = None
            data = tail.tail()
            account = self.account
            if account is not None:
                self.upstreams.count_tokens(account, *usage_tokens(data))
            if self._predicted:
                self._check_prefix(data)
        self._release_replica()
        self.client.finish(keep_alive)

    def _check_prefix(self, tail: bytes) -> None:
        """The engine's report of the cached prompt tokens, against what the replica's index predicted."""
        replica, feedback = self.replica, self._feedback
        if replica is None or feedback is None:
            return
        predicted = self._predicted
        reported = usage_cached(tail)
        confirmed = (
            None if reported is None else confirmed_chunks(predicted, prompt_bytes(self.request.body), *reported)
        )
        if feedback.observe(replica.prefix_index, self.prefix, predicted, self._sent_requests, confirmed):
            replica.deployment.touch()  # its load snapshot reports the count

    def _release_replica(self) -> None:
        feedback = self._feedback
        if feedback is not None:
            self._feedback = None
            self._predicted = 0
            if self._tracked:
                self._tracked = False
                feedback.ended(self.prefix[0])
        replica = self.replica
        if replica is not None:
            self.replica = None
            replica.in_flight -= 1
            deployment = replica.deployment
            deployment.in_flight -= 1
            if not replica.active:  # dropped from the table: draining
                self.upstreams.replicas.drained(replica)
            elif deployment.queue:  # room for the next one waiting
                deployment.queue.drain()
