"""A server started on an engine someone else drives (the app's engine worker): what the app's
Settings › Local server turns on and off, Qt-free so it is tested like the rest of the server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .app import ServerSettings, create_app
from .runner import EngineRunner, Job
from .serving import RunningServer, check_exposure
from .store import ResponseStore


class ServerHandle:
    """The running server, its store and its queue of requests."""

    def __init__(self, runner: EngineRunner, store: ResponseStore, server: RunningServer,
                 settings: ServerSettings) -> None:
        self.runner = runner
        self.store = store
        self.server = server
        self.settings = settings

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def in_flight(self) -> int:
        return self.runner.in_flight

    def stop(self) -> None:
        """Close the port (streams still open end, which cancels their generations), then the store."""
        self.server.stop()
        self.store.close()


def start_server(put: Callable[[Job], None], engine: Callable[[], Any], *, store_path: Path,
                 settings: ServerSettings, host: str = "127.0.0.1", port: int = 8000,
                 max_waiting: int = 32) -> ServerHandle:
    """Serve the engine `engine()` returns, queueing each request's work with `put` (jobs run on
    the engine's own thread, in turn with whatever else it does). Raises ValueError for a
    non-loopback `host` without an API key, OSError when the port cannot be had."""
    check_exposure(host, settings.api_key)
    runner = EngineRunner(put, engine, max_waiting)
    store = ResponseStore(store_path)
    try:
        server = RunningServer(create_app(runner, store, settings), host, port).start()
    except OSError as error:
        store.close()
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
    return ServerHandle(runner, store, server, settings)
