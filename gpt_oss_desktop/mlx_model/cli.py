"""`gpt-oss-chat`: chat with gpt-oss in a terminal, on the same engine as the desktop app.

The chain of thought streams dimmed and the answer plainly; `--raw` shows the harmony text the
model reads and writes, `--json` prints one JSON event per line for scripts, and `--prompt`
answers a single message without interaction. `--json-schema FILE` holds the answer to a JSON
Schema (`--json-object`, `--lark FILE`, `--regex PATTERN` likewise); the reasoning stays free and
goes to stderr, so stdout is the answer alone.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from . import hub, paths
from .chat import REASONING_LEVELS, Chat
from .config import ModelFolderError
from .engine import Engine, EngineError
from .events import Done, Event, MessageStart, Stats, TextDelta, ToolCall, ToolResult
from .kernels import check_kernels
from .load_plan import plan_load
from .loader import LoadOptions
from .sampling import SamplingSettings
from .structured import ResponseFormat, StructuredOutputError, check_schema
from .terminal_session import TerminalSession, cache_store
from .tokenizer import TokenizerFileError
from .tool_loop import ApprovalRequest, declare_tools, reply_with_tools
from .tools import FunctionTool, Toolbox
from .units import GIB, format_bytes

DIM, RESET = "\x1b[2m", "\x1b[0m"
INTERRUPTED = 130
"""The exit status of a program ended by Ctrl+C (128 + SIGINT), as shells report it."""


def _date(text: str) -> str:
    """A calendar date written YYYY-MM-DD (the model's system prompt carries it as is)."""
    try:
        if len(text) == 10:
            return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a date written YYYY-MM-DD, such as 2025-08-05")


def _number(kind: type, low: float | None = None, high: float | None = None, *, above: bool = False):
    """An argparse type: a `kind` number between `low` and `high` (above `low` if `above`)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if low is not None and (value <= low if above else value < low):
            raise argparse.ArgumentTypeError(f"{text} must be {'above' if above else 'at least'} {low}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text} must be at most {high}")
        return value

    return parse


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpt-oss-chat", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model folder, or a Hub id such as openai/gpt-oss-20b")
    parser.add_argument("--check-kernels", action="store_true",
                        help="run every custom kernel against its MLX twin on this machine (the emulator "
                             "off a Mac), print one line each and exit; non-zero if one fails")
    parser.add_argument("--reasoning", dest="reasoning_level", choices=REASONING_LEVELS, default="medium",
                        help="reasoning level")
    parser.add_argument("--developer", default=None, help="developer instructions")
    parser.add_argument("--temperature", type=_number(float, 0.0), default=1.0)
    parser.add_argument("--top-p", type=_number(float, 0.0, 1.0, above=True), default=1.0)
    parser.add_argument("--top-k", type=_number(int, 0), default=0)
    parser.add_argument("--min-p", type=_number(float, 0.0, 1.0), default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-tokens", type=_number(int, 1), default=4096, help="most new tokens per reply")
    parser.add_argument("--context", type=_number(int, 256), default=None, help="context length (default: what fits in memory)")
    memory = parser.add_argument_group("memory (see README: Memory)")
    memory.add_argument("--dense-bits", type=int, choices=(16, 8, 4), default=16,
                        help="attention and unembedding weights in 16 (as published), 8 or 4 bits")
    memory.add_argument("--kv-bits", type=int, choices=(16, 8), default=None,
                        help="the full-attention layers' KV cache in 16 bits (default) or 8 (about half the memory "
                        "at long contexts; its cost in README: Memory); with --fit, 8 only where it makes the model fit")
    memory.add_argument("--expert-budget-gib", type=_number(float, 0.0), default=None,
                        help="keep this much of the experts resident and page the rest from disk")
    memory.add_argument("--fit", action="store_true",
                        help="pick the least lossy options that fit this machine's memory")
    parser.add_argument("--start-date", type=_date, default=None, help="the conversation's date, YYYY-MM-DD (default: today)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--raw", action="store_true", help="print the harmony text instead of the rendered chat")
    output.add_argument("--json", action="store_true", help="print one JSON event per line")
    parser.add_argument("--prompt", default=None, help="answer this one message and exit")
    parser.add_argument("--session", default=None, metavar="NAME",
                        help="keep this chat (its messages and prompt cache) in the data folder under NAME; "
                             "running with the same NAME again continues it")
    structured = parser.add_argument_group("structured outputs (see README: Structured Outputs)")
    held = structured.add_mutually_exclusive_group()
    held.add_argument("--json-schema", type=Path, default=None, metavar="FILE",
                      help="hold the answer to this JSON Schema (or a Chat Completions response_format object); "
                           "stdout gets the JSON alone, the reasoning goes to stderr")
    held.add_argument("--json-object", action="store_true", help="hold the answer to a JSON object")
    held.add_argument("--lark", type=Path, default=None, metavar="FILE",
                      help="hold the answer to this Lark grammar (llguidance's dialect; `start:` is the answer)")
    held.add_argument("--regex", default=None, metavar="PATTERN", help="hold the answer to this regular expression")
    structured.add_argument("--max-reasoning-tokens", type=_number(int, 0), default=None, metavar="N",
                            help="close the reasoning after N tokens and answer")
    tools = parser.add_argument_group("tools (see README: Tools)")
    tools.add_argument("--tools", default="", help="built-in tools to offer, e.g. browser,python")
    tools.add_argument("--library", action="append", default=[], metavar="PATH",
                       help="a folder of documents the browser searches (repeatable)")
    tools.add_argument("--web", action="store_true", help="let the browser fetch web pages (off by default)")
    tools.add_argument("--mcp", default=None, metavar="FILE", help="an mcp.json with mcpServers")
    tools.add_argument("--functions", default=None, metavar="FILE",
                       help="a JSON list of function declarations (name, description, parameters); "
                            "the model's calls are printed and you type each result")
    tools.add_argument("--approve", choices=("ask", "always", "never"), default="ask",
                       help="running code or tools that change things: ask each time (default), always, never")
    args = parser.parse_args(argv)
    if args.model is None and not args.check_kernels:
        parser.error("the following arguments are required: --model")
    unknown = set(filter(None, args.tools.split(","))) - {"browser", "python"}
    if unknown:
        parser.error(f"--tools takes browser and python, not {', '.join(sorted(unknown))}")
    return args


def read_response_format(path: Path) -> ResponseFormat:
    """The format a --json-schema file asks for: a bare JSON Schema (named after the file), or a
    Chat Completions `response_format` object (`{"type": "json_schema", "json_schema": {...}}` or
    `{"type": "json_object"}`). Errors name the file and, for a schema, the keyword and where."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise StructuredOutputError(f"--json-schema {path}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise StructuredOutputError(f"--json-schema {path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise StructuredOutputError(
            f"--json-schema {path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})") from None
    try:
        if isinstance(document, dict) and document.get("type") in ("json_schema", "json_object", "text") and (
                "json_schema" in document or document.get("type") != "json_schema"):
            response_format = ResponseFormat.from_chat_completions(document)
            if response_format is None:
                raise StructuredOutputError('response_format type "text" holds nothing')
            return response_format
        check_schema(document)
        name = re.sub(r"[^A-Za-z0-9_-]", "_", path.stem)[:64] or "structured_output"
        return ResponseFormat.json_schema(document, name=name)
    except ValueError as error:  # StructuredOutputError included
        raise StructuredOutputError(f"--json-schema {path}: {error}") from None


def _response_format(args: argparse.Namespace) -> ResponseFormat | None:
    if args.json_object:
        return ResponseFormat.json_object()
    if args.regex is not None:
        return ResponseFormat.regex(args.regex)
    if args.lark is not None:
        try:
            return ResponseFormat.lark(args.lark.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise StructuredOutputError(f"--lark {args.lark}: cannot read it ({error})") from None
        except StructuredOutputError as error:
            raise StructuredOutputError(f"--lark {args.lark}: {error}") from None
    return read_response_format(args.json_schema) if args.json_schema else None


def _check_kernels(out: TextIO) -> int:
    """--check-kernels: one line per kernel; 1 if any failed."""
    verdicts = check_kernels()
    for verdict in verdicts:
        print(verdict.line(), file=out)
    return 0 if all(v.passed for v in verdicts) else 1


class _Printer:
    """Renders engine events for a person (dimmed reasoning, plain answer) or as JSON lines."""

    def __init__(self, out: TextIO, err: TextIO, as_json: bool, raw: bool, colour: bool,
                 answer_only: bool = False) -> None:
        """`answer_only`: stdout gets the final answer alone (a held JSON answer a script reads);
        the reasoning, preambles and tool calls go to stderr."""
        self.out, self.err = out, err
        self.as_json, self.raw, self.colour = as_json, raw, colour
        self.answer_only = answer_only
        self._channel: str | None = None

    def event(self, event: Event) -> None:
        if self.as_json:
            print(json.dumps({"type": type(event).__name__, **asdict(event)}, ensure_ascii=False), file=self.out, flush=True)
            return
        if isinstance(event, (Stats, Done)) and not self.raw:
            self._end_line()
        if isinstance(event, Stats):
            paging = "" if event.expert_hit_rate is None else f", experts found in memory {event.expert_hit_rate:.0%}"
            print(
                f"[{event.new_tokens} tokens, {event.tokens_per_s:.1f} tok/s, first token {event.ttft_s:.2f} s, "
                f"{event.cached_tokens} of {event.prompt_tokens} prompt tokens cached{paging}]",
                file=self.err,
            )
        elif isinstance(event, Done) and event.detail:
            print(f"[{event.reason}: {event.detail}]", file=self.err)
        if self.raw:
            return
        if isinstance(event, MessageStart):
            self._begin(event.channel)
        elif isinstance(event, TextDelta):
            dim = self.colour and event.channel == "analysis"
            stream = self._stream(event.channel)
            stream.write(f"{DIM}{event.text}{RESET}" if dim else event.text)
            stream.flush()
        elif isinstance(event, ToolCall):
            call = f"\n→ {event.recipient}({event.arguments_json})" + (f"  [{event.error}]" if event.error else "")
            print(f"{DIM}{call}{RESET}" if self.colour else call, file=self._stream(None))
        elif isinstance(event, ToolResult):
            shown = event.text if len(event.text) <= 2000 else event.text[:2000] + " …"
            result = f"← {event.recipient} ({event.seconds:.2f} s)\n{shown}"
            print(f"{DIM}{result}{RESET}" if self.colour else result, file=self._stream(None))

    def _stream(self, channel: str | None) -> TextIO:
        return self.out if channel == "final" or not self.answer_only else self.err

    def _end_line(self) -> None:
        if self._channel is not None:
            print(file=self._stream(self._channel), flush=True)
            self._channel = None

    def _begin(self, channel: str | None) -> None:
        if self._channel is not None:
            print(file=self._stream(self._channel))
        if channel == "analysis":
            label = "Thinking: "
        elif channel == "final":
            label = "" if self._channel is None or self.answer_only else "\n"
        else:
            label = f"[{channel}] "
        self._stream(channel).write(f"{DIM}{label}{RESET}" if self.colour and channel == "analysis" else label)
        self._channel = channel

    def token(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def reset(self) -> None:
        self._channel = None


def find_or_download_model(model: str, err: TextIO) -> Path:
    """A local folder, a downloaded Hub id, or a Hub id downloaded now with a progress bar, in
    the app's models folder (so the terminal and the app share downloads)."""
    models_dir = paths.models_dir()
    try:
        return hub.resolve_model(model, models_dir=models_dir)
    except hub.NotDownloadedError:
        pass
    plan = hub.plan_download(model, models_dir)
    print(f"Downloading {model}: {format_bytes(plan.remaining_bytes)} to {plan.target} "
          f"({format_bytes(plan.free_bytes)} free)", file=err)

    def progress(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        print(f"\r[{'#' * filled}{'.' * (width - filled)}] {format_bytes(done)} / {format_bytes(total)}",
              end="", file=err, flush=True)

    folder = hub.download(plan, progress=progress)
    print(file=err)
    return folder


def _load_options(args: argparse.Namespace, folder: Path, err: TextIO) -> LoadOptions:
    if not args.fit:
        budget = None if args.expert_budget_gib is None else int(args.expert_budget_gib * GIB)
        return LoadOptions(dense_bits=args.dense_bits, expert_budget_bytes=budget, kv_bits=args.kv_bits or 16)
    return fitted_options(folder, args.context, args.kv_bits, err)


def fitted_options(folder: Path, context: int | None, kv_bits: int | None, err: TextIO) -> LoadOptions:
    """--fit: the least lossy options that fit this machine at `context` (None: automatic), the
    KV cache at `kv_bits` when the user chose a width; printed, as the app's status bar shows them."""
    plan = plan_load(folder, context, kv_bits=kv_bits)
    if not plan.fits:
        raise EngineError(f"{folder.name} does not fit this machine's memory even with its experts paged from disk")
    print(f"[memory: {plan.options}]", file=err)
    return plan.options


def load_functions(path: Path) -> list[dict]:
    """Function declarations from a JSON file: a list of `{"name", "description", "parameters"}`
    (OpenAI's `{"type": "function", "function": {...}}` form too); errors name the file and entry."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror or error})") from error
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error})") from error
    if not isinstance(data, list):
        raise ValueError(f"{path}: needs a JSON list of function declarations")
    functions = []
    for index, entry in enumerate(data):
        entry = entry.get("function", entry) if isinstance(entry, dict) else entry
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise ValueError(f"{path}: [{index}] needs a `name`")
        parameters = entry.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise ValueError(f"{path}: [{index}].parameters must be a JSON Schema object")
        functions.append({"name": entry["name"], "description": str(entry.get("description", "")),
                          "parameters": parameters})
    return functions


def _typed_result(name: str, stdin: TextIO, stderr: TextIO):
    """A function the user answers: the call is printed, the result is typed (ended by an empty
    line or the end of input)."""

    def run(arguments: dict) -> str:
        print(f"\n[functions.{name}({json.dumps(arguments)}) — type its result, then an empty line]",
              file=stderr, flush=True)
        lines = []
        for line in iter(stdin.readline, ""):
            if not line.strip():
                break
            lines.append(line.rstrip("\n"))
        return "\n".join(lines) if lines else json.dumps({"error": "no result was given"})

    return run


def _toolbox(args: argparse.Namespace, stdin: TextIO, stderr: TextIO) -> Toolbox | None:
    """The tools the flags ask for, or None (then replies run without the tool loop)."""
    wanted = set(filter(None, args.tools.split(",")))
    if args.library or args.web:
        wanted.add("browser")
    functions = load_functions(Path(args.functions)) if args.functions else []
    if not wanted and not args.mcp and not functions:
        return None
    if "browser" in wanted and not (args.library or args.web):
        raise ValueError("--tools browser needs --library PATH (or --web)")
    session = datetime.datetime.now().strftime("terminal-%Y%m%d-%H%M%S")
    toolbox = Toolbox(library=args.library if "browser" in wanted else (), web=args.web and "browser" in wanted,
                      python="python" in wanted, mcp_config=args.mcp,
                      python_folder=paths.data_dir() / "python" / session)
    for function in functions:
        toolbox.add_function(FunctionTool(function["name"], function["description"], function["parameters"],
                                          _typed_result(function["name"], stdin, stderr)))
    return toolbox


def _approver(policy: str, stdin: TextIO, stderr: TextIO):
    """Consent for code and for tools that change things: asked on the terminal, once or for
    the rest of the session; without a terminal to ask on, refused."""
    allowed_always: list[bool] = []

    def approve(request: ApprovalRequest) -> bool:
        if policy != "ask":
            return policy == "always"
        if allowed_always:
            return True
        if not stdin.isatty():
            return False
        print(f"\n[{request.recipient} wants to run:]\n{request.arguments}\nAllow? [y]es / [n]o / [a]lways: ",
              end="", file=stderr, flush=True)
        choice = stdin.readline().strip().lower()
        if choice in ("a", "always"):
            allowed_always.append(True)
        return choice in ("y", "yes", "a", "always")

    return approve


def main(argv: list[str] | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
         stderr: TextIO = sys.stderr) -> int:
    args = parse_arguments(argv)
    if args.check_kernels:
        return _check_kernels(stdout)
    try:
        sampling = SamplingSettings(temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                                    min_p=args.min_p, seed=args.seed, max_new_tokens=args.max_tokens,
                                    max_reasoning_tokens=args.max_reasoning_tokens)
        response_format = _response_format(args)  # a bad file fails before the model loads
        session = TerminalSession(args.session) if args.session else None
        fresh = Chat(reasoning_level=args.reasoning_level, instructions=args.developer,
                     start_date=args.start_date or datetime.date.today().isoformat())
        conversation = session.load(fresh) if session else fresh
        folder = find_or_download_model(args.model, stderr)
        options = _load_options(args, folder, stderr)
        if not args.json:
            print(f"Loading {folder} …", file=stderr)
        engine = Engine.load(folder, context_length=args.context, options=options)
        if engine.info.kernel_check and (warning := engine.info.kernel_check.warning()):
            print(f"gpt-oss-chat: warning: {warning}", file=stderr)
    except (ValueError, hub.HubError, ModelFolderError, TokenizerFileError, EngineError, OSError) as error:
        print(f"gpt-oss-chat: {error}", file=stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl+C while the model loads: leave without a traceback
        print(file=stderr)
        return INTERRUPTED

    printer = _Printer(stdout, stderr, args.json, args.raw, colour=stdout.isatty(),
                       answer_only=response_format is not None)
    try:
        toolbox = _toolbox(args, stdin, stderr)
        if toolbox is not None:
            declare_tools(conversation, toolbox)
        engine.structured_plan(conversation, sampling, response_format)  # compiled now: errors before the chat
    except (ValueError, OSError) as error:  # StructuredOutputError is a ValueError
        print(f"gpt-oss-chat: {error}", file=stderr)
        return 2
    store = cache_store()
    if session is not None and (note := engine.restore_prompt_cache(store, session.cache_key, conversation)):
        print(f"gpt-oss-chat: note: {note}", file=stderr)
    approve = _approver(args.approve, stdin, stderr)
    outcomes: list[Done] = []

    def answer(text: str) -> None:
        conversation.add_user(text)
        printer.reset()
        on_token = on_prompt = None
        if args.raw:  # the prompt the reply renders, beyond what the cache holds, then each token
            on_token = lambda token_id: printer.token(engine.tokenizer.decode([token_id]))  # noqa: E731
            on_prompt = lambda prompt: printer.token(  # noqa: E731
                engine.tokenizer.decode(prompt[engine.caches.reusable_prefix(prompt):]))
        cancel = threading.Event()
        try:
            with _ctrl_c_stops(cancel):
                events = (engine.reply(conversation, sampling, cancel, on_token=on_token, response_format=response_format,
                                       on_prompt=on_prompt)
                          if toolbox is None else
                          reply_with_tools(engine, conversation, toolbox, sampling, cancel=cancel, approve=approve,
                                           on_token=on_token, response_format=response_format, on_prompt=on_prompt))
                for event in events:
                    printer.event(event)
                    if isinstance(event, Done):
                        outcomes.append(event)
        except KeyboardInterrupt:  # the second Ctrl+C: out of the step at once, this reply dropped
            print("\n[interrupted: this reply was dropped]", file=stderr)
            return
        if cancel.is_set():
            print("[stopped: the reply is kept, marked unfinished, and the model is told so]", file=stderr)
        if session is not None:
            session.save(conversation)  # after every reply: a kill loses nothing

    try:
        code = _converse(args, answer, conversation, stdin, stdout, stderr)
        # A held answer that did not complete (an error, the token limit inside the JSON) is
        # not a result a script may use: say so in the exit status.
        if code == 0 and response_format is not None and args.prompt is not None:
            if not outcomes or outcomes[-1].reason != "return":
                return 1
        return code
    finally:
        if toolbox is not None:
            toolbox.close()
        if session is not None:  # the chat is left: its cache goes to disk for the next run
            session.save(conversation)
            engine.save_prompt_cache(store, session.cache_key, conversation)


@contextmanager
def _ctrl_c_stops(cancel: threading.Event) -> Iterator[None]:
    """Ctrl+C during a reply stops it at the next token, as Stop does in the app: the engine then
    keeps the cut message (marked incomplete) and the cache consistent. A second Ctrl+C, for a
    step that does not reach a token soon (a long prefill chunk), interrupts at once."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return

    def stop(signum, frame) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _converse(args: argparse.Namespace, answer, conversation: Chat, stdin: TextIO, stdout: TextIO,
              stderr: TextIO) -> int:
    if args.prompt is not None:
        answer(args.prompt)
        return 0
    interactive = stdin.isatty()
    while True:
        if interactive:
            print("\n› ", end="", file=stdout, flush=True)
        try:
            line = stdin.readline()
        except KeyboardInterrupt:  # Ctrl+C at the prompt ends the chat, quietly
            print(file=stdout)
            return INTERRUPTED
        if not line:
            return 0
        text = line.strip()
        if text in ("/quit", "/exit"):
            return 0
        if text.startswith("/reasoning "):
            reasoning_level = text.split(maxsplit=1)[1]
            if reasoning_level in REASONING_LEVELS:
                conversation.reasoning_level = reasoning_level
                print(f"[reasoning: {reasoning_level}]", file=stderr)
            else:
                print(f"[reasoning must be one of {', '.join(REASONING_LEVELS)}]", file=stderr)
            continue
        if text:
            answer(text)


if __name__ == "__main__":
    raise SystemExit(main())
