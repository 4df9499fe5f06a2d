"""Refusals in the API's error shape with the right status; hostile requests never crash it."""

from __future__ import annotations

import threading

import httpx2 as httpx
import openai
import pytest
from support.served import API_KEY, MODEL_ID, Served

from gpt_oss_desktop.mlx_model.server import check_exposure, is_loopback


def post(served: Served, path: str, content: bytes | str, key: str = API_KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return httpx.post(served.server.url + path, content=content, headers=headers, timeout=30)


def assert_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param
    return error


def test_wrong_or_missing_key_is_401(served: Served) -> None:
    with pytest.raises(openai.AuthenticationError):
        served.client(api_key="wrong").models.list()
    response = httpx.get(served.server.url + "/models")
    assert_error(response, 401)


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/responses", "{not json", None),
    ("/responses", "[1, 2]", None),
    ("/responses", '{"input": 5}', "input"),
    ("/responses", '{"input": "hi", "temperature": "hot"}', "temperature"),
    ("/responses", '{"input": "hi", "temperature": 9}', "temperature"),
    ("/responses", '{"input": "hi", "max_output_tokens": 0}', "max_output_tokens"),
    ("/responses", '{"input": "hi", "reasoning": {"effort": "extreme"}}', "reasoning.effort"),
    ("/responses", '{"input": [{"type": "message", "role": "wizard", "content": "x"}]}', "input[0].role"),
    ("/responses", '{"input": [{"type": "function_call_output", "call_id": "c1", "output": "x"}]}',
     "input[0].call_id"),
    ("/responses", '{"input": "hi", "tools": [{"type": "function", "name": "a b"}]}', "tools[0].name"),
    ("/responses", '{"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}',
     "input[0].content[0].type"),
    ("/chat/completions", '{"messages": []}', "messages"),
    ("/chat/completions", '{"messages": [{"role": "user", "content": 3}]}', "messages[0].content"),
    ("/chat/completions", '{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream"),
    ("/chat/completions", '{"messages": [{"role": "tool", "tool_call_id": "x", "content": "y"}]}',
     "messages[0].tool_call_id"),
    ("/chat/completions", '{"messages": [{"role": "user", "content": "x"}], "n": 2}', "n"),
    ("/chat/completions", '{"messages": [{"role": "user", "content": "x"}], "max_tokens": true}', "max_tokens"),
])
def test_bad_requests_are_400_naming_the_field(served: Served, path: str, body: str, param: str | None) -> None:
    assert_error(post(served, path, body), 400, param)


def test_unknown_model_and_route_are_404(served: Served) -> None:
    error = assert_error(post(served, "/chat/completions",
                              '{"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]}'), 404, "model")
    assert error["code"] == "model_not_found"
    assert_error(httpx.get(served.server.url + "/nowhere", headers={"Authorization": f"Bearer {API_KEY}"}), 404)


def test_huge_body_is_413(served: Served) -> None:
    assert_error(post(served, "/responses", b'{"input": "' + b"x" * (17 * 1024 * 1024) + b'"}'), 413)


def test_prompt_beyond_the_context_is_400(client: openai.OpenAI) -> None:
    long_input = "word " * 1500  # the test engine's context is 1024 tokens
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL_ID, input=long_input)
    assert caught.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": long_input}], stream=True)
    assert caught.value.body["code"] == "context_length_exceeded"


def test_full_queue_is_429(served: Served, client: openai.OpenAI) -> None:
    runner = served.runner
    release = threading.Event()
    limit = runner.max_waiting
    runner.max_waiting = 0
    try:
        for _ in range(runner.max_batch):  # the engine is busy with as many requests as it batches
            runner.submit(lambda engine: release.wait(30))
        with pytest.raises(openai.RateLimitError) as caught:
            client.responses.create(model=MODEL_ID, input="hi")
        assert caught.value.body["code"] == "queue_full"
    finally:
        runner.max_waiting = limit
        release.set()
    assert client.models.list().data  # and the server goes on


def test_non_loopback_needs_a_key() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    check_exposure("127.0.0.1", None)
    check_exposure("0.0.0.0", "secret")
    with pytest.raises(ValueError, match="api-key"):
        check_exposure("0.0.0.0", None)
