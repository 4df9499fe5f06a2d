"""A reply's Stats beside the logits its prefill returned: what the prompt-cache tests compare
bit for bit between an engine that kept a conversation and one that read it back from disk."""

from __future__ import annotations

import mlx.core as mx
import pytest

from gpt_oss_desktop.mlx_model.chat import Chat
from gpt_oss_desktop.mlx_model.engine import Engine
from gpt_oss_desktop.mlx_model.events import Stats
from gpt_oss_desktop.mlx_model.forward import ForwardPass
from gpt_oss_desktop.mlx_model.sampling import SamplingSettings

GREEDY = SamplingSettings(temperature=0, max_new_tokens=80)


def reply(engine: Engine, conversation: Chat, monkeypatch: pytest.MonkeyPatch, **options) -> tuple[Stats, mx.array]:
    """The greedy reply's Stats and the logits its prefill returned (`options`: Engine.reply's)."""
    captured = []
    prefill = ForwardPass.prefill

    def keep(self, tokens, *args, **kwargs):
        result = prefill(self, tokens, *args, **kwargs)
        captured.append(result.logits)
        return result

    monkeypatch.setattr(ForwardPass, "prefill", keep)
    events = list(engine.reply(conversation, GREEDY, **options))
    monkeypatch.setattr(ForwardPass, "prefill", prefill)
    return next(e for e in events if isinstance(e, Stats)), captured[-1]
