"""`gpt-oss-chat --json-schema FILE` / `--json-object` on a random tiny model (its free output is
noise): stdout is the JSON answer alone and validates, the reasoning goes to stderr, bad files
are refused before the model loads with the file and the keyword named, and an answer that did
not complete is a non-zero exit."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from structured_corpus import CORPUS, UNBOUNDED

from gpt_oss_desktop.mlx_model.cli import main

ROOT = Path(__file__).resolve().parents[2]


def chat(model: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--model", str(model), "--start-date", "2026-01-01", "--seed", "0", "--max-reasoning-tokens", "6",
                 "--max-tokens", "300", *args], stdin=io.StringIO(""), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def write(folder: Path, name: str, document) -> Path:
    path = folder / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


@pytest.mark.parametrize("name", ["nested_objects", "enum_colour", "pattern_codes"])
def test_the_answer_on_stdout_is_json_that_validates(random_model_dir: Path, tmp_path: Path, name: str) -> None:
    schema, _ = CORPUS[name]
    code, out, err = chat(random_model_dir, "--json-schema", str(write(tmp_path, f"{name}.json", schema)),
                          "--prompt", "Answer.")
    assert code == 0, err
    jsonschema.validate(json.loads(out), schema)
    assert out.endswith("\n") and out.count("\n") == 1  # the answer alone
    assert "tok/s" in err  # the stats, and the reasoning before them, on stderr


def test_a_chat_completions_response_format_file(random_model_dir: Path, tmp_path: Path) -> None:
    schema, strict = CORPUS["flat_strict"]
    document = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": strict}}
    code, out, err = chat(random_model_dir, "--json-schema", str(write(tmp_path, "format.json", document)),
                          "--prompt", "Answer.")
    assert code == 0, err
    jsonschema.validate(json.loads(out), schema)


def test_json_object(random_model_dir: Path) -> None:
    code, out, err = chat(random_model_dir, "--json-object", "--temperature", "0.7", "--max-tokens", "400",
                          "--prompt", "Answer.")
    if code == 0:
        assert isinstance(json.loads(out), dict)
    else:  # a random model rarely closes a free string; then the exit status says so
        assert code == 1 and "[max_tokens:" in err and "JSON mode" in err


def test_a_regex_and_a_lark_grammar(random_model_dir: Path, tmp_path: Path) -> None:
    code, out, err = chat(random_model_dir, "--regex", "[A-Z]{2}-[0-9]{3}", "--prompt", "A code.")
    assert code == 0, err
    assert re.fullmatch(r"[A-Z]{2}-[0-9]{3}\n", out)
    grammar = write(tmp_path, "list.lark", 'start: "(" item ("," item)* ")"\nitem: /[a-c]/ | "nil"')
    code, out, err = chat(random_model_dir, "--lark", str(grammar), "--prompt", "A list.")
    assert code == 0, err
    assert re.fullmatch(r"\((?:[a-c]|nil)(?:,(?:[a-c]|nil))*\)\n", out)
    code, _, err = chat(random_model_dir, "--lark", str(write(tmp_path, "bad.lark", "start: nowhere")), "--prompt", "x")
    assert code == 2 and "the Lark grammar cannot be compiled" in err


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (None, "cannot read it"),
        ("{\"type\": \"object\",", "not valid JSON (line 1, column 19"),
        ({"type": "object", "properties": {"a": {"allOf": [{"type": "string"}]}}},
         "unsupported keyword 'allOf' at #/properties/a"),
        ({"type": "object", "properties": {"a": {"type": "string", "format": "phone"}}},
         "unsupported string format 'phone' at #/properties/a"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {}},
                                                 "strict": True}},
         "response_format.json_schema.schema: with strict, the object at # must set additionalProperties"),
        ({"type": "text"}, 'response_format type "text" holds nothing'),
    ],
)
def test_bad_files_are_refused_before_the_model_loads(tmp_path: Path, content, complaint: str) -> None:
    path = tmp_path / "schema.json" if content is None else write(tmp_path, "schema.json", content)
    code, out, err = chat(tmp_path / "no-model-here", "--json-schema", str(path), "--prompt", "hi")
    assert code == 2 and out == ""
    assert err.startswith(f"gpt-oss-chat: --json-schema {path}: ") and complaint in err, err
    assert "No model folder" not in err


def test_a_schema_the_library_cannot_compile_fails_before_the_chat(random_model_dir: Path, tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "([a-z]"}}}
    code, out, err = chat(random_model_dir, "--json-schema", str(write(tmp_path, "codes.json", schema)),
                          "--prompt", "hi")
    assert code == 2 and out == ""
    assert "the JSON Schema 'codes' cannot be compiled" in err


def test_the_token_limit_inside_the_json_is_a_failure(random_model_dir: Path, tmp_path: Path) -> None:
    schema, _ = UNBOUNDED[sorted(UNBOUNDED)[0]]
    code, out, err = chat(random_model_dir, "--json-schema", str(write(tmp_path, "long.json", schema)),
                          "--max-tokens", "40", "--prompt", "hi")
    assert code == 1
    assert "[max_tokens: stopped after 40 tokens (the maximum); the reply stopped inside its constrained part" in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_the_installed_entry_point_writes_the_json_to_stdout(random_model_dir: Path, tmp_path: Path) -> None:
    """As a script runs it: a real process, stdout a pipe."""
    schema, _ = CORPUS["enum_colour"]
    path = write(tmp_path, "colour.json", schema)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "gpt_oss_desktop.mlx_model.cli", "--model", str(random_model_dir), "--seed", "1",
         "--max-reasoning-tokens", "4", "--json-schema", str(path), "--prompt", "Pick a colour."],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    jsonschema.validate(json.loads(done.stdout), schema)
