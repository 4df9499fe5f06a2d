"""How the app's last run ended, so the next start can name the true cause of a reply it left
unfinished (stopped ones are stored as stopped and need nothing from here).

`running.json` in the data folder exists while the app runs and is removed when it quits
cleanly, unless a reply could not be written (it then keeps why); `crash.log` receives
`faulthandler`'s report of a fatal signal (a SIGBUS from a model file truncated under its memory
map, a segfault), which Python cannot catch. So at the next start: a crash report means the app
crashed, a record without one means it was killed (or the Mac lost power), a record that kept a
write error means the reply could not be saved.
"""

from __future__ import annotations

import faulthandler
import json
import os
import time
from pathlib import Path
from typing import IO

RECORD_NAME = "running.json"
CRASH_LOG_NAME = "crash.log"

_MODEL_FILES_HINT = (
    " This happens when a loaded model's files are changed or removed on disk while the app reads them "
    "(a copy, download or sync tool writing into the model's folder): leave a model's folder alone while it is loaded."
)


class RunRecord:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / RECORD_NAME
        self.crash_path = data_dir / CRASH_LOG_NAME
        self._crash_file: IO[str] | None = None
        self.crash: str | None = None  # what the last run's crash report says (its first line), if it crashed

    def begin(self) -> str | None:
        """Record this run and arm the crash report; returns why the previous run ended without
        quitting cleanly (for its unfinished replies and a banner), or None."""
        cause = self.previous_end()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write({"pid": os.getpid(), "started": time.time()})
        self._crash_file = open(self.crash_path, "w", encoding="utf-8")  # noqa: SIM115 - open for the whole run
        faulthandler.enable(self._crash_file)
        return cause

    def previous_end(self) -> str | None:
        try:
            crash = self.crash_path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            crash = ""
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = None
        if crash:
            self.crash = crash.splitlines()[0].removeprefix("Fatal Python error: ")
            return f"The app crashed ({self.crash}) before this reply finished.{self._hint()}"
        if isinstance(record, dict) and record.get("unsaved"):
            return f"This reply could not be saved before the app quit: {record['unsaved']}"
        if record is not None:
            return "The app was killed, or the computer shut down, before this reply finished."
        return None

    def crash_notice(self) -> str | None:
        """What to tell the user at this start when the last run crashed (read by `begin`)."""
        return f"gpt-oss quit unexpectedly the last time it ran ({self.crash}).{self._hint()}" if self.crash else None

    def _hint(self) -> str:
        return _MODEL_FILES_HINT if self.crash and "Bus error" in self.crash else ""

    def note_unsaved(self, reason: str | None) -> None:
        """A reply could not be written (or is written now): kept for the next start. Best effort:
        on a full disk this small rewrite may fail too, and then the killed-or-crashed reading stands."""
        self._write({"pid": os.getpid(), "started": time.time(), "unsaved": reason})

    def end(self, unsaved: str | None) -> None:
        """A clean quit: the record goes, unless a reply is still not written."""
        if self._crash_file is not None:
            faulthandler.disable()
            self._crash_file.close()
            self._crash_file = None
            self.crash_path.unlink(missing_ok=True)
        if unsaved:
            self.note_unsaved(unsaved)
        else:
            self.path.unlink(missing_ok=True)

    def _write(self, record: dict) -> None:
        try:
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(record), encoding="utf-8")
            temporary.replace(self.path)
        except OSError:
            pass
