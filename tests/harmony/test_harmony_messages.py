"""The builders write exactly the dicts openai-harmony's own builders serialise to."""

from __future__ import annotations

import datetime

import pytest
from harmony_corpus import WEATHER_TOOLS
from openai_harmony import (
    Author,
    DeveloperContent,
    Message,
    ReasoningEffort,  # not in openai_harmony.__all__
    Role,
    SystemContent,
)

from gpt_oss_desktop.mlx_model.harmony import (
    assistant_message,
    developer_message,
    system_message,
    text_of,
    tool_result_message,
    user_message,
)


def _official_system(content: SystemContent) -> dict:
    return Message.from_role_and_content(Role.SYSTEM, content).to_dict()


@pytest.mark.parametrize(
    ("level", "effort"),
    [
        ("low", ReasoningEffort.LOW),
        ("medium", ReasoningEffort.MEDIUM),
        ("high", ReasoningEffort.HIGH),
    ],
)
def test_system_message_by_reasoning_level(level: str, effort: ReasoningEffort) -> None:
    expected = SystemContent.new().with_reasoning_effort(effort)
    assert system_message(level) == _official_system(expected)


def test_system_message_with_date_and_builtin_tools() -> None:
    expected = (
        SystemContent.new()
        .with_conversation_start_date("2025-06-28")
        .with_browser_tool()
        .with_python_tool()
    )
    built = system_message(start_date=datetime.date(2025, 6, 28), browser=True, python=True)
    assert built == _official_system(expected)
    assert system_message(start_date="2025-06-28", python=True) == _official_system(
        SystemContent.new().with_conversation_start_date("2025-06-28").with_python_tool()
    )


def test_system_message_with_identity_and_cutoff() -> None:
    expected = (
        SystemContent.new().with_model_identity("You are terse.").with_knowledge_cutoff("2023-10")
    )
    assert system_message(
        model_identity="You are terse.", knowledge_cutoff="2023-10"
    ) == _official_system(expected)


def test_system_message_refuses_an_unknown_level() -> None:
    with pytest.raises(ValueError, match="reasoning_level must be one of"):
        system_message("extreme")  # type: ignore[arg-type]


def test_developer_message() -> None:
    tools = [tool.model_dump(exclude_none=True) for tool in WEATHER_TOOLS]
    official = (
        DeveloperContent.new().with_instructions("Be kind.").with_function_tools(WEATHER_TOOLS)
    )
    assert (
        developer_message("Be kind.", tools)
        == Message.from_role_and_content(Role.DEVELOPER, official).to_dict()
    )
    assert (
        developer_message("Only words.")
        == Message.from_role_and_content(
            Role.DEVELOPER, DeveloperContent.new().with_instructions("Only words.")
        ).to_dict()
    )
    with pytest.raises(ValueError, match="string name and description"):
        developer_message(tools=[{"name": "f"}])


def test_user_assistant_and_tool_messages() -> None:
    assert user_message("Hi") == Message.from_role_and_content(Role.USER, "Hi").to_dict()
    assert (
        user_message("Hi", name="alice")
        == Message.from_author_and_content(Author.new(Role.USER, "alice"), "Hi").to_dict()
    )
    assert assistant_message("Hello") == (
        Message.from_role_and_content(Role.ASSISTANT, "Hello").with_channel("final").to_dict()
    )
    call = assistant_message(
        '{"a": 1}', channel="commentary", recipient="functions.f", content_type="<|constrain|>json"
    )
    assert call == (
        Message.from_role_and_content(Role.ASSISTANT, '{"a": 1}')
        .with_channel("commentary")
        .with_recipient("functions.f")
        .with_content_type("<|constrain|>json")
        .to_dict()
    )
    assert tool_result_message("browser.search", "results", channel="analysis") == (
        Message.from_author_and_content(Author.new(Role.TOOL, "browser.search"), "results")
        .with_recipient("assistant")
        .with_channel("analysis")
        .to_dict()
    )


def test_built_dicts_round_trip_through_the_library() -> None:
    for message in (
        system_message("high", "2025-01-01", browser=True),
        developer_message("x", [tool.model_dump(exclude_none=True) for tool in WEATHER_TOOLS]),
        user_message("u"),
        tool_result_message("functions.f", "{}"),
    ):
        assert Message.from_dict(message).to_dict() == message


def test_text_of_joins_text_items() -> None:
    message = Message.from_role_and_content(Role.USER, "a").adding_content("b").to_dict()
    assert text_of(message) == "ab"
    assert text_of({"role": "user", "content": "plain"}) == "plain"
