"""`gpt-oss-chat` end to end on the trained test model."""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path

from support.harmony_model import EXCHANGES, START_DATE

from gpt_oss_desktop.mlx_model import Engine
from gpt_oss_desktop.mlx_model.cli import main
from gpt_oss_desktop.mlx_model.memory import experts_bytes


def chat(model: Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--model", str(model), "--temperature", "0", "--start-date", START_DATE, *args],
                stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_single_prompt_prints_reasoning_then_answer(harmony_model_dir: Path) -> None:
    code, out, err = chat(harmony_model_dir, "--reasoning", "high", "--prompt", EXCHANGES["sum"].question)
    assert code == 0
    assert out == f"Thinking: {EXCHANGES['sum'].analysis}\n\n{EXCHANGES['sum'].final}\n"
    assert "tok/s" in err


def test_paged_experts_answer_the_same_and_report_their_hit_rate(harmony_model_dir: Path) -> None:
    half_the_experts = experts_bytes(harmony_model_dir) / 2 / 1024**3
    code, out, err = chat(harmony_model_dir, "--reasoning", "high", "--expert-budget-gib", str(half_the_experts),
                          "--prompt", EXCHANGES["sum"].question)
    assert code == 0
    assert out == f"Thinking: {EXCHANGES['sum'].analysis}\n\n{EXCHANGES['sum'].final}\n"
    assert "experts found in memory" in err
    assert "experts found in memory" not in chat(harmony_model_dir, "--prompt", EXCHANGES["sum"].question)[2]


def test_an_8_bit_kv_cache_answers_the_same(harmony_model_dir: Path) -> None:
    """The trained model's answers are confident: rounding the cache to 8 bits keeps them."""
    code, out, _ = chat(harmony_model_dir, "--reasoning", "high", "--kv-bits", "8", "--prompt", EXCHANGES["sum"].question)
    assert code == 0
    assert out == f"Thinking: {EXCHANGES['sum'].analysis}\n\n{EXCHANGES['sum'].final}\n"


def test_json_prints_one_event_per_line(harmony_model_dir: Path) -> None:
    code, out, _ = chat(harmony_model_dir, "--json", "--prompt", EXCHANGES["colour"].question)
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert events[0] == {"type": "MessageStart", "channel": "analysis", "recipient": None, "content_type": None}
    assert events[-1]["type"] == "Done" and events[-1]["reason"] == "return"
    assert "".join(e["text"] for e in events if e["type"] == "TextDelta" and e["channel"] == "final") == "Blue."


def test_raw_shows_the_harmony_text(harmony_model_dir: Path, monkeypatch) -> None:
    renders: list[Engine] = []
    render = Engine.render
    monkeypatch.setattr(Engine, "render", lambda engine, *args: renders.append(engine) or render(engine, *args))
    code, out, _ = chat(harmony_model_dir, "--raw", "--reasoning", "low", "--prompt", EXCHANGES["sum"].question)
    assert code == 0
    assert out.startswith("<|start|>system<|message|>")
    assert "Reasoning: low" in out
    assert out.endswith(f"<|start|>assistant<|channel|>final<|message|>{EXCHANGES['sum'].final}<|return|>")
    engine = renders[0]
    assert len(renders) == 1, "the prompt shown is the reply's own rendering, not a second one"
    assert out.startswith(engine.tokenizer.decode(engine.last_prompt)), "it shows what the model read"


def test_interactive_turns_reuse_the_cache_and_switch_level(harmony_model_dir: Path) -> None:
    script = f"{EXCHANGES['sum'].question}\n/reasoning low\n{EXCHANGES['colour'].question}\n"
    code, out, err = chat(harmony_model_dir, stdin=script)
    assert code == 0
    assert out.count("Thinking:") == 2 and EXCHANGES["colour"].final in out
    assert "[reasoning: low]" in err


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = chat(tmp_path / "absent", "--prompt", "hi")
    assert code == 2 and "No model folder at" in err


def test_arguments_are_checked_with_messages_that_say_what_is_wrong(capsys) -> None:
    import pytest

    for arguments, complaint in (
        (["--start-date", "yesterday"], "argument --start-date: 'yesterday' is not a date written YYYY-MM-DD"),
        (["--start-date", "2025-02-30"], "'2025-02-30' is not a date"),
        (["--temperature", "-1"], "argument --temperature: -1 must be at least 0.0"),
        (["--top-p", "0"], "argument --top-p: 0 must be above 0.0"),
        (["--max-tokens", "many"], "argument --max-tokens: 'many' is not an integer"),
        (["--context", "12"], "argument --context: 12 must be at least 256"),
        (["--kv-bits", "4"], "argument --kv-bits: invalid choice: 4"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["--model", "unused", *arguments], stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO())
        assert exit_.value.code == 2
        assert complaint in capsys.readouterr().err


class _InterruptedInput(io.StringIO):
    """A terminal whose user presses Ctrl+C at the prompt after typing `lines`."""

    def readline(self, *args) -> str:
        line = super().readline(*args)
        if not line:
            raise KeyboardInterrupt
        return line


def test_ctrl_c_at_the_idle_prompt_exits_quietly(harmony_model_dir: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--model", str(harmony_model_dir), "--temperature", "0", "--start-date", START_DATE],
                stdin=_InterruptedInput(f"{EXCHANGES['colour'].question}\n"), stdout=out, stderr=err)
    assert code == 130
    assert EXCHANGES["colour"].final in out.getvalue()
    assert "Traceback" not in err.getvalue() + out.getvalue()


def test_json_keeps_non_ascii_text_as_it_is() -> None:
    from gpt_oss_desktop.mlx_model.cli import _Printer
    from gpt_oss_desktop.mlx_model.events import TextDelta

    out = io.StringIO()
    _Printer(out, io.StringIO(), as_json=True, raw=False, colour=False).event(TextDelta("final", "Café → 日本"))
    assert "Café → 日本" in out.getvalue() and json.loads(out.getvalue())["text"] == "Café → 日本"


class _CtrlCInTheAnswer(io.StringIO):
    """The terminal's --raw output; presses Ctrl+C (a real SIGINT) once the answer has begun."""

    def __init__(self) -> None:
        super().__init__()
        self.pressed = False

    def write(self, text: str) -> int:
        written = super().write(text)
        turn = self.getvalue().split("<|start|>user")[-1]
        if not self.pressed and "<|channel|>final<|message|>" in turn and not turn.endswith("<|message|>"):
            self.pressed = True
            signal.raise_signal(signal.SIGINT)
        return written


def test_ctrl_c_in_mid_answer_stops_it_keeps_it_and_tells_the_model(harmony_model_dir: Path) -> None:
    """As the app's Stop: the cut answer stays in the chat, and the next prompt gives it back
    closed with the note, not as if it were finished (--raw shows what the model reads)."""
    from gpt_oss_desktop.mlx_model.harmony import INCOMPLETE_NOTE

    out, err = _CtrlCInTheAnswer(), io.StringIO()
    script = f"{EXCHANGES['sum'].question}\n{EXCHANGES['colour'].question}\n"
    code = main(["--model", str(harmony_model_dir), "--temperature", "0", "--start-date", START_DATE, "--raw"],
                stdin=io.StringIO(script), stdout=out, stderr=err)
    assert code == 0 and out.pressed
    assert "[stopped: the reply is kept, marked unfinished" in err.getvalue()
    first = out.getvalue().split(f"<|start|>user<|message|>{EXCHANGES['colour'].question}", 1)[0]
    answered = first.split("<|channel|>final<|message|>", 1)[1]
    assert answered.endswith(INCOMPLETE_NOTE + "<|end|>"), "the next prompt closes the cut answer with the note"
    cut = answered.split(INCOMPLETE_NOTE)[0]
    assert cut and EXCHANGES["sum"].final not in first and "<|return|>" not in answered


def test_a_named_session_continues_across_runs_reusing_its_cache(harmony_model_dir: Path, data_dir: Path) -> None:
    """Two runs of `--session work`: the second has the first's messages and prefills only its
    new question (its --json Stats show the reused tokens), from the cache the first left on disk."""
    def stats_of(out: str) -> dict:
        return next(e for e in map(json.loads, out.splitlines()) if e["type"] == "Stats")

    code, out, _ = chat(harmony_model_dir, "--session", "work", "--json", "--prompt", EXCHANGES["sum"].question)
    assert code == 0 and stats_of(out)["cached_tokens"] == 0
    saved = json.loads((data_dir / "terminal-sessions" / "work.json").read_text())
    assert [m["role"] for m in saved["messages"]][0] == "user" and len(saved["messages"]) >= 2
    assert len(list((data_dir / "prompt-caches").glob("*.safetensors"))) == 1

    code, out, err = chat(harmony_model_dir, "--session", "work", "--json", "--prompt", EXCHANGES["colour"].question)
    second = stats_of(out)
    assert code == 0 and "note" not in err
    assert second["cached_tokens"] > 0 and second["prompt_tokens"] - second["cached_tokens"] < 25
    events = [json.loads(line) for line in out.splitlines()]
    assert EXCHANGES["colour"].final in "".join(e.get("text", "") for e in events if e["type"] == "TextDelta")
    again = json.loads((data_dir / "terminal-sessions" / "work.json").read_text())
    assert again["messages"][: len(saved["messages"])] == saved["messages"]


def test_a_damaged_session_cache_is_noted_and_the_chat_read_again(harmony_model_dir: Path, data_dir: Path) -> None:
    assert chat(harmony_model_dir, "--session", "work", "--prompt", EXCHANGES["sum"].question)[0] == 0
    (cache,) = (data_dir / "prompt-caches").glob("*.safetensors")
    cache.write_bytes(cache.read_bytes()[:1000])  # truncated
    code, _, err = chat(harmony_model_dir, "--session", "work", "--prompt", EXCHANGES["colour"].question)
    assert code == 0 and "note: The saved prompt cache was discarded" in err and "truncated or damaged" in err
