"""A streaming reply is written as it arrives: throttled, split at message boundaries, never
silently lost when a write fails."""

from __future__ import annotations

import pytest

from gpt_oss_desktop.app.recorder import ReplyRecorder
from gpt_oss_desktop.app.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    opened = Store(tmp_path / "chats.sqlite3")
    yield opened
    opened.close()


@pytest.fixture
def chat(store):
    conversation = store.create_conversation()
    store.add_message(conversation.id, role="user", content="Hi")
    return conversation


def final(text: str) -> dict:
    return {"role": "assistant", "name": None, "content": [{"type": "text", "text": text}], "channel": "final"}


def test_text_is_written_at_most_once_per_interval_while_streaming(store, chat):
    clock = Clock()
    recorder = ReplyRecorder(store, chat.id, "low", interval_s=0.25, clock=clock)
    row = recorder.current_row_id
    assert store.message(row).status == "streaming"

    recorder.add_text("final", "Hel")
    assert store.message(row).content == ""
    clock.now += 0.3
    recorder.add_text("final", "lo")
    assert store.message(row).content == "Hello"
    recorder.add_text("final", " there")
    assert store.message(row).content == "Hello"
    clock.now += 0.3
    assert recorder.flush_if_due()
    assert store.message(row).content == "Hello there"


def test_reasoning_and_answer_go_to_one_row_with_the_thinking_time(store, chat):
    clock = Clock()
    recorder = ReplyRecorder(store, chat.id, "high", clock=clock)
    recorder.start_message("analysis", None, None)
    recorder.add_text("analysis", "User greets.")
    assert recorder.thinking
    clock.now += 2.5
    recorder.finish_message({"role": "assistant", "content": [{"type": "text", "text": "User greets."}], "channel": "analysis"})
    recorder.start_message("final", None, None)
    recorder.add_text("final", "Hello!")
    recorder.finish_message(final("Hello!"))
    recorder.finish("complete", stats={"tokens_per_s": 30.0})

    (reply,) = store.messages(chat.id)[1:]
    assert (reply.reasoning, reply.content, reply.channel, reply.status) == ("User greets.", "Hello!", "final", "complete")
    assert reply.thought_seconds == pytest.approx(2.5)
    assert reply.reasoning_level == "high" and reply.stats == {"tokens_per_s": 30.0}


def test_a_tool_call_completes_its_row_and_what_follows_gets_a_new_one(store, chat):
    recorder = ReplyRecorder(store, chat.id, "medium", clock=Clock())
    recorder.start_message("analysis", None, None)
    recorder.add_text("analysis", "Need weather.")
    recorder.finish_message({"role": "assistant", "content": [{"type": "text", "text": "Need weather."}], "channel": "analysis"})
    recorder.start_message("commentary", "functions.get_weather", "<|constrain|>json")
    recorder.add_text("commentary", '{"city": "Paris"}')
    recorder.finish_message(
        {"role": "assistant", "content": [{"type": "text", "text": '{"city": "Paris"}'}], "channel": "commentary",
         "recipient": "functions.get_weather", "content_type": "<|constrain|>json"}
    )
    recorder.finish("complete", stats={"new_tokens": 12})

    call = store.messages(chat.id)[1]
    assert len(store.messages(chat.id)) == 2, "no empty row is left after the call"
    assert (call.recipient, call.content_type, call.content, call.reasoning) == (
        "functions.get_weather", "<|constrain|>json", '{"city": "Paris"}', "Need weather.",
    )
    assert call.stats == {"new_tokens": 12}


def test_a_detail_for_a_finished_reply_goes_on_its_last_row(store, chat):
    recorder = ReplyRecorder(store, chat.id, "medium", clock=Clock())
    recorder.start_message("final", None, None)
    recorder.add_text("final", "Blue.")
    recorder.finish_message(final("Blue."))
    recorder.finish("complete", detail="Your oldest message and its reply were left out.", stats={"new_tokens": 3})

    (reply,) = store.messages(chat.id)[1:]
    assert (reply.content, reply.status) == ("Blue.", "complete")
    assert reply.detail == "Your oldest message and its reply were left out."
    assert reply.stats == {"new_tokens": 3}


def test_two_analysis_messages_are_kept_apart(store, chat):
    recorder = ReplyRecorder(store, chat.id, "medium", clock=Clock())
    for thought in ("First.", "Second."):
        recorder.start_message("analysis", None, None)
        recorder.add_text("analysis", thought)
        recorder.finish_message({"role": "assistant", "content": [{"type": "text", "text": thought}], "channel": "analysis"})
    recorder.finish("cancelled")
    assert store.messages(chat.id)[1].reasoning == "First.\n\nSecond."


def test_a_reply_stopped_before_any_text_leaves_nothing_and_a_failed_one_keeps_why(store, chat):
    ReplyRecorder(store, chat.id, "medium").finish("cancelled")
    assert len(store.messages(chat.id)) == 1

    ReplyRecorder(store, chat.id, "medium").finish("failed", detail="Out of memory.")
    failed = store.messages(chat.id)[1]
    assert (failed.status, failed.detail, failed.content) == ("failed", "Out of memory.", "")


def test_a_failed_write_loses_nothing_once_the_disk_has_room_again(store, chat):
    clock = Clock()
    recorder = ReplyRecorder(store, chat.id, "medium", clock=clock)
    row = recorder.current_row_id
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]  # a full disk, for this connection
    store._db.execute(f"PRAGMA max_page_count = {pages}")
    clock.now += 1
    recorder.add_text("final", "x" * 500_000)
    assert "disk is full" in recorder.error and not recorder.saved
    assert recorder.records(after_position=0)[0].content == "x" * 500_000, "kept in memory"
    store._db.execute("PRAGMA max_page_count = 1073741823")
    clock.now += 1
    recorder.add_text("final", "y")
    assert store.message(row).content == "x" * 500_000 + "y" and recorder.error is None


