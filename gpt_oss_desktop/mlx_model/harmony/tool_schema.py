"""Tool namespaces as harmony prompt text: JSON Schema parameters in the TypeScript-like form.

The output follows openai-harmony's renderer character for character (the model was trained on
it), including its quirks: only string enums are listed, string defaults are quoted unless the
property is an enum, other defaults are printed as serde_json prints them (so `1e-7`, not Python's
`1e-07`), and a `oneOf` property lists one variant per line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

_OBJECT_INDENT = "    "
_VARIANT_INDENT = "   "


def tools_section(namespaces: Mapping[str, Mapping[str, Any]]) -> str:
    """`# Tools` and one `## name` block per namespace, in the order of their keys."""
    sections = ["# Tools"]
    for key in sorted(namespaces):
        sections.append(_namespace_block(namespaces[key]))
    return "\n\n".join(sections)


def _namespace_block(namespace: Mapping[str, Any]) -> str:
    name = namespace["name"]
    tools = namespace.get("tools") or []
    lines = [f"## {name}\n"]
    # A namespace with tools comments its description; one without (python) prints it as prose.
    lines += [f"// {line}" if tools else line for line in rust_lines(namespace.get("description"))]
    if tools:
        lines.append(f"namespace {name} {{\n")
        for tool in tools:
            lines += [f"// {line}" for line in rust_lines(tool["description"])]
            parameters = tool.get("parameters")
            signature = "()" if parameters is None else f"(_: {typescript(parameters, '')})"
            lines.append(f"type {tool['name']} = {signature} => any;\n")
        lines.append(f"}} // namespace {name}")
    return "\n".join(lines)


def rust_lines(text: str | None) -> list[str]:
    """Rust's `str::lines()`: split at `\\n` or `\\r\\n` (a bare `\\r` stays), no empty last."""
    if not text:
        return []
    *ended, last = text.split("\n")
    lines = [line[:-1] if line.endswith("\r") else line for line in ended]
    return [*lines, last] if last else lines


def _get(schema: Any, key: str) -> Any:
    return schema.get(key) if isinstance(schema, dict) else None


def _string(schema: Any, key: str) -> str | None:
    value = _get(schema, key)
    return value if isinstance(value, str) else None


def _is_enum(schema: Any) -> bool:
    values = _get(schema, "enum")
    return isinstance(values, list) and len(values) > 0


def _nullable(schema: Any, rendered: str) -> str:
    if _get(schema, "nullable") is True and "null" not in rendered:
        return f"{rendered} | null"
    return rendered


def _default_comment(schema: Any, *, raw_enum_string: bool) -> str | None:
    """`default: ...`; a string is quoted raw unless the schema is an enum.

    The variants of a schema that is itself a `oneOf` (not a oneOf property) print an enum's
    string default as JSON instead (`raw_enum_string=False`), as openai-harmony does.
    """
    if not isinstance(schema, dict) or "default" not in schema:
        return None
    default = schema["default"]
    if isinstance(default, str) and not _is_enum(schema):
        return f'default: "{default}"'
    if isinstance(default, str) and raw_enum_string:
        return f"default: {default}"
    return f"default: {json_text(default)}"


def typescript(schema: Any, indent: str) -> str:
    """The TypeScript-like type of a JSON Schema, as openai-harmony renders tool parameters."""
    one_of = _get(schema, "oneOf")
    if isinstance(one_of, list):
        return "".join(
            f"\n{indent} | " + _variant(v, indent, _string(v, "description"), raw_enum_string=False)
            for v in one_of
        )
    schema_type = _get(schema, "type")
    if isinstance(schema_type, list):
        names = ["number" if t == "integer" else t for t in schema_type if isinstance(t, str)]
        if names:
            return " | ".join(names)
    if not isinstance(schema_type, str):
        return "any"
    if schema_type == "object":
        return _object(schema, indent)
    if schema_type == "string":
        values = _get(schema, "enum")
        strings = (
            [f'"{v}"' for v in values if isinstance(v, str)] if isinstance(values, list) else []
        )
        return " | ".join(strings) if strings else "string"
    if schema_type in ("number", "integer"):
        return "number"
    if schema_type == "boolean":
        return "boolean"
    if schema_type == "array":
        return f"{typescript(schema['items'], indent)}[]" if "items" in schema else "Array<any>"
    return "any"


