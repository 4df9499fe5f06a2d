"""The text rewrites that turn MLX's Metal text into C++ (no compiler needed)."""

from __future__ import annotations

import mlx.core as mx
import pytest

from gpt_oss_desktop.metal.emulator import UnsupportedConstruct
from gpt_oss_desktop.metal.emulator.signature import InputLayout, generate
from gpt_oss_desktop.metal.emulator.translate import rewrite_threadgroup_declarations, strip_comments, translate


def test_comments_are_blanked_but_lines_and_strings_stay():
    text = 'a; // threadgroup x\nb = "/* not a comment */"; /* one\ntwo */ c;'
    stripped = strip_comments(text)
    assert stripped.count("\n") == text.count("\n")
    assert "threadgroup" not in stripped and "one" not in stripped
    assert '"/* not a comment */"' in stripped and stripped.endswith(" c;")


def test_threadgroup_variables_get_one_registered_copy_per_threadgroup():
    code = (
        "{\n"
        "  threadgroup float a[32], b[N * 2];\n"
        "  threadgroup vec<float, 4> tiles[8];\n"
        "  threadgroup float* p = a + 1;\n"
        "  threadgroup float& first = a[0];\n"
        "  helper((threadgroup float*)b);\n"
        "  if (x) { threadgroup atomic_uint counter; }\n"
        "}\n"
    )
    rewritten = rewrite_threadgroup_declarations(code, "k")
    lines = rewritten.splitlines()
    assert len(lines) == len(code.splitlines())
    assert lines[1] == (
        "  static thread_local float a[32], b[N * 2];"
        " ::metal_emu::register_threadgroup_memory(&a, sizeof(a));"
        " ::metal_emu::register_threadgroup_memory(&b, sizeof(b));"
    )
    assert "static thread_local vec<float, 4> tiles[8];" in lines[2]
    assert "register_threadgroup_memory(&tiles" in lines[2]
    # Pointers, references and casts keep the qualifier, which the shim's macro erases.
    assert lines[3:6] == code.splitlines()[3:6]
    assert "static thread_local atomic_uint counter;" in lines[6]


def test_threadgroup_initialisers_are_refused():
    with pytest.raises(UnsupportedConstruct, match="cannot be initialised.*k.metal:2"):
        rewrite_threadgroup_declarations("{\n threadgroup float s = 0;\n}", "k")


def _translated(source: str, header: str = ""):
    kernel = generate(
        name="k", input_names=["x"], output_names=["y"], source=source, header=header,
        atomic_outputs=False, inputs=[InputLayout(mx.float32, 1, 16)],
        output_dtypes=[mx.float32],
    )
    return translate(kernel, "k")


def test_literals_follow_metal_where_unsuffixed_floats_are_float():
    cpp = _translated("y[0] = 1.5h + 0.25bf + 2.0 + 1e-3 + 3.f + 7;").cpp
    assert "half(1.5f) + bfloat(0.25f) + 2.0f + 1e-3f + 3.f + 7;" in cpp


def test_metal_headers_and_attributes_are_removed_and_lines_kept():
    source = "uint i = thread_position_in_grid.x;\ny[i] = x[i];"
    cpp = _translated(source, header="#include <metal_stdlib>\n").cpp
    body = cpp.split('#line 1 "k.metal"\n', 1)[1].split("#line 1", 1)[0]
    assert "[[" not in body and "metal_stdlib" not in body
    assert body.splitlines()[6] == "y[i] = x[i];"  # line 7 of the Metal text


@pytest.mark.parametrize(
    ("source", "uses_fibers"),
    [
        ("y[0] = x[0];", False),
        ("y[0] = simd_sum(x[0]);", True),
        ("threadgroup_barrier(mem_flags::mem_none);", True),
        ("y[0] = x[0]; // simd_sum in a comment", False),
    ],
)
def test_fibers_are_used_only_by_kernels_that_synchronise(source: str, uses_fibers: bool):
    assert _translated(source).uses_fibers is uses_fibers
