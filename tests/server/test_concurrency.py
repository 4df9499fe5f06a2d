"""Many clients at once: nothing lost or mixed up; a client that leaves mid-stream stops its
generation at the next token and leaves the cache consistent for the next request."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import openai
from support.harmony_model import EXCHANGES, LEVELS
from support.served import MODEL_ID, Served

from gpt_oss_desktop.mlx_model.events import Done


def test_eight_concurrent_clients_get_their_own_answers(served: Served) -> None:
    jobs = [(name, level, index % 2 == 0) for index, (name, level) in
            enumerate((name, level) for level in LEVELS for name in EXCHANGES)][:6]
    jobs += [("sum", "medium", False), ("colour", "high", True)]

    def ask(job: tuple[str, str, bool]) -> tuple[str, str]:
        name, level, chat = job
        client = served.client()
        exchange = EXCHANGES[name]
        if chat:
            choice = client.chat.completions.create(
                model=MODEL_ID, messages=[{"role": "user", "content": exchange.question}], temperature=0,
                reasoning_effort=level).choices[0]
            return choice.message.model_extra["reasoning"], choice.message.content
        events = list(client.responses.create(model=MODEL_ID, input=exchange.question, temperature=0,
                                              reasoning={"effort": level}, stream=True))
        reasoning = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
        return reasoning, events[-1].response.output_text

    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(ask, jobs))
    assert answers == [(EXCHANGES[name].analysis, EXCHANGES[name].final) for name, _, _ in jobs]
    assert served.runner.in_flight == 0


def test_disconnect_mid_stream_cancels_at_the_next_token(served: Served, client: openai.OpenAI) -> None:
    engine = served.runner.engine
    reply = engine.reply
    endings: list[str] = []

    def slow_reply(*args, **kwargs):  # slow enough that the client leaves mid-reply
        for event in reply(*args, **kwargs):
            if isinstance(event, Done):
                endings.append(event.reason)
            time.sleep(0.05)
            yield event

    engine.reply = slow_reply
    try:
        stream = client.responses.create(model=MODEL_ID, input=EXCHANGES["sum"].question, temperature=0,
                                         stream=True)
        for event in stream:
            if event.type == "response.reasoning_text.delta":
                break
        stream.close()
        deadline = time.monotonic() + 20
        while not endings and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        engine.reply = reply
    assert endings == ["cancelled"]
    assert len(engine.cache.tokens) < len(engine.last_prompt) + 10  # stopped early, not at <|return|>
    again = client.responses.create(model=MODEL_ID, input=EXCHANGES["sum"].question, temperature=0)
    assert again.output_text == EXCHANGES["sum"].final
    assert again.usage.input_tokens_details.cached_tokens > 0


def test_two_clients_taking_turns_each_reuse_their_own_history(served: Served) -> None:
    """The engine's cache pool keeps both conversations: neither re-prefills the other's."""
    first_a = served.client().responses.create(model=MODEL_ID, input=EXCHANGES["sum"].question, temperature=0,
                                               reasoning={"effort": "low"})
    chat_b = [{"role": "user", "content": EXCHANGES["colour"].question}]
    first_b = served.client().chat.completions.create(model=MODEL_ID, messages=chat_b, temperature=0,
                                                      reasoning_effort="medium")
    second_a = served.client().responses.create(model=MODEL_ID, previous_response_id=first_a.id, temperature=0,
                                                input=EXCHANGES["colour"].question, reasoning={"effort": "low"})
    chat_b += [{"role": "assistant", "content": first_b.choices[0].message.content},
               {"role": "user", "content": EXCHANGES["sum"].question}]
    second_b = served.client().chat.completions.create(model=MODEL_ID, messages=chat_b, temperature=0,
                                                       reasoning_effort="medium")
    assert second_a.output_text == EXCHANGES["colour"].final and second_b.choices[0].message.content == \
        EXCHANGES["sum"].final
    assert second_a.usage.input_tokens_details.cached_tokens == first_a.usage.input_tokens
    assert second_b.usage.prompt_tokens_details.cached_tokens == first_b.usage.prompt_tokens
