"""`gpt-oss-serve --cache-dir`: a long conversation's prompt cache survives the server's restart.
The server is stopped as a service manager stops it (SIGTERM), writes what its pool holds, and
the restarted server answers the conversation's next turn prefilling only the new message, with
the answer a cold server gives (greedy), through the openai client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
from support.harmony_model import EXCHANGES

from gpt_oss_desktop.mlx_model.paths import DATA_DIR_ENV

LONG_QUESTION = " ".join([EXCHANGES["sum"].question] * 200)  # past the 1024 tokens a cache file must hold
ASK = {"model": "model", "temperature": 0, "max_tokens": 12}  # the model folder's name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(model: Path, data: Path, *flags: str) -> Iterator[openai.OpenAI]:
    """`gpt-oss-serve` in its own process; stopped with SIGTERM, which must end it cleanly."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gpt_oss_desktop.mlx_model.server.cli", "--model", str(model), "--port", str(port),
         "--context", "2048", *flags],
        env={**os.environ, DATA_DIR_ENV: str(data)}, stderr=subprocess.PIPE, text=True)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                client.models.list()
                break
            except openai.APIConnectionError:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield client
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0, process.stderr.read()
        process.stderr.close()


def test_a_conversation_continued_after_a_restart_prefills_only_its_new_message(harmony_model_dir, tmp_path):
    caches = tmp_path / "caches"
    first = [{"role": "user", "content": LONG_QUESTION}]
    with serving(harmony_model_dir, tmp_path / "data", "--cache-dir", str(caches)) as client:
        answer = client.chat.completions.create(messages=first, **ASK)
        assert answer.usage.prompt_tokens > 1024
    assert len(list(caches.glob("*.safetensors"))) == 1  # written at shutdown

    later = [*first, {"role": "assistant", "content": answer.choices[0].message.content},
             {"role": "user", "content": EXCHANGES["colour"].question}]
    with serving(harmony_model_dir, tmp_path / "data", "--cache-dir", str(caches)) as client:
        reopened = client.chat.completions.create(messages=later, **ASK)
    with serving(harmony_model_dir, tmp_path / "cold", "--cache-disk-gib", "0") as client:
        cold = client.chat.completions.create(messages=later, **ASK)
    assert not (tmp_path / "cold" / "server" / "prompt-caches").exists()

    reused = reopened.usage.prompt_tokens_details.cached_tokens
    assert cold.usage.prompt_tokens_details.cached_tokens == 0
    assert reused >= answer.usage.prompt_tokens  # the whole first prompt, read from the file
    assert reopened.usage.prompt_tokens - reused < 40  # the answer's text and the new question
    assert reopened.choices[0].message.content == cold.choices[0].message.content
