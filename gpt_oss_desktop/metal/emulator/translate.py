"""Turns MLX's generated Metal text into a C++ translation unit for the shim.

The rewrites keep every newline, so with a `#line` directive in front, the compiler's messages
point at `<name>.metal:<line>` of the generated text (the text `verbose=True` prints).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpt_oss_desktop.metal.emulator.errors import UnsupportedConstruct
from gpt_oss_desktop.metal.emulator.signature import GeneratedKernel

# Constructs the shim does not implement, and why the kernel is rejected.
_UNSUPPORTED: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(texture|depth)(1d|2d|3d|cube|_buffer)\w*\b"), "textures are not emulated"),
    (re.compile(r"\bsampler\b"), "samplers are not emulated"),
    (re.compile(r"\bimageblock\b|\bthreadgroup_imageblock\b"), "imageblocks are not emulated"),
    (re.compile(r"\bquad_\w+\s*\("), "quad-group functions are not emulated"),
    (re.compile(r"\bfunction_constant\b"), "function constants are not emulated"),
    (re.compile(r"\bdouble\b"), "Metal has no double"),
    (re.compile(r"\bcomplex64_t\b"), "complex64_t is not emulated"),
)

# What Metal's fast math leaves undefined (MLX does not pin the math mode): infinities and NaN,
# and the tests for them, which fast math may fold to false.
_FAST_MATH_UNDEFINED: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b(INFINITY|NAN|HUGE_VALF?)\b"),
    re.compile(r"\b(isnan|isinf|isfinite|isnormal)\s*\("),
    re.compile(r"\b(infinity|quiet_NaN|signaling_NaN)\s*\("),
    re.compile(r"\bLimits\s*<\s*(float|half|bfloat|float16_t|bfloat16_t)\s*>\s*::\s*(max|min)\b"),
)

# Any of these words means the kernel synchronises, so its threads must run as fibers.
_SYNCHRONISING = re.compile(
    r"\b(threadgroup_barrier|simdgroup_barrier|simd_\w+|simdgroup_(load|store|multiply\w*))\b"
)

# A vector type in the threadgroup or device address space: stores to part of it are modelled
# as Metal may compile them (shim/metal_vector_store.h), which needs fibers.
_SHARED_VECTOR = re.compile(
    r"\b(threadgroup|device)(\s+const)?\s+"
    r"(float|half|bfloat|bool|char|uchar|short|ushort|int|uint|long|ulong)([234])\b"
)

_ATTRIBUTE = re.compile(r"\[\[\s*[A-Za-z_][^\[\]]*\]\]")
_METAL_INCLUDE = re.compile(r"^[ \t]*#[ \t]*include[ \t]*<metal_\w+>[ \t]*$", re.MULTILINE)
_FLOAT_LITERAL = re.compile(
    r"(?<![\w.])((?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)(bf|BF|[fFhH])?(?![\w.])"
)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class TranslatedKernel:
    """The C++ source for one kernel variant."""

    cpp: str
    uses_fibers: bool


def strip_comments(text: str) -> str:
    """Replaces comments by spaces, keeping newlines; string and character literals stay."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" ")
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(" " + "\n" * text.count("\n", i, end))
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def check_supported(code: str, kernel: str) -> None:
    """Raises UnsupportedConstruct for the first construct the shim does not implement."""
    for pattern, reason in _UNSUPPORTED:
        if match := pattern.search(code):
            line = code.count("\n", 0, match.start()) + 1
            raise UnsupportedConstruct(
                f"kernel {kernel!r}: {reason} (`{match.group(0)}` at {kernel}.metal:{line})"
            )


def check_fast_math(code: str, kernel: str) -> None:
    """Raises UnsupportedConstruct where the kernel relies on infinities or NaN."""
    for pattern in _FAST_MATH_UNDEFINED:
        if match := pattern.search(code):
            line = code.count("\n", 0, match.start()) + 1
            raise UnsupportedConstruct(
                f"kernel {kernel!r}: `{match.group(0).strip()}` at {kernel}.metal:{line} relies on "
                "infinities or NaN, which Metal's fast math leaves undefined (MLX does not pin the "
                "math mode); use a finite sentinel such as -1e30f or Limits<float>::finite_min"
            )


def rewrite_shared_vectors(code: str) -> tuple[str, bool]:
    """Gives threadgroup and device vector types the shim's shared_vec type; True if any."""
    rewritten, count = _SHARED_VECTOR.subn(
        lambda m: f"{m.group(1)}{m.group(2) or ''} ::metal_emu::shared_{m.group(3)}{m.group(4)}",
        code,
    )
    return rewritten, count > 0


