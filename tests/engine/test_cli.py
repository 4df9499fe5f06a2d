"""`gpt-oss-chat` end to end on the trained test model."""

from __future__ import annotations

import io
import json
from pathlib import Path

from support.harmony_model import EXCHANGES, START_DATE

from mlx_model.cli import main
from mlx_model.memory import experts_bytes


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


def test_json_prints_one_event_per_line(harmony_model_dir: Path) -> None:
    code, out, _ = chat(harmony_model_dir, "--json", "--prompt", EXCHANGES["colour"].question)
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert events[0] == {"type": "MessageStart", "channel": "analysis", "recipient": None, "content_type": None}
    assert events[-1]["type"] == "Done" and events[-1]["reason"] == "return"
    assert "".join(e["text"] for e in events if e["type"] == "TextDelta" and e["channel"] == "final") == "Blue."


def test_raw_shows_the_harmony_text(harmony_model_dir: Path) -> None:
    code, out, _ = chat(harmony_model_dir, "--raw", "--reasoning", "low", "--prompt", EXCHANGES["sum"].question)
    assert code == 0
    assert out.startswith("<|start|>system<|message|>")
    assert "Reasoning: low" in out
    assert out.endswith(f"<|start|>assistant<|channel|>final<|message|>{EXCHANGES['sum'].final}<|return|>")


def test_interactive_turns_reuse_the_cache_and_switch_level(harmony_model_dir: Path) -> None:
    script = f"{EXCHANGES['sum'].question}\n/reasoning low\n{EXCHANGES['colour'].question}\n"
    code, out, err = chat(harmony_model_dir, stdin=script)
    assert code == 0
    assert out.count("Thinking:") == 2 and EXCHANGES["colour"].final in out
    assert "[reasoning: low]" in err


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = chat(tmp_path / "absent", "--prompt", "hi")
    assert code == 2 and "No model folder at" in err
