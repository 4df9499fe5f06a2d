"""The pieces a reply is made of: the chat rendered once (and every shortened prompt equal to
rendering the shortened chat), the decode loop's logits-processor hook, and the figures Stats
carries so callers need not render again."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import pytest
from support.harmony_model import EXCHANGES, START_DATE, WEATHER_QUESTION, WEATHER_RESULT, WEATHER_TOOL

from gpt_oss_desktop.mlx_model import (
    Chat,
    Done,
    Engine,
    SamplingSettings,
    Stats,
    assistant_message,
    render_prompt,
    text_of,
)
from gpt_oss_desktop.mlx_model import prompt as prompt_module
from gpt_oss_desktop.mlx_model.harmony import drop_completed_chain_of_thought, render_for_completion

GREEDY = SamplingSettings(temperature=0, max_new_tokens=80)


@pytest.fixture()
def engine(harmony_model_dir: Path) -> Engine:
    return Engine.load(harmony_model_dir, context_length=1024, dtype=mx.float32)


def three_turns() -> Chat:
    chat = Chat(start_date=START_DATE, instructions="Be brief.", tools=[WEATHER_TOOL])
    for exchange in (EXCHANGES["sum"], EXCHANGES["colour"]):
        chat.add_user(exchange.question)
        chat.messages += [assistant_message(exchange.analysis, channel="analysis"), assistant_message(exchange.final)]
    chat.add_user(WEATHER_QUESTION)
    chat.messages.append(assistant_message("Look it up.", channel="analysis"))
    chat.messages.append(assistant_message('{"city":"Paris"}', channel="commentary", recipient="functions.get_weather",
                                           content_type="<|constrain|>json"))
    chat.add_tool_result("functions.get_weather", WEATHER_RESULT)
    return chat


def test_every_prompt_of_a_rendered_chat_equals_rendering_that_chat(engine: Engine) -> None:
    chat = three_turns()
    rendered = engine.render(chat)
    header = chat.header_messages()
    for first in (0, *rendered.user_turns()):
        shortened = header + chat.messages[first:]
        assert rendered.prompt(first) == render_for_completion(
            drop_completed_chain_of_thought(shortened), engine.tokenizer
        ), f"the chat from body message {first}"
    assert rendered.header_edges[-1] == len(render_for_completion(header, engine.tokenizer)) - 2
    # With function tools the system message says so, so it is measured inside the whole header
    # (rendered alone it would be shorter, and a snapshot there would fall inside it).
    system_alone = len(render_for_completion(header[:1], engine.tokenizer)) - 2
    assert 0 < system_alone < rendered.header_edges[0] < rendered.header_edges[1]
    plain = Chat(start_date=START_DATE, instructions="Be brief.")
    plain_header = plain.header_messages()
    assert engine.render(plain).header_edges == [
        len(render_for_completion(plain_header[:count], engine.tokenizer)) - 2 for count in (1, 2)
    ]


def test_render_prompt_is_the_prompt_the_engine_reads_without_a_model(engine: Engine) -> None:
    chat = three_turns()
    assert render_prompt(chat, engine.tokenizer) == engine.prompt_tokens(chat) == render_for_completion(
        drop_completed_chain_of_thought(chat.harmony_messages()), engine.tokenizer)


def test_a_reply_renders_each_message_once(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered: list[str] = []
    real = prompt_module.render_message

    def counting(message, *args, **kwargs):
        rendered.append(message["role"])
        return real(message, *args, **kwargs)

    monkeypatch.setattr(prompt_module, "render_message", counting)
    chat = Chat(start_date=START_DATE, instructions="Be brief.")
    for exchange in (EXCHANGES["sum"], EXCHANGES["colour"]):
        chat.add_user(exchange.question)
    before = len(chat.harmony_messages())
    events = list(engine.reply(chat, GREEDY))
    assert isinstance(events[-1], Done) and events[-1].messages
    assert len(rendered) == before + len(events[-1].messages), "the chat once, then only the reply's messages"


def test_stats_carry_what_the_chat_takes_for_its_next_reply(engine: Engine) -> None:
    chat = Chat(start_date=START_DATE)
    chat.add_user(EXCHANGES["sum"].question)
    stats = next(e for e in engine.reply(chat, GREEDY) if isinstance(e, Stats))
    assert stats.chat_tokens == engine.count_tokens(chat) > stats.prompt_tokens


def test_a_logits_processor_decides_every_token(engine: Engine) -> None:
    """Forcing the tokens of a short final answer: the processor sees the ids so far, and the
    reply is what it forced, parsed and stopped at <|return|> as any other."""
    tokenizer = engine.tokenizer
    forced = [tokenizer.encode_special("<|channel|>"), *tokenizer.encode("final"),
              tokenizer.encode_special("<|message|>"), *tokenizer.encode("Forty-two."),
              tokenizer.encode_special("<|return|>")]
    seen: list[list[int]] = []

    def force(generated, logits: mx.array) -> mx.array:
        seen.append(list(generated))
        allowed = mx.arange(logits.shape[-1]) == forced[len(generated)]
        return mx.where(allowed, logits, -mx.inf)

    chat = Chat(start_date=START_DATE)
    chat.add_user(EXCHANGES["sum"].question)
    events = list(engine.reply(chat, SamplingSettings(seed=3, max_new_tokens=80), logits_processors=[force]))
    done = events[-1]
    assert done.reason == "return" and [text_of(m) for m in done.messages] == ["Forty-two."]
    assert seen == [forced[:n] for n in range(len(forced))], "one call per token, with the ids so far"


def test_an_identity_processor_changes_nothing(engine: Engine, harmony_model_dir: Path) -> None:
    """Without processors the next token is sampled before the current one is read back; with
    one it is not. Both give the same reply."""
    def reply(processors) -> list[str]:
        fresh = Engine.load(harmony_model_dir, context_length=1024, dtype=mx.float32)
        chat = Chat(start_date=START_DATE)
        chat.add_user(EXCHANGES["colour"].question)
        list(fresh.reply(chat, GREEDY, logits_processors=processors))
        return [text_of(m) for m in chat.messages[1:]]

    assert reply([lambda generated, logits: logits]) == reply([]) == [EXCHANGES["colour"].analysis,
                                                                      EXCHANGES["colour"].final]