def test_a_kill_between_two_messages_of_a_reply_is_found_at_the_next_start(store, chat, tmp_path):
    """The preamble is whole, the answer has not begun: the reply is not complete, and the next
    start marks it interrupted with the cause; its last message goes back to the model as cut."""
    from gpt_oss_desktop.app.transcript import group_turns, harmony_messages

    recorder = ReplyRecorder(store, chat.id, "medium", clock=Clock())
    recorder.start_message("commentary", None, None)
    recorder.add_text("commentary", "Let me add them.")
    recorder.finish_message({**final("Let me add them."), "channel": "commentary"})
    store.close()  # the process dies here

    reopened = Store(tmp_path / "chats.sqlite3")
    assert reopened.mark_interrupted_replies("The app was killed before this reply finished.") == 1
    (_, reply) = group_turns(reopened.messages(chat.id))
    assert reply.status == "interrupted" and reply.detail == "The app was killed before this reply finished."
    assert harmony_messages(reopened.messages(chat.id))[-1]["status"] == "incomplete"
    reopened.close()


def test_a_stop_between_two_messages_marks_the_last_whole_one(store, chat):
    recorder = ReplyRecorder(store, chat.id, "medium", clock=Clock())
    recorder.start_message("commentary", None, None)
    recorder.add_text("commentary", "Let me add them.")
    recorder.finish_message({**final("Let me add them."), "channel": "commentary"})
    recorder.finish("cancelled")
    (reply,) = store.messages(chat.id)[1:]
    assert (reply.content, reply.status) == ("Let me add them.", "cancelled")


def test_a_message_the_engine_closed_as_incomplete_keeps_its_row_for_the_stop(store, chat):
    recorder = ReplyRecorder(store, chat.id, "medium", clock=Clock())
    recorder.start_message("final", None, None)
    recorder.add_text("final", "The answer is")
    recorder.finish_message({**final("The answer is"), "status": "incomplete"})
    recorder.finish("cancelled")
    (reply,) = store.messages(chat.id)[1:]
    assert (reply.content, reply.status) == ("The answer is", "cancelled")


def call_then_answer(recorder) -> None:
    recorder.start_message("commentary", "functions.get_weather", "<|constrain|>json")
    recorder.add_text("commentary", '{"city": "Paris"}')
    recorder.finish_message({**final('{"city": "Paris"}'), "channel": "commentary", "recipient": "functions.get_weather",
                             "content_type": "<|constrain|>json"})
    recorder.add_tool_result(author_name="functions.get_weather", channel="commentary", recipient="assistant",
                             content='{"sunny": true}', stats={"seconds": 0.5, "ok": True}, attachments=None)
    recorder.start_message("final", None, None)
    recorder.add_text("final", "Sunny.")
    recorder.finish_message(final("Sunny."))
    recorder.finish("complete", stats={"new_tokens": 9})


def test_a_tool_result_keeps_its_place_and_its_own_figures_among_the_replys_rows(store, chat):
    call_then_answer(ReplyRecorder(store, chat.id, "medium", clock=Clock()))
    call, result, answer = store.messages(chat.id)[1:]
    assert (call.recipient, result.role, result.author_name, answer.content) == (
        "functions.get_weather", "tool", "functions.get_weather", "Sunny.")
    assert result.stats == {"seconds": 0.5, "ok": True} and answer.stats == {"new_tokens": 9}
    assert result.reasoning_level is None and {call.status, result.status, answer.status} == {"complete"}


def test_with_the_disk_full_the_tool_result_waits_with_the_reply_and_goes_in_in_order(store, chat):
    clock = Clock()
    recorder = ReplyRecorder(store, chat.id, "medium", clock=clock)
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute("PRAGMA max_page_count = " + str(pages))
    big = "x" * 200_000  # more than the free pages hold
    recorder.start_message("commentary", None, None)  # a long preamble, then the call
    clock.now += 1
    recorder.add_text("commentary", big)
    assert "disk is full" in recorder.error
    recorder.finish_message({**final(big), "channel": "commentary"})
    call_then_answer(recorder)
    assert [r.role for r in recorder.records(after_position=0)][-3:] == ["assistant", "tool", "assistant"]
    store._db.execute("PRAGMA max_page_count = 1073741823")
    assert recorder.sync() and recorder.saved
    assert [m.role for m in store.messages(chat.id)] == ["user", "assistant", "assistant", "tool", "assistant"]


def test_a_built_in_tool_call_on_the_analysis_channel_is_a_call_not_reasoning(store, chat):
    """browser and python are called on the analysis channel: the call gets its own row, with
    the reasoning before it, so the chat given back to the model holds the call it made."""
    recorder = ReplyRecorder(store, chat.id, "low", clock=Clock())
    recorder.start_message("analysis", None, None)
    recorder.add_text("analysis", "Search the notes.")
    recorder.finish_message({"role": "assistant", "channel": "analysis",
                             "content": [{"type": "text", "text": "Search the notes."}]})
    recorder.start_message("analysis", "browser.search", "code")
    recorder.add_text("analysis", '{"query":"countdown"}')
    recorder.finish_message({"role": "assistant", "channel": "analysis", "recipient": "browser.search",
                             "content_type": "code", "content": [{"type": "text", "text": '{"query":"countdown"}'}]})
    recorder.finish("complete")
    (call,) = [r for r in store.messages(chat.id) if r.role == "assistant"]
    assert (call.channel, call.recipient, call.content_type, call.content, call.reasoning) == (
        "analysis", "browser.search", "code", '{"query":"countdown"}', "Search the notes.")
    assert recorder.visible_text() == ""