def _variant(variant: Any, indent: str, description: str | None, *, raw_enum_string: bool) -> str:
    """One `oneOf` alternative with its trailing `// description default: ...` comment."""
    rendered = _nullable(variant, typescript(variant, indent + _VARIANT_INDENT))
    comments = [] if description is None else [description]
    default = _default_comment(variant, raw_enum_string=raw_enum_string)
    if default is not None:
        comments.append(default)
    return f"{rendered} // {' '.join(comments)}" if comments else rendered


def _object(schema: Mapping[str, Any], indent: str) -> str:
    out = []
    description = _string(schema, "description")
    if description is not None:
        out.append(f"{indent}// {description}\n")
    out.append("{\n")
    properties = schema.get("properties")
    if isinstance(properties, dict):
        required_list = schema.get("required")
        required = (
            {r for r in required_list if isinstance(r, str)}
            if isinstance(required_list, list)
            else set()
        )
        for key, prop in properties.items():
            out.append(_property(key, prop, key in required, indent))
    out.append(f"{indent}}}")
    return "".join(out)


def _property(key: str, prop: Any, required: bool, indent: str) -> str:
    out = []
    marker = "" if required else "?"
    # Any `oneOf` key, even a null one, moves the description and default out of the usual place.
    has_one_of = isinstance(prop, dict) and "oneOf" in prop
    title = _string(prop, "title")
    if title is not None:
        out.append(f"{indent}// {title}\n{indent}//\n")
    description = _string(prop, "description")
    if not has_one_of and description is not None:
        out.append(f"{indent}// {description}\n")
    examples = _get(prop, "examples")
    if isinstance(examples, list) and examples:
        out.append(f"{indent}// Examples:\n")
        out += [f'{indent}// - "{example}"\n' for example in examples if isinstance(example, str)]
    variants = _get(prop, "oneOf")
    if isinstance(variants, list):
        out.append(_one_of_property(key, marker, prop, variants, description, indent))
        return "".join(out)
    out.append(f"{indent}{key}{marker}: ")
    out.append(_nullable(prop, typescript(prop, indent + _OBJECT_INDENT)))
    out.append(",")
    default = None if has_one_of else _default_comment(prop, raw_enum_string=True)
    if default is not None:
        out.append(f" // {default}")
    out.append("\n")
    return "".join(out)


def _one_of_property(
    key: str,
    marker: str,
    prop: Mapping[str, Any],
    variants: list[Any],
    description: str | None,
    indent: str,
) -> str:
    """A oneOf property: its comments above the name, then one `| variant` line each.

    The property's description goes above unless the first variant carries the same text; no
    variant repeats the property's description.
    """
    first_description = _string(variants[0], "description") if variants else None
    above = description is not None and description != first_description
    out = [f"{indent}// {description}\n"] if above else []
    default = _default_comment(prop, raw_enum_string=True)
    if default is not None:
        out.append(f"{indent}// {default}\n")
    out.append(f"{indent}{key}{marker}:\n")
    for position, variant in enumerate(variants):
        variant_description = _string(variant, "description")
        if (position == 0 and above) or variant_description == description:
            variant_description = None
        line = _variant(variant, indent, variant_description, raw_enum_string=True)
        out.append(f"{indent} | {line}\n")
    out.append(f"{indent},\n")
    return "".join(out)


def json_text(value: Any) -> str:
    """A JSON value as serde_json prints it: compact, non-ASCII as is, floats the shortest way."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        # serde_json keeps integers that fit 64 bits; larger ones become f64.
        return str(value) if -(2**63) <= value < 2**64 else _float_text(float(value))
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json_text(str(k))}:{json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Iterable):
        return "[" + ",".join(json_text(item) for item in value) + "]"
    raise TypeError(f"{value!r} is not a JSON value")


def _float_text(value: float) -> str:
    """Ryu's formatting, which serde_json uses: plain decimals for 1e-5 <= |x| < 1e16."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be written as JSON")
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    digits = all_digits.lstrip("0")
    # The value is 0.<digits> × 10^point.
    point = len(whole) + int(exponent or 0) - (len(all_digits) - len(digits))
    digits = digits.rstrip("0")
    sign = "-" if value < 0 else ""
    if len(digits) <= point <= 16:
        return f"{sign}{digits}{'0' * (point - len(digits))}.0"
    if 0 < point <= 16:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if -5 < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    fraction_part = f".{digits[1:]}" if len(digits) > 1 else ""
    return f"{sign}{digits[0]}{fraction_part}e{point - 1}"
