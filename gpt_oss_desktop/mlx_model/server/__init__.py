"""An OpenAI-compatible local server: the Responses API and Chat Completions over one engine.

Qt-free, so `gpt-oss-serve` and the app's Settings › Local server run the same code.
"""

from .app import ServerSettings, create_app
from .handle import ServerHandle, start_server
from .runner import EngineRunner, EngineThread, QueueFull
from .serving import RunningServer, check_exposure, is_loopback
from .store import ResponseStore

__all__ = ["EngineRunner", "EngineThread", "QueueFull", "ResponseStore", "RunningServer", "ServerHandle", "ServerSettings",
           "check_exposure", "create_app", "is_loopback", "start_server"]
