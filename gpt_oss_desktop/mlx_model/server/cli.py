"""`gpt-oss-serve`: an OpenAI-compatible server (Responses API and Chat Completions) on one
model, for Codex, the openai SDKs, Open WebUI and editors."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from .. import hub, paths
from ..cli import resolve_model
from ..config import ModelFolderError
from ..engine import Engine, EngineError
from ..tokenizer import TokenizerFileError
from .app import ServerSettings, create_app
from .runner import EngineThread
from .serving import RunningServer, check_exposure
from .store import ResponseStore


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpt-oss-serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a model folder, or a Hub id such as openai/gpt-oss-20b")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' on every request")
    parser.add_argument("--context", type=int, default=None, help="context length (default: what fits in memory)")
    parser.add_argument("--max-queue", type=int, default=32, help="requests that may wait; more get HTTP 429")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, stderr: TextIO = sys.stderr) -> int:
    args = parse_arguments(argv)
    try:
        check_exposure(args.host, args.api_key)
        folder = resolve_model(args.model, stderr)
        store = ResponseStore(paths.data_dir() / "server" / "responses.sqlite3")
        print(f"Loading {folder} …", file=stderr)
        runner = EngineThread(lambda: Engine.load(folder, context_length=args.context, overflow="stop"),
                              max_waiting=args.max_queue)
        settings = ServerSettings(model_id=args.model, aliases=(folder.name, str(folder)), api_key=args.api_key)
        server = RunningServer(create_app(runner, store, settings), args.host, args.port)
    except (ValueError, hub.HubError, ModelFolderError, TokenizerFileError, EngineError, OSError) as error:
        print(f"gpt-oss-serve: {error}", file=stderr)
        return 2
    server.start()
    print(f"Serving {args.model} at {server.url} (Ctrl+C stops)", file=stderr)
    try:
        while server.wait(1.0):
            pass
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
        runner.close()
        store.close()


if __name__ == "__main__":
    raise SystemExit(main())
