"""An MLX port of OpenAI's gpt-oss: the model, its loader, tokenizer, harmony format and engine."""

from .config import ModelConfig, ModelFolderError
from .loader import load
from .model import Model

__all__ = ["Model", "ModelConfig", "ModelFolderError", "load"]
