"""A port of MLX's code generation for ``mx.fast.metal_kernel`` (mlx 0.32.4).

MLX compiles ``metal::utils() + <generated text>``; the emulator compiles the very same generated
text, so this module must produce it byte for byte (tests/metal/test_emulator_golden.py compares it
with what MLX prints). Sources: ``mlx/backend/common/metal_kernel.cpp`` (``write_signature``,
``write_template``, the kernel naming) and ``mlx/backend/common/compiled.cpp``
(``get_type_string``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import mlx.core as mx

# Inputs with fewer elements are passed in the `constant` address space.
MAX_CONSTANT_ARRAY_SIZE = 8

TYPE_STRINGS: dict[mx.Dtype, str] = {
    mx.bool_: "bool",
    mx.uint8: "uint8_t",
    mx.uint16: "uint16_t",
    mx.uint32: "uint32_t",
    mx.uint64: "uint64_t",
    mx.int8: "int8_t",
    mx.int16: "int16_t",
    mx.int32: "int32_t",
    mx.int64: "int64_t",
    mx.float16: "float16_t",
    mx.bfloat16: "bfloat16_t",
    mx.float32: "float",
    mx.float64: "double",
    mx.complex64: "complex64_t",
}

# MLX recognises exactly these attribute names, in this order, by substring search of `source`.
METAL_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("dispatch_quadgroups_per_threadgroup", "uint"),
    ("dispatch_simdgroups_per_threadgroup", "uint"),
    ("dispatch_threads_per_threadgroup", "uint3"),
    ("grid_origin", "uint3"),
    ("grid_size", "uint3"),
    ("quadgroup_index_in_threadgroup", "uint"),
    ("quadgroups_per_threadgroup", "uint"),
    ("simdgroup_index_in_threadgroup", "uint"),
    ("simdgroups_per_threadgroup", "uint"),
    ("thread_execution_width", "uint"),
    ("thread_index_in_quadgroup", "uint"),
    ("thread_index_in_simdgroup", "uint"),
    ("thread_index_in_threadgroup", "uint"),
    ("thread_position_in_grid", "uint3"),
    ("thread_position_in_threadgroup", "uint3"),
    ("threadgroup_position_in_grid", "uint3"),
    ("threadgroups_per_grid", "uint3"),
    ("threads_per_grid", "uint3"),
    ("threads_per_simdgroup", "uint"),
    ("threads_per_threadgroup", "uint3"),
)

TemplateValue = bool | int | mx.Dtype


@dataclass(frozen=True)
class InputLayout:
    """What the generated signature depends on for one input: its dtype, rank and size."""

    dtype: mx.Dtype
    ndim: int
    size: int


@dataclass(frozen=True)
class BufferParameter:
    """One `[[buffer(i)]]` parameter, as the emulator's launcher must pass it.

    `c_type` is the element type as spelled in the Metal text; `by_reference` marks a `T&`
    (0-d inputs and `_ndim`), otherwise the parameter is a `T*`; outputs are `writable`.
    """

    name: str
    c_type: str
    by_reference: bool = False
    writable: bool = False


@dataclass(frozen=True)
class GeneratedKernel:
    """MLX's generated Metal text for one call, and the facts the launcher needs about it."""

    name: str  # e.g. custom_kernel_myk__float_4_1_float_float
    template_arguments: str  # e.g. "<float, 4, 1>", "" when not templated
    definition: str  # header, signature and body
    instantiation: str  # the explicit instantiation MLX appends to templated kernels, or ""
    buffers: tuple[BufferParameter, ...]
    attributes: tuple[str, ...]
    malformed: bool  # MLX's own signature is broken (see `_output_closes_signature`)

    @property
    def source(self) -> str:
        """Exactly the text MLX compiles after its utils() preamble (and prints when verbose)."""
        return self.definition + self.instantiation


def type_string(dtype: mx.Dtype) -> str:
    """MLX's `get_type_string`."""
    return TYPE_STRINGS[dtype]


def referenced_shape_infos(
    source: str, input_names: Sequence[str]
) -> list[tuple[bool, bool, bool]]:
    """For each input, whether `_shape`, `_strides`, `_ndim` occur in `source` (substrings)."""
    return [
        (f"{n}_shape" in source, f"{n}_strides" in source, f"{n}_ndim" in source)
        for n in input_names
    ]


def referenced_attributes(source: str) -> list[str]:
    """The attribute names that occur as substrings of `source`, in MLX's order."""
    return [name for name, _ in METAL_ATTRIBUTES if name in source]


def write_template(template: Sequence[tuple[str, TemplateValue]]) -> str:
    """MLX's `write_template`: `<float, 4, 1>`; bools print as 1/0."""
    values = []
    for _, value in template:
        if isinstance(value, bool):
            values.append(str(int(value)))
        elif isinstance(value, int):
            values.append(str(value))
        else:
            values.append(type_string(value))
    return "<" + ", ".join(values) + ">"


def _template_parameter_kind(value: TemplateValue) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, mx.Dtype):
        return "typename"
    raise ValueError(
        "[metal_kernel] Invalid template argument. Must be `mlx.core.Dtype`, `int` or `bool`."
    )


