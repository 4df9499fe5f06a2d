"""Where the app keeps its files: the data folder (computed by mlx_model.data_dir, which also gives
the models folder the app shares with `gpt-oss-chat`), and the assets beside the code.

`app/assets` is a link to the repository's top-level `assets/` in a checkout, and a real folder
of package data in an installed wheel: the same path either way."""

from __future__ import annotations

from pathlib import Path

from gpt_oss_desktop import mlx_model

ASSETS_DIR = Path(__file__).resolve().parent / "assets"


def data_dir() -> Path:
    """gpt_oss_desktop.mlx_model.data_dir(), created if missing."""
    folder = mlx_model.data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def database_path() -> Path:
    return data_dir() / "chats.sqlite3"


def asset(name: str) -> Path:
    return ASSETS_DIR / name
