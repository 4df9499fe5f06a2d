"""The local server under load, ours (`gpt-oss-serve`) beside `mlx_lm.server`, on the same
checkpoint, over Chat Completions, in the same run.

Both servers run as their own processes on loopback ports; the official openai client drives
them from 1, 4 and 16 concurrent clients (threads), each sending `--requests` streamed requests
one after another. With shared prefixes every request starts with the same long system message
(a client's later requests, and the other clients', can reuse its KV cache); with distinct
prefixes each client's system message differs from the first token (only a client's own later
requests can). Each request is its system message plus one short question, answered greedily.

mlx_lm.server is given a chat template that writes the prompt exactly as ours renders it (the
harmony system message, the developer instructions, the user turn), so both read the same ids;
the script checks the prompt tokens both report. Figures, per server and case:

- requests/s: requests answered over the wall time of the case;
- TTFT: from sending a request to its first streamed token of output (reasoning or text), median;
- tok/s: each request's completion tokens after the first over the time they took, median;
- ours / mlx-lm for each, at the end.

The default model is the tiny one the tests train (tests/support/harmony_model.py, cached under
~/.cache): it answers in harmony form, so our server streams its reasoning and answer as a real
model's would (random weights write no harmony headers, and ours would stream nothing). At that
shape the model's compute is small and the figures say how the servers schedule, batch, cache
and stream; `--model` takes a real checkpoint.

    python bench/serve.py                          # the trained tiny model, 1/4/16 clients, 2 requests each
    python bench/serve.py --model ~/models/gpt-oss-20b --clients 1,4 --requests 2 --json serve.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVERS = ("ours", "ours-b1", "mlx-lm")  # ours-b1: ours answering one request at a time (--max-batch 1)
PREFIXES = ("shared", "distinct")
INSTRUCTIONS = ("You answer questions about arithmetic and colours for a small school. Keep to the point, "
                "show the working when there is any, and say so when a question is not about either. ") * 3
QUESTIONS = ("What is 2 + 3?", "What colour is the sky?", "What is 4 + 4?", "What colour is grass?")
START_TIMEOUT_S = 300


class BenchError(RuntimeError):
    """The benchmark cannot measure what it claims (a server did not start, prompts differ)."""


@dataclass(frozen=True)
class RequestResult:
    client: int
    prompt_tokens: int
    cached_tokens: int | None
    completion_tokens: int
    ttft_s: float
    decode_tokens_per_s: float | None


@dataclass(frozen=True)
class CaseResult:
    server: str
    clients: int
    prefix: str
    wall_s: float
    requests: list[RequestResult]

    @property
    def requests_per_s(self) -> float:
        return len(self.requests) / self.wall_s

    @property
    def ttft_s(self) -> float:
        return statistics.median(r.ttft_s for r in self.requests)

    @property
    def tokens_per_s(self) -> float:
        rates = [r.decode_tokens_per_s for r in self.requests if r.decode_tokens_per_s]
        return statistics.median(rates) if rates else float("nan")


# -- the two servers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def harmony_template(model: Path, start_date: str) -> str:
    """A Jinja chat template for mlx_lm.server that writes our server's prompt for a system (or
    developer) message and user turns: the harmony system message as our engine renders it, the
    instructions as the developer message, each user turn, then `<|start|>assistant`."""
    sys.path.insert(0, str(ROOT))
    from gpt_oss_desktop.mlx_model import Chat, load_tokenizer, render_prompt

    tokenizer = load_tokenizer(model)
    system = tokenizer.decode(render_prompt(Chat(start_date=start_date), tokenizer)).removesuffix("<|start|>assistant")
    escaped = system.replace("{", "{{ '{' }}").replace("}", "{{ '}' }}")
    return (
        escaped
        + "{%- for m in messages -%}"
        + "{%- if m.role in ['system', 'developer'] -%}<|start|>developer<|message|># Instructions\n\n"
        + "{{ m.content }}<|end|>"
        + "{%- else -%}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>{%- endif -%}"
        + "{%- endfor -%}<|start|>assistant"
    )


class ServerProcess:
    """One server in its own process, up once its /v1/models answers."""

    def __init__(self, name: str, model: Path, port: int, template: Path, data: Path, log: Path) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}/v1"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "GPT_OSS_DESKTOP_DATA_DIR": str(data)}
        if name.startswith("ours"):
            command = [sys.executable, "-m", "gpt_oss_desktop.mlx_model.server.cli", "--model", str(model),
                       "--port", str(port), "--max-queue", "64"] + (["--max-batch", "1"] if name == "ours-b1" else [])
        else:
            command = [sys.executable, "-m", "mlx_lm", "server", "--model", str(model), "--port", str(port),
                       "--chat-template", template.read_text(), "--log-level", "WARNING"]
        self._log = log.open("w")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        """Until /health answers; mlx_lm.server takes "default_model" for the one it was started on."""
        import urllib.error
        import urllib.request

        self.model_id = "default_model"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.process.returncode}; see {self._log.name}")
            try:
                with urllib.request.urlopen(self.url.removesuffix("/v1") + "/health", timeout=5) as answer:
                    answer.read()
                if self.name.startswith("ours"):
                    with urllib.request.urlopen(self.url + "/models", timeout=5) as answer:
                        self.model_id = json.loads(answer.read())["data"][0]["id"]
                return
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.5)
        raise BenchError(f"{self.name} did not answer within {START_TIMEOUT_S} s; see {self._log.name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


# -- the load ----------------------------------------------------------------------------------


def instructions_for(client: int, prefix: str) -> str:
    return INSTRUCTIONS if prefix == "shared" else f"Client {client} of the school. {INSTRUCTIONS}"


def one_request(server: ServerProcess, client: int, index: int, prefix: str, max_tokens: int) -> RequestResult:
    import openai

    api = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=600)
    messages = [{"role": "system", "content": instructions_for(client, prefix)},
                {"role": "user", "content": QUESTIONS[(client + index) % len(QUESTIONS)]}]
    started = time.perf_counter()
    first = last = None
    usage = None
    for chunk in api.chat.completions.create(model=server.model_id, messages=messages, temperature=0,
                                             max_tokens=max_tokens, stream=True,
                                             stream_options={"include_usage": True}):
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            extra = delta.model_extra or {}
            if delta.content or delta.tool_calls or extra.get("reasoning") or extra.get("reasoning_content"):
                last = time.perf_counter()
                first = first or last
    if usage is None or first is None:
        raise BenchError(f"{server.name} streamed no output or no usage for client {client}")
    tokens = usage.completion_tokens
    details = usage.prompt_tokens_details
    return RequestResult(client, usage.prompt_tokens, details.cached_tokens if details else None, tokens,
                         first - started, (tokens - 1) / (last - first) if tokens > 1 and last > first else None)


def run_case(server: ServerProcess, clients: int, prefix: str, requests: int, max_tokens: int) -> CaseResult:
    def client_run(client: int) -> list[RequestResult]:
        return [one_request(server, client, index, prefix, max_tokens) for index in range(requests)]

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [r for batch in pool.map(client_run, range(clients)) for r in batch]
    return CaseResult(server.name, clients, prefix, time.perf_counter() - started, results)


def check_same_prompts(cases: list[CaseResult]) -> None:
    """Both servers must have read prompts of the same length, request for request."""
    by_case: dict[tuple[int, str], dict[str, list[int]]] = {}
    for case in cases:
        lengths = sorted(r.prompt_tokens for r in case.requests)
        by_case.setdefault((case.clients, case.prefix), {})[case.server] = lengths
    for key, lengths in by_case.items():
        if len(set(map(tuple, lengths.values()))) > 1:
            raise BenchError(f"the servers read prompts of different lengths at {key}: {lengths}")


# -- the report --------------------------------------------------------------------------------


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs and theirs == theirs and ours == ours else "—"


def format_table(cases: list[CaseResult]) -> str:
    rows = ["clients  prefix    server   req/s   TTFT s   tok/s   cached tokens (median)"]
    found = {(c.server, c.clients, c.prefix): c for c in cases}
    for (server, clients, prefix), case in sorted(found.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        cached = [r.cached_tokens for r in case.requests if r.cached_tokens is not None]
        rows.append(f"{clients:>7}  {prefix:<8}  {server:<7} {case.requests_per_s:6.2f}  {case.ttft_s:7.3f}  "
                    f"{case.tokens_per_s:6.1f}   {statistics.median(cached) if cached else '—'}")
    for mine, other in (("ours", "mlx-lm"), ("ours", "ours-b1"), ("ours-b1", "mlx-lm")):
        pairs = [(clients, prefix, found.get((mine, clients, prefix)), found.get((other, clients, prefix)))
                 for clients, prefix in sorted({(c.clients, c.prefix) for c in cases})]
        pairs = [pair for pair in pairs if pair[2] and pair[3]]
        if not pairs:
            continue
        rows.append("")
        rows.append(f"{mine + ' / ' + other:<17} req/s (higher is better)   TTFT (lower is better)   "
                    f"tok/s (higher is better)")
        for clients, prefix, ours, theirs in pairs:
            rows.append(f"{clients:>3} {prefix:<8}       {_ratio(ours.requests_per_s, theirs.requests_per_s):>8}"
                        f"                   {_ratio(ours.ttft_s, theirs.ttft_s):>8}"
                        f"                 {_ratio(ours.tokens_per_s, theirs.tokens_per_s):>8}")
    return "\n".join(rows)


def default_model() -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from support.harmony_model import trained_harmony_model

    return trained_harmony_model()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a gpt-oss folder (default: the tests' trained tiny model)")
    parser.add_argument("--clients", default="1,4,16", help="concurrent clients per case, comma-separated")
    parser.add_argument("--prefixes", default=",".join(PREFIXES), help="shared and/or distinct")
    parser.add_argument("--requests", type=int, default=2, help="requests each client sends, one after another")
    parser.add_argument("--max-tokens", type=int, default=48, help="the most tokens a reply may have")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="ours (batched decode), ours-b1 (one request at a time) and/or mlx-lm")
    parser.add_argument("--json", type=Path, help="also write every request's figures here")
    args = parser.parse_args(argv)
    clients = [int(n) for n in args.clients.split(",")]
    prefixes = [p for p in args.prefixes.split(",") if p]
    servers = [s for s in args.servers.split(",") if s]
    if not set(prefixes) <= set(PREFIXES) or not set(servers) <= set(SERVERS) or min(clients) < 1:
        parser.error("--prefixes takes shared,distinct; --servers ours,ours-b1,mlx-lm; --clients positive numbers")
    model = (args.model.expanduser() if args.model else default_model()).resolve()
    cases: list[CaseResult] = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            template = Path(scratch) / "template.jinja"
            template.write_text(harmony_template(model, datetime.date.today().isoformat()))
            for name in servers:
                print(f"starting {name} on {model} …", file=sys.stderr)
                server = ServerProcess(name, model, free_port(), template, Path(scratch) / f"data-{name}",
                                       Path(scratch) / f"{name}.log")
                try:
                    one_request(server, 0, 0, "shared", 4)  # warm up: the first request loads lazily
                    for prefix in prefixes:
                        for count in clients:
                            case = run_case(server, count, prefix, args.requests, args.max_tokens)
                            cases.append(case)
                            print(f"{name}: {count} clients, {prefix} prefix: {case.requests_per_s:.2f} req/s, "
                                  f"TTFT {case.ttft_s:.3f} s, {case.tokens_per_s:.1f} tok/s", file=sys.stderr)
                finally:
                    server.stop()
        check_same_prompts(cases)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"model {model}; {args.requests} requests per client, at most {args.max_tokens} tokens each, greedy")
    print(format_table(cases))
    if args.json:
        args.json.write_text(json.dumps([{**asdict(c), "requests_per_s": c.requests_per_s, "ttft_s": c.ttft_s,
                                          "tokens_per_s": c.tokens_per_s} for c in cases], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