def kernel_name(
    name: str,
    inputs: Sequence[InputLayout],
    output_dtypes: Sequence[mx.Dtype],
    template: Sequence[tuple[str, TemplateValue]],
) -> str:
    """`custom_kernel_<name>[_<template hash>]_<input types+s|c>_<output types>`."""
    result = "custom_kernel_" + name
    if template:
        template_hash = re.sub(r"<|>|(, )", "_", write_template(template))[:-1]
        result += "_" + template_hash
    for layout in inputs:
        result += "_" + type_string(layout.dtype)
        if layout.ndim == 0:
            result += "s"
        elif layout.size < MAX_CONSTANT_ARRAY_SIZE:
            result += "c"
    for dtype in output_dtypes:
        result += "_" + type_string(dtype)
    return result


def generate(
    *,
    name: str,
    input_names: Sequence[str],
    output_names: Sequence[str],
    source: str,
    header: str,
    atomic_outputs: bool,
    inputs: Sequence[InputLayout],
    output_dtypes: Sequence[mx.Dtype],
    template: Sequence[tuple[str, TemplateValue]] = (),
) -> GeneratedKernel:
    """MLX's `write_signature` plus the explicit instantiation it appends for templates."""
    for _, value in template:
        _template_parameter_kind(value)
    func_name = kernel_name(name, inputs, output_dtypes, template)
    shape_infos = referenced_shape_infos(source, input_names)
    attributes = referenced_attributes(source)
    attribute_types = dict(METAL_ATTRIBUTES)

    text = header
    if template:
        text += "template <"
        text += ", ".join(f"{_template_parameter_kind(v)} {n}" for n, v in template)
        text += ">\n"
    text += f"[[kernel]] void {func_name}(\n"

    buffers: list[BufferParameter] = []
    for input_name, layout, (has_shape, has_strides, has_ndim) in zip(
        input_names, inputs, shape_infos
    ):
        location = "constant" if layout.size < MAX_CONSTANT_ARRAY_SIZE else "device"
        ref = "&" if layout.ndim == 0 else "*"
        c_type = type_string(layout.dtype)
        text += f"  const {location} {c_type}{ref} {input_name} [[buffer({len(buffers)})]],\n"
        buffers.append(BufferParameter(input_name, c_type, by_reference=layout.ndim == 0))
        if layout.ndim > 0:
            if has_shape:
                text += f"  const constant int* {input_name}_shape [[buffer({len(buffers)})]],\n"
                buffers.append(BufferParameter(f"{input_name}_shape", "int"))
            if has_strides:
                text += (
                    f"  const constant int64_t* {input_name}_strides [[buffer({len(buffers)})]],\n"
                )
                buffers.append(BufferParameter(f"{input_name}_strides", "int64_t"))
            if has_ndim:
                text += f"  const constant int& {input_name}_ndim [[buffer({len(buffers)})]],\n"
                buffers.append(BufferParameter(f"{input_name}_ndim", "int", by_reference=True))

    malformed = False
    for i, (output_name, dtype) in enumerate(zip(output_names, output_dtypes)):
        c_type = type_string(dtype)
        if atomic_outputs:
            c_type = f"atomic<{c_type}>"
        index = len(buffers)
        text += f"  device {c_type}* {output_name} [[buffer({index})]]"
        closes = _output_closes_signature(index, len(inputs), len(output_names), bool(attributes))
        text += ") {\n" if closes else ",\n"
        malformed |= closes != (i == len(output_names) - 1 and not attributes)
        buffers.append(BufferParameter(output_name, c_type, writable=True))

    for i, attribute in enumerate(attributes):
        text += f"  {attribute_types[attribute]} {attribute} [[{attribute}]]"
        text += ",\n" if i < len(attributes) - 1 else ") {\n"
    text += source + "\n}\n"

    template_arguments = write_template(template) if template else ""
    instantiation = ""
    if template:
        instance = func_name + template_arguments
        instantiation = (
            f'\ntemplate [[host_name("{func_name}")]] [[kernel]] decltype({instance}) {instance};\n'
        )
    return GeneratedKernel(
        name=func_name,
        template_arguments=template_arguments,
        definition=text,
        instantiation=instantiation,
        buffers=tuple(buffers),
        attributes=tuple(attributes),
        malformed=malformed,
    )


def verbose_listing(name: str, source: str) -> str:
    """What `verbose=True` prints: MLX writes this to std::cout before compiling."""
    return f"Generated source code for `{name}`:\n```\n{source}\n```\n"


def _output_closes_signature(
    buffer_index: int, n_inputs: int, n_outputs: int, has_attributes: bool
) -> bool:
    """MLX's test for closing the parameter list after an output.

    It compares a buffer index that also counts `_shape/_strides/_ndim` buffers with the number
    of inputs and outputs, so with shape buffers, two or more outputs and no attributes MLX closes
    the list too early and generates text that does not compile.
    """
    return not (buffer_index < n_inputs + n_outputs - 1 or has_attributes)
