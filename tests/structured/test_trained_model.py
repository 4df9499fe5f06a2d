"""On the tiny model trained in the test session (it reasons, then answers, in harmony form): a
held answer validates, and the chain of thought is exactly the unconstrained run's, token for
token, up to the end of the analysis message: the constraint starts where the answer does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import mlx.core as mx
import pytest
from support.harmony_model import EXCHANGES, START_DATE

from gpt_oss_desktop.mlx_model.chat import Chat
from gpt_oss_desktop.mlx_model.engine import Engine
from gpt_oss_desktop.mlx_model.events import Done
from gpt_oss_desktop.mlx_model.harmony import text_of
from gpt_oss_desktop.mlx_model.sampling import SamplingSettings
from gpt_oss_desktop.mlx_model.structured import ResponseFormat

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 99},
                   "sure": {"type": "boolean"},
                   "unit": {"enum": ["none", "apples", "metres"]}},
    "required": ["answer", "sure", "unit"], "additionalProperties": False,
}
SAMPLINGS = {"greedy": SamplingSettings(temperature=0, max_new_tokens=120),
             "seeded": SamplingSettings(temperature=1.0, seed=7, max_new_tokens=120)}


@pytest.fixture(scope="module")
def engine(harmony_model_dir: Path) -> Engine:
    return Engine.load(harmony_model_dir, context_length=1024, dtype=mx.float32)


def reply(engine: Engine, question: str, sampling: SamplingSettings, response_format=None):
    chat = Chat(reasoning_level="high", start_date=START_DATE)
    chat.add_user(question)
    tokens: list[int] = []
    events = list(engine.reply(chat, sampling, on_token=tokens.append, response_format=response_format))
    assert isinstance(events[-1], Done)
    return events[-1], tokens


def analysis_end(engine: Engine, tokens: list[int]) -> int:
    """How many tokens reach the end of the first (analysis) message, `<|end|>` included."""
    return tokens.index(engine.tokenizer.encode_special("<|end|>")) + 1


@pytest.mark.parametrize("sampling", sorted(SAMPLINGS))
def test_a_held_answer_keeps_the_reasoning_the_model_writes(engine: Engine, sampling: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSON Schema's prompt tells the model the schema (# Response Formats), so the free run
    to compare with reads the same prompt: the same reply with nothing held."""
    settings = SAMPLINGS[sampling]
    response_format = ResponseFormat.json_schema(SCHEMA, name="sum", strict=True)
    done, held = reply(engine, EXCHANGES["sum"].question, settings, response_format)
    assert done.reason == "return", done.detail
    assert [m.get("channel") for m in done.messages] == ["analysis", "final"]
    jsonschema.validate(json.loads(text_of(done.messages[-1])), SCHEMA)

    with monkeypatch.context() as patch:
        patch.setattr(engine, "structured_plan", lambda *args, **kwargs: None)
        free_done, free = reply(engine, EXCHANGES["sum"].question, settings, response_format)
    end = analysis_end(engine, free)
    assert end > 5 and held[:end] == free[:end]
    assert text_of(done.messages[0]) == text_of(free_done.messages[0])


def test_the_reasoning_is_the_unconstrained_runs_with_the_same_prompt(engine: Engine) -> None:
    """A regex answer adds nothing to the prompt: the reasoning is the script's, token for token,
    as in a reply with no format at all."""
    exchange = EXCHANGES["colour"]
    settings = SAMPLINGS["greedy"]
    free_done, free = reply(engine, exchange.question, settings)
    assert text_of(free_done.messages[0]) == exchange.analysis  # the trained script
    done, held = reply(engine, exchange.question, settings, ResponseFormat.regex("(red|green|blue)!"))
    end = analysis_end(engine, free)
    assert held[:end] == free[:end]
    # <|start|>assistant<|channel|>final<|message|>: the controller writes it after the reasoning,
    # and it is the header the model writes itself
    assert held[end:end + 5] == free[end:end + 5]
    assert done.reason == "return" and re.fullmatch("(red|green|blue)!", text_of(done.messages[-1]))
