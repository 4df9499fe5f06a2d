"""A tiny gpt-oss that really answers in harmony form, trained in the test session.

Random weights answer with random tokens, which cannot show that the engine streams a chain of
thought, stops on <|return|>, or continues a tool call. So the fixture takes a tiny random
Hub-layout checkpoint and trains its dense weights (the MXFP4 experts stay exactly as stored)
until greedy decoding reproduces every reply in SCRIPT, rendered by openai-harmony itself. The
result is saved in the Hub layout and loaded through the real loader, like any downloaded model.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from openai_harmony import (
    Author,
    Conversation,
    DeveloperContent,
    HarmonyEncodingName,
    Message,
    ReasoningEffort,
    Role,
    SystemContent,
    ToolDescription,
    load_harmony_encoding,
)

from gpt_oss_desktop.mlx_model import load
from gpt_oss_desktop.mlx_model.loader import LoadOptions
from gpt_oss_desktop.mlx_model.checkpoint_writer import save_model, tiny_config, write_random_checkpoint

START_DATE = "2026-11-23"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Gets the current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
WEATHER_CALL = '{"city":"Paris"}'
WEATHER_RESULT = '{"sky":"sunny","celsius":21}'


@dataclass(frozen=True)
class Exchange:
    question: str
    analysis: str
    final: str


EXCHANGES = {
    "sum": Exchange("What is 2+2?", "Simple arithmetic: two plus two.", "2 + 2 = 4."),
    "colour": Exchange("Name a colour.", "Any colour will do; pick blue.", "Blue."),
}
WEATHER_QUESTION = "What is the weather in Paris?"
WEATHER_ANALYSIS = "Need the weather tool."
WEATHER_FINAL = "It is sunny in Paris, 21 °C."
LEVELS = ("low", "medium", "high")

_EFFORT = {"low": ReasoningEffort.LOW, "medium": ReasoningEffort.MEDIUM, "high": ReasoningEffort.HIGH}
TRAINING_STEPS_LIMIT = 60


def _system(level: str) -> Message:
    content = SystemContent.new().with_reasoning_effort(_EFFORT[level]).with_conversation_start_date(START_DATE)
    return Message.from_role_and_content(Role.SYSTEM, content)


def _assistant(channel: str, text: str) -> Message:
    return Message.from_role_and_content(Role.ASSISTANT, text).with_channel(channel)


def _weather_developer() -> Message:
    tool = ToolDescription.new(WEATHER_TOOL["name"], WEATHER_TOOL["description"], parameters=WEATHER_TOOL["parameters"])
    return Message.from_role_and_content(Role.DEVELOPER, DeveloperContent.new().with_function_tools([tool]))


def _weather_call() -> Message:
    return (
        _assistant("commentary", WEATHER_CALL)
        .with_recipient("functions.get_weather")
        .with_content_type("<|constrain|>json")
    )


def script() -> list[tuple[list[Message], list[Message]]]:
    """(conversation so far, the assistant messages that must follow) for every trained turn."""
    turns = []
    for level in LEVELS:
        first, second = EXCHANGES["sum"], EXCHANGES["colour"]
        for exchange in (first, second):
            turns.append(([_system(level), Message.from_role_and_content(Role.USER, exchange.question)],
                          [_assistant("analysis", exchange.analysis), _assistant("final", exchange.final)]))
        two_turns = [
            _system(level),
            Message.from_role_and_content(Role.USER, first.question),
            _assistant("final", first.final),
            Message.from_role_and_content(Role.USER, second.question),
        ]
        turns.append((two_turns, [_assistant("analysis", second.analysis), _assistant("final", second.final)]))
        weather = [_system(level), _weather_developer(), Message.from_role_and_content(Role.USER, WEATHER_QUESTION)]
        turns.append((weather, [_assistant("analysis", WEATHER_ANALYSIS), _weather_call()]))
        result = (
            Message.from_author_and_content(Author.new(Role.TOOL, "functions.get_weather"), WEATHER_RESULT)
            .with_recipient("assistant")
            .with_channel("commentary")
        )
        turns.append((weather + [_assistant("analysis", WEATHER_ANALYSIS), _weather_call(), result],
                      [_assistant("final", WEATHER_FINAL)]))
    return turns


def _completion_tokens(encoding, replies: list[Message]) -> list[int]:
    """What the model must sample after `<|start|>assistant`: the replies as the model writes
    them (channel first, recipient after it), ending in <|return|> or <|call|>."""
    tokens: list[int] = []
    for index, message in enumerate(replies):
        rendered = encoding.render(message)
        body = rendered[2:] if index == 0 else rendered  # drop the prompt's <|start|>assistant
        tokens.extend(body)
    if replies[-1].channel == "final":
        tokens[-1] = encoding.encode("<|return|>", allowed_special="all")[0]
    return tokens


def training_sequences(turns: list[tuple[list[Message], list[Message]]] | None = None) -> list[tuple[list[int], int]]:
    """(prompt + completion tokens, prompt length) for every turn of `turns` (default: SCRIPT's)."""
    encoding = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    sequences = []
    for history, replies in turns if turns is not None else script():
        prompt = encoding.render_conversation_for_completion(Conversation.from_messages(history), Role.ASSISTANT)
        sequences.append((prompt + _completion_tokens(encoding, replies), len(prompt)))
    return sequences


def _recipe_hash(sequences: list[tuple[list[int], int]], sources: tuple[Path, ...]) -> str:
    recipe = json.dumps([sequences, TRAINING_STEPS_LIMIT, tiny_config().to_hub_dict()]).encode()
    return hashlib.sha256(recipe + b"".join(path.read_bytes() for path in sources)).hexdigest()[:16]


def _memorised(model, sequences: list[tuple[list[int], int]]) -> bool:
    for tokens, prompt_length in sequences:
        hidden = model.hidden_states(mx.array(tokens[:-1])[None])
        predicted = mx.argmax(model.lm_head(hidden[0, prompt_length - 1 :]), axis=-1)
        if predicted.tolist() != tokens[prompt_length:]:
            return False
    return True


def train(folder: Path, sequences: list[tuple[list[int], int]]) -> Path:
    work = folder / "random"
    write_random_checkpoint(work, tiny_config(), seed=21, tokenizer=False)
    model = load(work, dtype=mx.float32, options=LoadOptions(embedding="resident"))
    model.freeze(keys=["gate_up_proj_blocks", "gate_up_proj_scales", "down_proj_blocks", "down_proj_scales"], strict=False)

    def loss(model, tokens: mx.array, prompt_length: int) -> mx.array:
        hidden = model.hidden_states(tokens[None, :-1])
        logits = model.lm_head(hidden[0, prompt_length - 1 :])
        return nn.losses.cross_entropy(logits, tokens[prompt_length:]).mean()

    loss_and_grad = nn.value_and_grad(model, loss)
    optimizer = optim.Adam(learning_rate=1e-2)
    for step in range(TRAINING_STEPS_LIMIT):
        for tokens, prompt_length in sequences:
            _, grads = loss_and_grad(model, mx.array(tokens), prompt_length)
            optimizer.update(model, grads)
            mx.eval(model.parameters(), optimizer.state)
        if step % 3 == 2 and _memorised(model, sequences):
            break
    else:
        raise RuntimeError(f"the test model did not learn its script in {TRAINING_STEPS_LIMIT} steps")
    return save_model(model, folder / "model", shards=2)


def models_cache_root() -> Path:
    """Where trained test models are kept across sessions (the user's cache folder)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gpt-oss-desktop" / "test-models"


def trained_model(name: str, sequences: list[tuple[list[int], int]], sources: tuple[Path, ...],
                  cache_root: Path | None = None) -> Path:
    """A model trained on `sequences`, once: kept under `cache_root` keyed by the sequences and
    the `sources` that made them, so a changed script retrains only its own model."""
    folder = (cache_root or models_cache_root()) / f"{name}-{_recipe_hash(sequences, (Path(__file__), *sources))}"
    done = folder / "model" / "TRAINED"
    if not done.exists():
        train(folder, sequences)
        done.write_text("ok\n")
    return folder / "model"


def trained_harmony_model(cache_root: Path | None = None) -> Path:
    """The model that answers SCRIPT (chat turns, reasoning levels, one function call)."""
    return trained_model("harmony", training_sequences(), (), cache_root)
