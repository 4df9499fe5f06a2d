"""Running the application under uvicorn: on a thread for the app and the tests, in the
foreground for `gpt-oss-serve`; and the rule that a server reachable from other machines needs a
key."""

from __future__ import annotations

import ipaddress
import socket
import threading

import uvicorn
from starlette.applications import Starlette

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, api_key: str | None) -> None:
    """Refuse to listen beyond this machine without an API key."""
    if not is_loopback(host) and not api_key:
        raise ValueError(f"listening on {host} makes the model reachable from other machines: "
                         "pass --api-key KEY too, or bind to 127.0.0.1")


class RunningServer:
    """uvicorn serving `app` on a thread; `port` is the bound one (0 asks the system for any)."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 8000) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host = host
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="http-server", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self) -> "RunningServer":
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            self._thread.join(0.02)
        if not self._server.started:
            raise OSError(f"the server on {self.host}:{self.port} did not start")
        return self

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; whether the server is still running."""
        self._thread.join(timeout)
        return self._thread.is_alive()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
