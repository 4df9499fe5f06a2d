"""Long work off the GUI thread: a QObject moved to its own QThread, driven by queued signals."""

from __future__ import annotations

from PySide6.QtCore import QObject, QThread


def start_in_thread(worker: QObject, name: str) -> QThread:
    """Move `worker` to a new running thread; its slots then run there when called by signal."""
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.start()
    return thread


def stop_thread(thread: QThread, timeout_ms: int) -> bool:
    """Ask the thread's event loop to end; False when it is still busy after `timeout_ms`."""
    thread.quit()
    return thread.wait(timeout_ms)
