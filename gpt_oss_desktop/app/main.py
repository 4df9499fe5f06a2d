"""Start the app: `python -m app` or `gpt-oss-desktop [--model PATH_OR_HUB_ID]`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from gpt_oss_desktop.mlx_model import models_dir

from . import paths, theme
from .local_server import LocalServer
from .model_session import ModelSession
from .run_record import RunRecord
from .session import ChatSession
from .settings import Key, Settings, configure_application
from .single_instance import SingleInstance
from .store import Store, StoreError
from .window import MainWindow
from .worker import EngineHost

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpt-oss-desktop", description="Chat with gpt-oss on this Mac, offline.")
    parser.add_argument(
        "--model", metavar="PATH_OR_HUB_ID",
        help="a model folder, or a Hub id such as openai/gpt-oss-20b (downloaded first if needed)",
    )
    parser.add_argument(
        "--quit-after-load", action="store_true",
        help="open the window, load the --model, then quit: exit status 0 once it is ready, 1 if it failed "
             "(checks an installation)",
    )
    args = parser.parse_args(argv)
    if args.quit_after_load and not args.model:
        parser.error("--quit-after-load needs --model")
    return args


def open_store() -> Store | None:
    """The chat database; a damaged one is moved aside (never deleted) if the user agrees."""
    path = paths.database_path()
    try:
        return Store(path)
    except StoreError as error:
        if not error.damaged:
            QMessageBox.critical(None, "Chats Unavailable", str(error))
            return None
        answer = QMessageBox.warning(
            None, "Chats Damaged",
            f"{error}\n\nMove the damaged file aside (it is kept, renamed) and start with no chats?",
            QMessageBox.StandardButton.Cancel | QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return None
        kept = Store.move_aside(path)
        log.warning("moved the damaged chat database to %s", kept)
        return Store(path)


def quit_when_loaded(app: QApplication, model: ModelSession) -> None:
    """--quit-after-load: exit 0 once the model is ready, 1 when it fails. Queued, because a
    folder that fails its checks fails before the event loop runs, where `exit` would be lost."""

    def finish(code: int, message: str) -> None:
        log.log(logging.INFO if code == 0 else logging.ERROR, "%s", message)
        QTimer.singleShot(0, lambda: app.exit(code))

    model.model_loaded.connect(lambda name: finish(0, f"loaded {name}; quitting"))
    model.model_failed.connect(lambda message: finish(1, message))


def launch_request(args: argparse.Namespace) -> dict:
    """What a later launch asks the running app to do; a model folder given relative to this
    launch's working folder is made absolute, since the running app's differs."""
    model = args.model
    if model and Path(model).exists():
        model = str(Path(model).resolve())
    return {"model": model}


def hand_over(instance: SingleInstance, args: argparse.Namespace) -> bool:
    """Give this launch to the app that owns the data folder; tell the user when it does not
    answer. True when handed over."""
    if instance.hand_over(launch_request(args)):
        log.info("gpt-oss is already running; handed this launch over to it")
        return True
    QMessageBox.critical(
        None, "Already Running",
        f"gpt-oss is already running with the chats in {instance.data_dir} ({instance.owner()}) and did not "
        "answer. Wait for it or quit it, then open gpt-oss again.",
    )
    return False


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication(sys.argv[:1])
    configure_application(app)
    instance = SingleInstance(paths.data_dir())
    if not instance.acquire():
        return 0 if hand_over(instance, args) else 1
    theme.watcher().apply()
    store = open_store()
    if store is None:
        instance.release()
        return 1
    record = RunRecord(paths.data_dir())
    cause = record.begin()
    interrupted = store.mark_interrupted_replies(cause)
    if interrupted:
        log.info("%d reply(ies) were interrupted when the app last stopped: %s", interrupted, cause)
    settings = Settings()
    engine = EngineHost()
    session = ChatSession(store, settings, engine, ModelSession(settings, engine, models_dir=models_dir()))
    local_server = LocalServer(engine, settings)
    local_server.apply()  # on only if Settings › Local server says so
    window = MainWindow(session, settings, models_dir(), local_server)
    window.show()
    if (notice := record.crash_notice()) is not None:
        log.warning("%s", notice)
        window.banner.show_message(notice)
    # A reply the store cannot take yet is noted, so a kill before it is written is named right.
    session.error.connect(lambda _message: record.note_unsaved(session.unsaved_reason))
    session.error_resolved.connect(lambda _message: record.note_unsaved(session.unsaved_reason))
    instance.arguments_received.connect(window.take_launch)
    last = settings.value(Key.LAST_CONVERSATION)
    session.open_conversation(last if any(c.id == last for c in session.conversations()) else None)
    if args.quit_after_load:
        quit_when_loaded(app, session.model)
    model = args.model or settings.value(Key.MODEL)
    if model:
        window.open_model(model)
    else:
        window.show_model_dialog(first_run=True)
    code = app.exec()
    local_server.stop()
    finished = engine.shutdown()
    session.save_unsaved()
    record.end(session.unsaved_reason)
    store.close()
    instance.release()
    if not finished:
        # The engine is inside a model load, which cannot be interrupted; every chat is already
        # committed, so leave without waiting for it (Qt would abort on a running QThread).
        os._exit(code)
    return code
