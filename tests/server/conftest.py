"""The server tests' fixtures: a real `gpt-oss-serve` application on a loopback port, over the
tiny model trained in the test session (it answers its script in harmony form and calls
get_weather), shared by a module (helpers in tests/support/served.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlx.core as mx
import openai
import pytest
from support.served import Served, start

from gpt_oss_desktop.mlx_model.engine import Engine
from gpt_oss_desktop.mlx_model.server import EngineThread


@pytest.fixture(scope="module")
def runner(harmony_model_dir: Path) -> Iterator[EngineThread]:
    engine_thread = EngineThread(
        lambda: Engine.load(harmony_model_dir, context_length=1024, dtype=mx.float32, overflow="stop"),
        max_waiting=16,
    )
    yield engine_thread
    engine_thread.close()


@pytest.fixture(scope="module")
def served(runner: EngineThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    store_path = tmp_path_factory.mktemp("server") / "responses.sqlite3"
    server = start(runner, store_path)
    yield Served(runner, store_path, server)
    server.stop()


@pytest.fixture()
def client(served: Served) -> openai.OpenAI:
    return served.client()
