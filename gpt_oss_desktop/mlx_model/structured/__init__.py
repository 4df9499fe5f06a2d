"""Structured Outputs: replies held to a JSON Schema, JSON mode, a Lark grammar or a regex, and
strict tool-call arguments, with the chain of thought left free (see decoder.py)."""

from .decoder import StructuredDecoder, StructuredProcessor
from .formats import ResponseFormat, StructuredOutputError, response_formats_section
from .plan import StructuredPlan, ToolChoice
from .prompt import with_response_format
from .schema import check_schema

__all__ = [
    "ResponseFormat",
    "StructuredDecoder",
    "StructuredOutputError",
    "StructuredPlan",
    "StructuredProcessor",
    "ToolChoice",
    "check_schema",
    "response_formats_section",
    "with_response_format",
]
