"""The official openai client works through the gateway unchanged (only the base URL differs)."""

from __future__ import annotations

import httpx
import openai

from tests.gateway.fake_upstream import FakeUpstream
from tests.gateway.helpers import CHAT, deployment, run, running_gateway, table, upstreams, url


def test_openai_client_chat_completion_stream_embeddings_and_models() -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("r1")) as (fake,), running_gateway(table(deployment("tiny", [fake]))) as gw:
            client = openai.AsyncOpenAI(base_url=url(gw, "/v1"), api_key="sk-test", max_retries=0)
            chat = await client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}])
            assert chat.choices[0].message.content == "hello from r1"

            completion = await client.completions.create(model="tiny", prompt="hi")
            assert completion.choices[0].text == "hello from r1"

            stream = await client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            tokens = [chunk.choices[0].delta.content async for chunk in stream]
            assert tokens == ["tok0 ", "tok1 ", "tok2 "]

            embedding = await client.embeddings.create(model="tiny", input="hi")
            assert embedding.data[0].embedding == [0.25, 0.5]

            models = await client.models.list()
            assert [m.id for m in models.data] == ["tiny"]

            # The replica saw the OpenAI paths under its own base URL, with the client's auth header.
            assert [r.path for r in fake.requests] == [
                "/v1/chat/completions", "/v1/completions", "/v1/chat/completions", "/v1/embeddings",
            ]  # fmt: skip
            assert fake.requests[0].headers["authorization"] == "Bearer sk-test"
            await client.close()

    run(scenario())


def test_upstream_error_status_and_body_pass_through_unchanged() -> None:
    async def scenario() -> None:
        async with (
            upstreams(FakeUpstream("r1", status=422)) as (fake,),
            running_gateway(table(deployment("tiny", [fake]))) as gw,
            httpx.AsyncClient() as http,
        ):
            response = await http.post(url(gw), json=CHAT)
            assert response.status_code == 422
            assert response.json()["error"]["message"] == "r1 says no"
            assert response.headers["x-replica"] == "r1"

    run(scenario())
