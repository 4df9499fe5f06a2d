"""/v1/responses through the official openai client: items, reasoning, function calls, chains."""

from __future__ import annotations

import openai
import pytest
from support.harmony_model import (
    EXCHANGES,
    WEATHER_ANALYSIS,
    WEATHER_CALL,
    WEATHER_FINAL,
    WEATHER_QUESTION,
    WEATHER_RESULT,
    WEATHER_TOOL,
)
from support.served import MODEL_ID, Served, start

TOOLS = [{"type": "function", **WEATHER_TOOL}]


def test_text_answer_with_full_chain_of_thought(client: openai.OpenAI) -> None:
    exchange = EXCHANGES["sum"]
    response = client.responses.create(model=MODEL_ID, input=exchange.question, temperature=0,
                                       reasoning={"effort": "high"})
    assert response.status == "completed" and response.object == "response"
    assert [item.type for item in response.output] == ["reasoning", "message"]
    reasoning, message = response.output
    assert reasoning.id.startswith("rs_") and reasoning.summary == []
    assert [(c.type, c.text) for c in reasoning.content] == [("reasoning_text", exchange.analysis)]
    assert message.role == "assistant" and message.status == "completed"
    assert [(c.type, c.text) for c in message.content] == [("output_text", exchange.final)]
    assert response.output_text == exchange.final
    usage = response.usage
    assert usage.input_tokens > 20 and usage.output_tokens > 10
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert 0 < usage.output_tokens_details.reasoning_tokens < usage.output_tokens
    assert usage.input_tokens_details.cached_tokens >= 0


def test_repeated_prompt_reports_cached_tokens(client: openai.OpenAI) -> None:
    ask = dict(model=MODEL_ID, input=EXCHANGES["colour"].question, temperature=0, reasoning={"effort": "low"})
    client.responses.create(**ask)
    again = client.responses.create(**ask)
    assert again.output_text == EXCHANGES["colour"].final
    assert again.usage.input_tokens_details.cached_tokens == again.usage.input_tokens


def test_stream_events_have_the_api_names_order_and_numbers(client: openai.OpenAI) -> None:
    exchange = EXCHANGES["sum"]
    events = list(client.responses.create(model=MODEL_ID, input=exchange.question, temperature=0,
                                          reasoning={"effort": "high"}, stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    collapsed = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]
    assert collapsed == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added", "response.reasoning_text.delta",
        "response.reasoning_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed",
    ]
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    reasoning = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert (reasoning, text) == (exchange.analysis, exchange.final)
    assert {e.output_index for e in events if e.type.startswith("response.reasoning_text")} == {0}
    assert {e.output_index for e in events if e.type.startswith("response.output_text")} == {1}
    completed = events[-1].response
    assert completed.output_text == exchange.final and completed.usage.output_tokens > 0


def test_stream_helper_accumulates_the_response(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL_ID, input=EXCHANGES["sum"].question, temperature=0) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == EXCHANGES["sum"].final
    assert final.output[0].content[0].text == EXCHANGES["sum"].analysis


def test_function_call_round_trip_stateless(client: openai.OpenAI) -> None:
    """As Codex does (store false): the client sends the reasoning, call and output back."""
    first = client.responses.create(model=MODEL_ID, input=WEATHER_QUESTION, tools=TOOLS, temperature=0, store=False)
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    call = first.output[1]
    assert (call.name, call.arguments, call.status) == ("get_weather", WEATHER_CALL, "completed")
    assert call.call_id.startswith("call_") and call.id.startswith("fc_")
    history = [{"role": "user", "content": WEATHER_QUESTION},
               *[item.model_dump(exclude_none=True) for item in first.output],
               {"type": "function_call_output", "call_id": call.call_id, "output": WEATHER_RESULT}]
    second = client.responses.create(model=MODEL_ID, input=history, tools=TOOLS, temperature=0, store=False)
    assert second.output_text == WEATHER_FINAL
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


def test_streamed_function_call_events(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=MODEL_ID, input=WEATHER_QUESTION, tools=TOOLS, temperature=0,
                                          stream=True))
    kinds = [e.type for e in events]
    call_events = kinds[kinds.index("response.output_item.added", kinds.index("response.reasoning_text.done")):]
    assert call_events[0] == "response.output_item.added"
    assert call_events[-3:] == ["response.function_call_arguments.done", "response.output_item.done",
                                "response.completed"]
    assert set(call_events[1:-3]) == {"response.function_call_arguments.delta"}
    added = events[kinds.index("response.output_item.added", kinds.index("response.reasoning_text.done"))]
    assert added.item.type == "function_call" and added.item.arguments == "" and added.output_index == 1
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert arguments == done.arguments == WEATHER_CALL and done.name == "get_weather"


def test_previous_response_id_chain_survives_a_restart(served: Served, client: openai.OpenAI) -> None:
    first = client.responses.create(model=MODEL_ID, input=WEATHER_QUESTION, tools=TOOLS, temperature=0)
    call = first.output[-1]
    assert client.responses.retrieve(first.id).output[-1].call_id == call.call_id

    restarted = start(served.runner, served.store_path)  # a new process would open the same file
    try:
        again = served.client(base_url=restarted.url)
        second = again.responses.create(
            model=MODEL_ID, previous_response_id=first.id, tools=TOOLS, temperature=0,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": WEATHER_RESULT}])
        assert second.previous_response_id == first.id
        assert second.output_text == WEATHER_FINAL
        # The whole chain was re-read from the store and the prompt continues the cached one.
        assert second.usage.input_tokens_details.cached_tokens > first.usage.input_tokens
        assert WEATHER_ANALYSIS in served.runner.engine.tokenizer.decode(served.runner.engine.last_prompt)
    finally:
        restarted.stop()


def test_unknown_ids_are_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=MODEL_ID, input="hi", previous_response_id="resp_missing")
    assert caught.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_missing")
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="gpt-5", input="hi")
    assert caught.value.body["code"] == "model_not_found"


def test_output_cut_by_max_output_tokens_is_incomplete(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL_ID, input=EXCHANGES["sum"].question, temperature=0,
                                       max_output_tokens=5)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage.output_tokens == 5 and response.output[-1].status == "incomplete"