def _rewrite_float_literal(match: re.Match[str]) -> str:
    number, suffix = match.group(1), (match.group(2) or "").lower()
    if suffix == "h":
        return f"half({number}f)"
    if suffix == "bf":
        return f"bfloat({number}f)"
    # Metal has no double: an unsuffixed literal is a float there.
    return number + "f"


def _statement_end(code: str, start: int) -> int:
    """The index of the `;` ending the statement that starts at `start`."""
    depth = 0
    for i in range(start, len(code)):
        c = code[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == ";" and depth == 0:
            return i
    return len(code)


def _split_declarators(declaration: str) -> list[str]:
    """Splits `float a[4], b[8]` at commas outside brackets and template arguments."""
    parts, depth, angle_depth, start = [], 0, 0, 0
    for i, c in enumerate(declaration):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "<" and depth == 0:
            angle_depth += 1
        elif c == ">" and depth == 0:
            angle_depth -= 1
        elif c == "," and depth == 0 and angle_depth == 0:
            parts.append(declaration[start:i])
            start = i + 1
    parts.append(declaration[start:])
    return parts


def rewrite_threadgroup_declarations(code: str, kernel: str) -> str:
    """Gives each `threadgroup` variable one copy per threadgroup, poisoned before each group.

    A declaration outside parentheses whose declarators are not pointers or references
    becomes `static thread_local` (the fibers of one threadgroup share an OS thread) and
    registers its storage with the runtime. Every other `threadgroup` (pointer and reference
    qualifiers, casts, parameters) is left to the macro that expands it to nothing.
    """
    out: list[str] = []
    position = 0
    paren_depth, scanned = 0, 0
    for match in re.finditer(r"\bthreadgroup\b", code):
        if match.start() < position:
            continue
        opened = code.count("(", scanned, match.start())
        paren_depth += opened - code.count(")", scanned, match.start())
        scanned = match.start()
        if paren_depth > 0:
            continue
        end = _statement_end(code, match.end())
        declaration = code[match.end() : end]
        declarators = _split_declarators(declaration)
        heads = [d.split("[")[0] for d in declarators]  # type and name, without array sizes
        if any("*" in head or "&" in head for head in heads):
            continue
        line = code.count("\n", 0, match.start()) + 1
        if any("=" in d or "{" in d for d in declarators):
            raise UnsupportedConstruct(
                f"kernel {kernel!r}: threadgroup variables cannot be initialised "
                f"({kernel}.metal:{line})"
            )
        names = [_IDENTIFIER.findall(head)[-1] for head in heads]
        registrations = "".join(
            f" ::metal_emu::register_threadgroup_memory(&{n}, sizeof({n}));" for n in names
        )
        out.append(code[position : match.start()])
        out.append("static thread_local" + declaration + ";" + registrations)
        position = end + 1
    out.append(code[position:])
    return "".join(out)


def _launcher(kernel: GeneratedKernel) -> str:
    """The exported entry point: unpacks the buffers in MLX's binding order and dispatches."""
    arguments = []
    for index, buffer in enumerate(kernel.buffers):
        const = "" if buffer.writable else "const "
        pointer = f"static_cast<{const}{buffer.c_type}*>(buffers[{index}])"
        arguments.append(f"*{pointer}" if buffer.by_reference else pointer)
    arguments += [f"attributes.{name}" for name in kernel.attributes]
    joined = ",\n      ".join(arguments)
    return f"""
#line 1 "metal-emulator-launcher.cpp"
static void metal_emu_thread(const ::metal_emu::ThreadAttributes& attributes,
                             void* const* buffers) {{
  (void)attributes;
  (void)buffers;
  {kernel.name}{kernel.template_arguments}(
      {joined});
}}

extern "C" __attribute__((visibility("default"))) int metal_emu_launch(
    const ::metal_emu::LaunchConfig* config, void* const* buffers, char* error,
    unsigned long error_size) {{
  return ::metal_emu::launch(*config, &metal_emu_thread, buffers, error, error_size);
}}
"""


def translate(kernel: GeneratedKernel, label: str) -> TranslatedKernel:
    """C++ for `kernel`; `label` is the user's kernel name, used in messages and `#line`."""
    code = strip_comments(kernel.definition)
    check_supported(code, label)
    check_fast_math(code, label)
    code = _METAL_INCLUDE.sub("", code)
    code = _ATTRIBUTE.sub("", code)
    code, shared_vectors = rewrite_shared_vectors(code)
    code = rewrite_threadgroup_declarations(code, label)
    code = _FLOAT_LITERAL.sub(_rewrite_float_literal, code)
    cpp = (
        '#include "metal_shim.h"\n'
        f'#line 1 "{label}.metal"\n'
        f"{code}\n"
        f"{_launcher(kernel)}"
    )
    return TranslatedKernel(
        cpp=cpp, uses_fibers=shared_vectors or bool(_SYNCHRONISING.search(code))
    )
