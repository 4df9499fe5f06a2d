"""A real `gpt-oss-serve` application on a loopback port, over the tiny model trained in the test
session (it answers its script in harmony form and calls get_weather), driven by the official
openai client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import openai
import pytest
from support.harmony_model import START_DATE

from gpt_oss_desktop.mlx_model.engine import Engine
from gpt_oss_desktop.mlx_model.server import EngineThread, ResponseStore, RunningServer, ServerSettings, create_app

API_KEY = "test-key"
MODEL_ID = "tiny-harmony"


@dataclass
class Served:
    runner: EngineThread
    store_path: Path
    server: RunningServer

    def client(self, **options) -> openai.OpenAI:
        return openai.OpenAI(**{"base_url": self.server.url, "api_key": API_KEY, "max_retries": 0, **options})


def start(runner: EngineThread, store_path: Path, **settings) -> RunningServer:
    options = {"model_id": MODEL_ID, "api_key": API_KEY, "start_date": lambda: START_DATE, **settings}
    app = create_app(runner, ResponseStore(store_path), ServerSettings(**options))
    return RunningServer(app, "127.0.0.1", 0).start()


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
