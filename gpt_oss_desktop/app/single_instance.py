"""One app per data folder, as on a Mac: a second launch hands its arguments to the running app,
which comes to the front, and then quits.

A QLockFile in the data folder says who owns it; Qt removes a lock whose process has died (the
app was killed or crashed), so a stale lock never keeps the app from starting. The owner listens
on a QLocalSocket named after the folder; a later launch sends it one JSON line and waits for
"ok". Two apps on one database would otherwise write into the same chat, and each would build
prompts from the other's half-written turns.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

LOCK_NAME = "gpt-oss-desktop.lock"
HANDOVER_TIMEOUT_MS = 3000


def server_name(data_dir: Path) -> str:
    """A short, per-folder name (Unix socket paths are limited to about 100 bytes)."""
    digest = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return f"gpt-oss-desktop-{digest}"


class SingleInstance(QObject):
    """`acquire()` first; the owner gets `arguments_received` for each later launch."""

    arguments_received = Signal(object)  # dict: what the later launch was asked to do

    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.name = server_name(data_dir)
        self._lock = QLockFile(str(data_dir / LOCK_NAME))
        self._lock.setStaleLockTime(0)  # stale only when its process is gone, however old
        self._server: QLocalServer | None = None
        self._sockets: set[QLocalSocket] = set()  # later launches still connected

    def acquire(self) -> bool:
        """Own the data folder (taking over a dead owner's lock) and listen for later launches;
        False when a running app owns it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self._lock.tryLock(100):
            return False
        QLocalServer.removeServer(self.name)  # a socket file left by a crash
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not self._server.listen(self.name):
            raise OSError(f"Cannot listen for later launches on {self.name}: {self._server.errorString()}")
        self._server.newConnection.connect(self._accept)
        return True

    def owner(self) -> str:
        """Who holds the lock, for messages: 'process 123 on host'."""
        info = self._lock.getLockInfo()  # PySide6: (pid, host, app), or a false value if unreadable
        return f"process {info[0]} on {info[1]}" if info else "another app"

    def hand_over(self, arguments: dict, timeout_ms: int = HANDOVER_TIMEOUT_MS) -> bool:
        """Give `arguments` to the running app; True once it has confirmed."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(timeout_ms):
            return False
        socket.write(json.dumps(arguments).encode() + b"\n")
        if not socket.waitForBytesWritten(timeout_ms):
            return False
        confirmed = socket.waitForReadyRead(timeout_ms) and bytes(socket.readAll().data()).strip() == b"ok"
        socket.disconnectFromServer()
        return confirmed

    def release(self) -> None:
        for socket in list(self._sockets):
            self._forget(socket)
        if self._server is not None:
            self._server.newConnection.disconnect(self._accept)
            self._server.close()
            self._server.deleteLater()
            self._server = None
        self._lock.unlock()

    def _accept(self) -> None:
        while self._server is not None and (socket := self._server.nextPendingConnection()) is not None:
            socket.setParent(None)  # owned here, so no signal reaches a socket being destroyed
            self._sockets.add(socket)
            socket.readyRead.connect(lambda socket=socket: self._read(socket))
            socket.disconnected.connect(lambda socket=socket: self._forget(socket))
            self._read(socket)

    def _forget(self, socket: QLocalSocket) -> None:
        if socket in self._sockets:
            self._sockets.discard(socket)
            socket.readyRead.disconnect()
            socket.disconnected.disconnect()
            socket.abort()
            socket.deleteLater()

    def _read(self, socket: QLocalSocket) -> None:
        if not socket.canReadLine():
            return
        line = bytes(socket.readLine().data())
        try:
            arguments = json.loads(line)
        except ValueError:
            socket.write(b"error: not a JSON line\n")
            return
        socket.write(b"ok\n")
        socket.flush()
        if isinstance(arguments, dict):
            self.arguments_received.emit(arguments)
