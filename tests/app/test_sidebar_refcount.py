"""Thousands of chats, refreshed many times: the sidebar keeps Python's reference to None intact
(PySide6 6.12.0 on Python 3.11 dropped one per void Qt call and aborted with none_dealloc, see the
pin in pyproject.toml) and updates its rows in place instead of rebuilding them."""

from __future__ import annotations

import sys

from gpt_oss_desktop.app.sidebar import ID_ROLE, ConversationSidebar

CHATS = 3000
REFRESHES = 40


def test_refreshing_thousands_of_chats_keeps_none_alive_and_the_rows_in_place(qtbot, store):
    for number in range(CHATS):
        store.create_conversation(title=f"Chat {number}")
    before = sys.getrefcount(None)
    sidebar = ConversationSidebar()
    qtbot.addWidget(sidebar)
    sidebar.show_conversations(store.conversations(), selected=None)
    assert sidebar.list.count() == CHATS
    items = {sidebar.list.item(row).data(ID_ROLE): sidebar.list.item(row) for row in range(sidebar.list.count())}

    for refresh in range(REFRESHES):
        # What a reply does: its chat moves to the top and may be retitled.
        records = store.conversations()
        moved = records[len(records) // 2]
        store.add_message(moved.id, role="user", content=f"message {refresh}")
        store.rename_conversation(moved.id, f"Renamed {refresh}")
        sidebar.show_conversations(store.conversations(), selected=moved.id)
        assert sidebar.list.item(0).text() == f"Renamed {refresh}"
        assert sidebar.current_id() == moved.id

    assert sys.getrefcount(None) >= before  # a PySide6 that drops them falls by thousands here
    assert sidebar.list.count() == CHATS
    kept = {sidebar.list.item(row).data(ID_ROLE): sidebar.list.item(row) for row in range(sidebar.list.count())}
    assert all(kept[conversation_id] is item for conversation_id, item in items.items())
    assert [sidebar.list.item(row).data(ID_ROLE) for row in range(CHATS)] == [r.id for r in store.conversations()]


def test_deleted_and_new_chats_are_removed_and_inserted(qtbot, store):
    chats = [store.create_conversation(title=f"Chat {number}") for number in range(5)]
    sidebar = ConversationSidebar()
    qtbot.addWidget(sidebar)
    sidebar.show_conversations(store.conversations(), selected=chats[2].id)
    store.delete_conversation(chats[2].id)
    store.delete_conversation(chats[0].id)
    added = store.create_conversation(title="Fresh")
    sidebar.show_conversations(store.conversations(), selected=added.id)
    assert [sidebar.list.item(row).text() for row in range(sidebar.list.count())] == [
        r.title for r in store.conversations()
    ]
    assert sidebar.current_id() == added.id
