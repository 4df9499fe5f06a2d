"""An MLX port of OpenAI's gpt-oss: the model, its loader, tokenizer, harmony format and engine.

What this package exports here is its whole public API: the desktop app, the terminal chat,
bench/ and scripts use nothing else (tests/test_import_direction.py holds the app to it). The
README's "From Python" shows it in use.
"""

from .cache_file import CacheStore
from .chat import REASONING_LEVELS, Chat
from .config import PUBLISHED, ModelConfig, ModelFolderError
from .engine import Engine, EngineError, ModelInfo, OverflowPolicy
from .events import (
    Done,
    DoneReason,
    Event,
    ExpertPaging,
    MessageDone,
    MessageStart,
    ParseWarning,
    Stats,
    TextDelta,
    ToolCall,
    ToolResult,
)
from .forward import ForwardPass, StepRequest, answer_steps
from .harmony import (
    INCOMPLETE,
    ReasoningLevel,
    assistant_message,
    developer_message,
    is_incomplete,
    system_message,
    text_of,
    tool_result_message,
    user_message,
)
from .hub import (
    DownloadCancelled,
    DownloadPlan,
    HubError,
    NotDownloadedError,
    check_model_folder,
    download,
    free_disk_bytes,
    is_hub_id,
    plan_download,
    resolve_model,
)
from .kernels import KernelCheck, KernelVerdict, check_kernels, moe_cost
from .load_plan import LoadPlan, memory_summary, plan_load
from .loader import LoadOptions, load
from .memory import MemoryEstimate, total_memory_bytes, usable_memory_bytes
from .model import Model
from .paths import APPLICATION_NAME, DATA_DIR_ENV, data_dir, models_dir, server_cache_dir
from .prompt import render_prompt
from .prompt_cache import PromptCache
from .sampling import SamplingSettings
from .structured import ResponseFormat, StructuredDecoder, StructuredOutputError, StructuredPlan, check_schema
from .tokenizer import Tokenizer, TokenizerFileError, load_tokenizer
from .units import GIB, format_bytes

__all__ = [
    # the engine
    "Engine", "EngineError", "ModelInfo", "OverflowPolicy",
    # the custom kernels' self-check (ModelInfo.kernel_check; gpt-oss-chat --check-kernels)
    "KernelCheck", "KernelVerdict", "check_kernels",
    # the MoE kernels' cost model (bench/metal_projection.py projects Apple-GPU time from it)
    "moe_cost",
    # what a reply is asked with
    "Chat", "REASONING_LEVELS", "ReasoningLevel", "SamplingSettings",
    # structured outputs: Engine.reply(response_format=...), strict tools, their errors
    "ResponseFormat", "StructuredOutputError", "check_schema",
    # what Engine.structured_plan returns, and what holds a reply to it (bench/structured.py times its masks)
    "StructuredPlan", "StructuredDecoder",
    "assistant_message", "developer_message", "system_message", "text_of", "tool_result_message", "user_message",
    # a message cut short (stopped, a limit, a kill): marked, and given back to the model as such
    "INCOMPLETE", "is_incomplete",
    # what a reply streams
    "Event", "MessageStart", "TextDelta", "MessageDone", "ToolCall", "ParseWarning", "Stats", "Done", "DoneReason",
    "ExpertPaging",
    # the prompt the engine renders for a chat, without loading a model (a peer in bench/ reads the same tokens)
    "render_prompt",
    # below the engine: one forward pass over a KV cache (bench/memory.py fills the cache to a context length),
    # and decode steps of several caches in one (Engine.reply(batched=True) yields them; bench/batch.py)
    "ForwardPass", "PromptCache", "StepRequest", "answer_steps",
    # prompt caches on disk within a budget (Engine.save_prompt_cache / restore_prompt_cache): a chat
    # reopened after a restart prefills only what is new
    "CacheStore",
    # loading, and planning a load to fit memory
    "LoadOptions", "LoadPlan", "plan_load", "memory_summary", "MemoryEstimate",
    "total_memory_bytes", "usable_memory_bytes", "GIB", "format_bytes",
    "load", "Model", "ModelConfig", "ModelFolderError", "PUBLISHED", "Tokenizer", "TokenizerFileError", "load_tokenizer",
    # models on disk and on the Hub
    "resolve_model", "is_hub_id", "check_model_folder", "plan_download", "download", "free_disk_bytes",
    "DownloadPlan", "HubError", "NotDownloadedError", "DownloadCancelled",
    # where the app keeps its data
    "APPLICATION_NAME", "DATA_DIR_ENV", "data_dir", "models_dir", "server_cache_dir",
    # tools: the browser, python and MCP servers, and the loop that runs them during a reply
    "ToolResult", "Toolbox", "FunctionTool", "ToolOutcome", "Citation", "Limits", "SandboxUnavailable",
    "McpConfigError", "ServerStatus", "ApprovalRequest", "declare_tools", "reply_with_tools", "MAX_TOOL_ROUNDS",
    "SearxngSearch", "sandbox_problem", "load_mcp_config",
    # the local OpenAI-compatible server, on an engine the caller's thread drives
    "start_server", "ServerHandle", "ServerSettings", "check_exposure", "is_loopback",
    # development: random checkpoints in the Hub layout, for tests and benchmarks (nothing run time imports it)
    "write_random_checkpoint", "tiny_config", "SHAPES",
]

_LAZY_NAMES = {
    "Toolbox": "tools", "FunctionTool": "tools", "ToolOutcome": "tools", "Citation": "tools", "Limits": "tools",
    "SandboxUnavailable": "tools", "McpConfigError": "tools", "ServerStatus": "tools",
    "ApprovalRequest": "tool_loop", "declare_tools": "tool_loop", "reply_with_tools": "tool_loop",
    "MAX_TOOL_ROUNDS": "tool_loop", "SearxngSearch": "tools.browser.web",
    "sandbox_problem": "tools", "load_mcp_config": "tools",
    "start_server": "server", "ServerHandle": "server", "ServerSettings": "server", "check_exposure": "server",
    "is_loopback": "server",
    "write_random_checkpoint": "checkpoint_writer", "tiny_config": "checkpoint_writer", "SHAPES": "checkpoint_writer",
}


def __getattr__(name: str):
    """The tool, server and checkpoint-writer names, imported on first use: HTML, PDF and MCP
    libraries, Starlette and uvicorn need not load with the engine."""
    if name in _LAZY_NAMES:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
