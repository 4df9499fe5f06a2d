"""A real `gpt-oss-serve` application on a loopback port, and the openai client that drives it: the
helpers the server tests share (their fixtures stay in tests/server/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import openai

from gpt_oss_desktop.mlx_model.server import EngineThread, ResponseStore, RunningServer, ServerSettings, create_app

from .harmony_model import START_DATE

API_KEY = "test-key"
MODEL_ID = "tiny-harmony"


@dataclass
class Served:
    """A running server, the engine thread under it and where its responses are stored."""

    runner: EngineThread
    store_path: Path
    server: RunningServer

    def client(self, **options) -> openai.OpenAI:
        return openai.OpenAI(**{"base_url": self.server.url, "api_key": API_KEY, "max_retries": 0, **options})


def start(runner: EngineThread, store_path: Path, **settings) -> RunningServer:
    """A server on a free loopback port over `runner`, answering as MODEL_ID on the tiny model's date
    unless `settings` say otherwise."""
    options = {"model_id": MODEL_ID, "api_key": API_KEY, "start_date": lambda: START_DATE, **settings}
    app = create_app(runner, ResponseStore(store_path), ServerSettings(**options))
    return RunningServer(app, "127.0.0.1", 0).start()
