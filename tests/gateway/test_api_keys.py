"""Gateway API keys: who gets in, what replicas see, and rotation through the keys file."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import openai
import pytest

from tests.gateway.fake_upstream import FakeUpstream
from tests.gateway.helpers import CHAT, deployment, run, running_gateway, table, upstreams, url
from tide.gateway.keys import ENV_KEYS, ApiKeyError, GatewayKeys, parse_keys


def test_keys_file_lines_comments_and_blank_lines() -> None:
    text = b"sk-one\n\n# a comment\n  sk-two   # team b\n#sk-off\nsk-with#hash\n"
    assert parse_keys(text) == [b"sk-one", b"sk-two", b"sk-with#hash"]  # a `#` inside a key is the key's


def test_only_a_bearer_header_with_a_listed_key_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("sk-one\nsk-two\n")
    keys = GatewayKeys(path)
    assert keys.count == 2
    assert keys.accepts(b"Bearer sk-one") and keys.accepts(b"bearer sk-two")
    assert not keys.accepts(b"Bearer sk-three")
    assert not keys.accepts(b"sk-one")  # not a bearer credential
    assert not keys.accepts(b"Basic c2stb25l")
    assert not keys.accepts(None)
    assert not keys.accepts(b"Bearer ")


def test_rotation_by_editing_the_file_and_a_broken_file_keeps_the_old_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("sk-old\n")
    keys = GatewayKeys(path)
    path.write_text("sk-new\n")
    os.utime(path, ns=(1, 1))  # a different mtime even within the file system's timestamp granularity
    keys.reload_if_changed()
    assert keys.accepts(b"Bearer sk-new") and not keys.accepts(b"Bearer sk-old")
    path.write_text("sk-newer\n")  # same mtime (set back below), other size: still seen as a change
    os.utime(path, ns=(1, 1))
    keys.reload_if_changed()
    assert keys.accepts(b"Bearer sk-newer") and not keys.accepts(b"Bearer sk-new")
    path.unlink()
    keys.reload_if_changed()  # logged; the gateway does not fall open or shut
    assert keys.accepts(b"Bearer sk-newer")


def test_environment_keys_and_no_keys_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KEYS, raising=False)
    assert GatewayKeys.from_config(None) is None  # nothing configured: an open gateway
    monkeypatch.setenv(ENV_KEYS, "sk-env1, sk-env2")
    keys = GatewayKeys.from_config(None)
    assert keys is not None and keys.accepts(b"Bearer sk-env2")
    with pytest.raises(ApiKeyError, match="missing"):
        GatewayKeys.from_config(tmp_path / "missing")


def test_a_gateway_with_keys_answers_401_without_one_and_hides_the_key_from_replicas(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("sk-team-a\n")

    async def scenario() -> None:
        async with (
            upstreams(FakeUpstream("r1")) as (fake,),
            running_gateway(table(deployment("tiny", [fake])), api_keys=GatewayKeys(path)) as gw,
            httpx.AsyncClient() as http,
        ):
            for headers in ({}, {"authorization": "Bearer sk-wrong"}):
                for response in (
                    await http.post(url(gw), json=CHAT, headers=headers),
                    await http.get(url(gw, "/v1/models"), headers=headers),
                ):
                    assert response.status_code == 401
                    assert response.json()["error"]["code"] == "invalid_api_key"
            assert fake.requests == []  # nothing reached the replica
            assert (await http.get(url(gw, "/health"))).status_code == 200  # probes need no key

            client = openai.AsyncOpenAI(base_url=url(gw, "/v1"), api_key="sk-team-a", max_retries=0)
            chat = await client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}])
            assert chat.choices[0].message.content == "hello from r1"
            assert [m.id async for m in client.models.list()] == ["tiny"]
            assert "authorization" not in fake.requests[-1].headers  # the gateway's key stays at the gateway

            wrong = openai.AsyncOpenAI(base_url=url(gw, "/v1"), api_key="sk-other", max_retries=0)
            with pytest.raises(openai.AuthenticationError):
                await wrong.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}])

    run(scenario())


def test_an_open_gateway_passes_the_client_authorization_on() -> None:
    async def scenario() -> None:
        async with (
            upstreams(FakeUpstream("r1")) as (fake,),
            running_gateway(table(deployment("tiny", [fake]))) as gw,
            httpx.AsyncClient() as http,
        ):
            response = await http.post(url(gw), json=CHAT, headers={"authorization": "Bearer upstream-key"})
            assert response.status_code == 200
            assert fake.requests[-1].headers["authorization"] == "Bearer upstream-key"

    run(scenario())


def test_a_request_without_a_key_gets_no_100_continue_and_its_body_is_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("sk-team-a\n")

    async def scenario() -> None:
        async with (
            upstreams(FakeUpstream("r1")) as (fake,),
            running_gateway(table(deployment("tiny", [fake])), api_keys=GatewayKeys(path), max_body_bytes=1024) as gw,
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            body = b'{"model": "tiny", "pad": "%b"}' % (b"x" * 4096)  # over max_body_bytes: 413 if it were kept
            writer.write(
                b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b"expect: 100-continue\r\ncontent-length: %d\r\n\r\n" % len(body)
            )
            # An authorized request would get "100 Continue" at once; this one gets nothing until its body.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.3)
            writer.write(body)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 401")
            writer.close()
            assert fake.requests == []

    run(scenario())
