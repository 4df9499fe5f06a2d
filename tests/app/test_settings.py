"""Typed preferences survive a round trip through QSettings and never come back as strings."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QCoreApplication, QSettings

from gpt_oss_desktop.app.settings import APPLICATION_NAME, Key, Settings, configure_application
from gpt_oss_desktop.mlx_model import SamplingSettings
from gpt_oss_desktop.mlx_model.loader import LoadOptions
from gpt_oss_desktop.mlx_model.memory import GIB


@pytest.fixture
def ini(tmp_path):
    return lambda: QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)


def test_values_round_trip_with_their_types(qapp, ini):
    settings = Settings(ini())
    settings.set_value(Key.TEMPERATURE, 0.7)
    settings.set_value(Key.TOP_P, 1)  # an int is a fine float
    settings.set_value(Key.MAX_NEW_TOKENS, 2048)
    settings.set_value(Key.DEVELOPER_INSTRUCTIONS, "Answer in French.")
    settings.set_value(Key.WINDOW_GEOMETRY, b"\x01\x02\xff")
    settings.sync()

    reread = Settings(ini())
    assert reread.value(Key.TEMPERATURE) == 0.7 and isinstance(reread.value(Key.TEMPERATURE), float)
    assert reread.value(Key.TOP_P) == 1.0
    assert reread.value(Key.MAX_NEW_TOKENS) == 2048 and isinstance(reread.value(Key.MAX_NEW_TOKENS), int)
    assert reread.value(Key.DEVELOPER_INSTRUCTIONS) == "Answer in French."
    assert reread.value(Key.WINDOW_GEOMETRY) == b"\x01\x02\xff"
    assert reread.sampling() == SamplingSettings(temperature=0.7, top_p=1.0, max_new_tokens=2048)


def test_missing_or_damaged_values_fall_back_to_the_defaults(qapp, ini):
    raw = ini()
    raw.setValue(Key.MAX_NEW_TOKENS.path, "lots")
    raw.setValue(Key.DEFAULT_REASONING_LEVEL.path, "extreme")
    raw.sync()
    settings = Settings(ini())
    assert settings.value(Key.MAX_NEW_TOKENS) == 4096
    assert settings.value(Key.MODEL) == ""
    assert settings.default_reasoning_level() == "medium"
    assert settings.context_length() is None


def test_a_value_of_the_wrong_type_is_refused(qapp, ini):
    with pytest.raises(TypeError, match="MAX_NEW_TOKENS takes int"):
        Settings(ini()).set_value(Key.MAX_NEW_TOKENS, "4096")


def test_the_application_identity_names_the_settings_file(qapp):
    names = (QCoreApplication.applicationName(), QCoreApplication.organizationDomain())
    try:
        configure_application(qapp)
        assert APPLICATION_NAME in QSettings().fileName()
    finally:
        QCoreApplication.setApplicationName(names[0])
        QCoreApplication.setOrganizationDomain(names[1])


def test_memory_settings_default_to_automatic_and_round_trip_as_load_options(qapp, ini):
    settings = Settings(ini())
    assert [settings.value(key) for key in (Key.MEMORY_MODE, Key.EMBEDDING, Key.DENSE_BITS, Key.EXPERT_BUDGET_GIB)] == [
        "automatic", "mapped", 16, 0.0
    ]
    assert settings.load_options() is None, "automatic: the session picks what fits at load time"
    settings.set_value(Key.DENSE_BITS, 8)
    assert settings.load_options() is None, "the manual fields apply in manual mode only"

    settings.set_value(Key.MEMORY_MODE, "manual")
    assert settings.load_options() == LoadOptions(dense_bits=8)
    settings.set_value(Key.EMBEDDING, "resident")
    settings.set_value(Key.EXPERT_BUDGET_GIB, 2.5)
    settings.sync()
    reread = Settings(ini())
    assert reread.value(Key.DENSE_BITS) == 8 and isinstance(reread.value(Key.EXPERT_BUDGET_GIB), float)
    assert reread.load_options() == LoadOptions(embedding="resident", dense_bits=8, expert_budget_bytes=int(2.5 * GIB))


def test_damaged_memory_settings_load_with_the_defaults(qapp, ini):
    raw = ini()
    raw.setValue(Key.MEMORY_MODE.path, "manual")
    raw.setValue(Key.EMBEDDING.path, "floppy")
    raw.setValue(Key.DENSE_BITS.path, "3")
    raw.setValue(Key.EXPERT_BUDGET_GIB.path, "inf")
    raw.setValue(Key.KV_BITS.path, "4")
    raw.sync()
    assert Settings(ini()).load_options() == LoadOptions()


def test_the_kv_cache_width_is_a_manual_load_option(qapp, ini):
    settings = Settings(ini())
    assert settings.value(Key.KV_BITS) == 16
    settings.set_value(Key.KV_BITS, 8)
    assert settings.load_options() is None, "automatic mode picks 8-bit KV itself, only where it must"
    settings.set_value(Key.MEMORY_MODE, "manual")
    settings.sync()
    assert Settings(ini()).load_options() == LoadOptions(kv_bits=8)


def test_the_chat_cache_budget_defaults_to_4_gib_and_falls_back_when_damaged(qapp, ini):
    settings = Settings(ini())
    assert settings.chat_cache_budget_bytes() == 4 * GIB
    settings.set_value(Key.CHAT_CACHE_GIB, 0.5)
    settings.sync()
    assert Settings(ini()).chat_cache_budget_bytes() == GIB // 2
    settings.set_value(Key.CHAT_CACHE_GIB, 0)
    assert settings.chat_cache_budget_bytes() == 0, "none kept"
    for damaged in ("-1", "inf", "lots"):
        raw = ini()
        raw.setValue(Key.CHAT_CACHE_GIB.path, damaged)
        raw.sync()
        assert Settings(ini()).chat_cache_budget_bytes() == 4 * GIB
