"""`gpt-oss-serve`: an OpenAI-compatible server (Responses API and Chat Completions) on one
model, for Codex, the openai SDKs, Open WebUI and editors."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from .. import hub, paths
from ..cache_file import CacheStore
from ..cli import find_or_download_model, fitted_options
from ..config import ModelFolderError
from ..engine import Engine, EngineError
from ..loader import LoadOptions
from ..tokenizer import TokenizerFileError
from ..tools import McpConfigError, Toolbox
from ..units import GIB
from .app import ServerSettings, create_app
from .hosted_tools import ServerTools
from .runner import DEFAULT_MAX_BATCH, EngineThread
from .serving import RunningServer, check_exposure
from .store import ResponseStore


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpt-oss-serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a model folder, or a Hub id such as openai/gpt-oss-20b")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' on every request")
    parser.add_argument("--context", type=int, default=None, help="context length (default: what fits in memory)")
    parser.add_argument("--kv-bits", type=int, choices=(16, 8), default=None,
                        help="the full-attention layers' KV cache in 16 bits (default) or 8 (about half the memory at "
                        "long contexts); with --fit, 8 only where it makes the model fit")
    parser.add_argument("--fit", action="store_true",
                        help="pick the least lossy memory options that fit this machine (as gpt-oss-chat --fit)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where prompt caches the memory pool drops, and all it holds at shutdown, are kept, so "
                        "a conversation continued later (after a restart too) prefills only what is new (default: "
                        "the data folder's server/prompt-caches)")
    parser.add_argument("--cache-disk-gib", type=float, default=4.0,
                        help="disk the cache folder may use, least recently used out (default 4; 0 keeps none)")
    parser.add_argument("--max-queue", type=int, default=32, help="requests that may wait; more get HTTP 429")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                        help=f"replies decoded together in one forward pass (default {DEFAULT_MAX_BATCH}; 1 answers "
                        "one request at a time)")
    tools = parser.add_argument_group("the model's own tools, run in the server for every request (README: Tools)")
    tools.add_argument("--tools", default="", help="browser and/or python, e.g. browser,python (python runs "
                       "model-written code in the sandbox for any client: list it only if you mean that)")
    tools.add_argument("--library", action="append", default=[], metavar="PATH",
                       help="a folder of documents the browser searches (repeatable)")
    tools.add_argument("--web", action="store_true", help="let the browser fetch web pages (off by default)")
    tools.add_argument("--mcp", default=None, metavar="FILE", help="an mcp.json with mcpServers")
    tools.add_argument("--approve", choices=("never", "always"), default="never",
                       help="MCP tools that may change something: refused (default) or always run")
    args = parser.parse_args(argv)
    unknown = set(filter(None, args.tools.split(","))) - {"browser", "python"}
    if unknown:
        parser.error(f"--tools takes browser and python, not {', '.join(sorted(unknown))}")
    if args.cache_disk_gib < 0:
        parser.error(f"--cache-disk-gib takes 0 or more GiB, not {args.cache_disk_gib}")
    if args.max_batch < 1:
        parser.error(f"--max-batch takes 1 or more replies, not {args.max_batch}")
    return args


def server_tools(args: argparse.Namespace) -> ServerTools | None:
    """The tools the flags ask for, or None."""
    wanted = set(filter(None, args.tools.split(",")))
    if args.library or args.web:
        wanted.add("browser")
    if not wanted and not args.mcp:
        return None
    if "browser" in wanted and not (args.library or args.web):
        raise ValueError("--tools browser needs --library PATH (or --web)")
    toolbox = Toolbox(library=args.library, web=args.web, python="python" in wanted, mcp_config=args.mcp,
                      python_folder=paths.data_dir() / "python" / "server")
    return ServerTools(toolbox, approve_changes=args.approve == "always")


def load_options(folder: Path, args: argparse.Namespace, err: TextIO) -> LoadOptions:
    """The weights as published with the KV width asked for, or with --fit what fits this machine."""
    return fitted_options(folder, args.context, args.kv_bits, err) if args.fit else LoadOptions(kv_bits=args.kv_bits or 16)


def load_engine(folder: Path, options: LoadOptions, args: argparse.Namespace) -> Engine:
    """The engine the flags ask for, its dropped prompt caches kept in the cache folder."""
    engine = Engine.load(folder, context_length=args.context, options=options, overflow="stop")
    if args.cache_disk_gib > 0:
        caches = args.cache_dir or paths.server_cache_dir()
        engine.spill_prompt_caches(CacheStore(caches, int(args.cache_disk_gib * GIB)))
    return engine


def _stop_on_sigterm(_signal: int, _frame: object) -> None:
    """A service manager stops the server as Ctrl+C does, so it writes its caches first."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None, stderr: TextIO = sys.stderr) -> int:
    args = parse_arguments(argv)
    tools = None
    try:
        check_exposure(args.host, args.api_key)
        folder = find_or_download_model(args.model, stderr)
        tools = server_tools(args)
        store = ResponseStore(paths.data_dir() / "server" / "responses.sqlite3")
        print(f"Loading {folder} …", file=stderr)
        options = load_options(folder, args, stderr)
        runner = EngineThread(lambda: load_engine(folder, options, args), max_waiting=args.max_queue,
                              max_batch=args.max_batch)
        settings = ServerSettings(model_id=args.model, aliases=(folder.name, str(folder)), api_key=args.api_key,
                                  tools=tools)
        server = RunningServer(create_app(runner, store, settings), args.host, args.port)
    except (ValueError, hub.HubError, ModelFolderError, TokenizerFileError, EngineError, OSError,
            McpConfigError) as error:
        print(f"gpt-oss-serve: {error}", file=stderr)
        if tools is not None:
            tools.close()
        return 2
    server.start()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    print(f"Serving {args.model} at {server.url} (Ctrl+C stops)", file=stderr)
    try:
        while server.wait(1.0):
            pass
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
        runner.close(last=lambda engine: engine.save_spilled_caches())
        store.close()
        if tools is not None:
            tools.close()


def run() -> None:
    """The command: `main`, then leave without C++ static destructors. MLX ran on the engine
    thread, and its teardown at interpreter exit can abort the process (ml-explore/mlx#3126,
    seen here as "terminate called without an active exception" on one stop in a few); by then
    the responses are committed and the prompt caches written, so nothing is lost by skipping it."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
