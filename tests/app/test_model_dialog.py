"""The model dialog: what the first run offers for the Mac's memory, sizes and free disk, a
model folder from disk, and the download thread's flow (the transfer itself is tested end to
end against a loopback Hub in tests/test_hub.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog, QLabel

from gpt_oss_desktop import mlx_model
from gpt_oss_desktop.app.model_dialog import ModelDialog
from gpt_oss_desktop.mlx_model import hub
from gpt_oss_desktop.mlx_model.loader import LoadOptions

REPO = "openai/gpt-oss-20b"
GIB = 1024**3


def write_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    (folder / "tokenizer.json").write_text("{}")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "model-00000-of-00000.safetensors"}}))
    (folder / "model-00000-of-00000.safetensors").write_bytes(b"\0" * 16)
    return folder


def mark_downloaded(models_dir: Path, repo_id: str) -> Path:
    folder = write_model(hub.downloaded_model_dir(models_dir, repo_id))
    verified = {p.name: f"git:{p.name}" for p in folder.iterdir()}
    (folder / hub.MANIFEST_NAME).write_text(json.dumps({"repo_id": repo_id, "commit": "c" * 40, "complete": True,
                                                          "verified": verified}))
    return folder


@pytest.fixture
def open_dialog(qtbot, tmp_path):
    opened: list[ModelDialog] = []

    def make(total_ram: int, **options) -> ModelDialog:
        dialog = ModelDialog(tmp_path / "models", total_ram, **options)
        qtbot.addWidget(dialog)
        opened.append(dialog)
        qtbot.waitUntil(lambda: not dialog.checking)  # the fit checks answer from their thread
        return dialog

    yield make
    for dialog in opened:
        dialog.reject()  # as closing it does: stops the download thread


def cards(dialog: ModelDialog) -> dict[str, object]:
    return {card.choice.name: card for card in dialog.cards}


def facts(card) -> str:
    return card.findChildren(QLabel)[-1].text()


def test_a_16_gb_mac_is_offered_20b_exact_and_120b_as_very_slow(open_dialog):
    dialog = open_dialog(16 * GIB, first_run=True)
    offered = cards(dialog)
    assert offered["gpt-oss-20b"].radio.isEnabled() and offered["gpt-oss-20b"].radio.isChecked()
    assert facts(offered["gpt-oss-20b"]).startswith("Download 13.8 GB")
    assert "with 82% of its experts in memory" in facts(offered["gpt-oss-20b"])
    assert "makes replies very slow" in facts(offered["gpt-oss-120b"])
    assert "free on the disk that holds" in dialog.disk.text()
    assert dialog.primary.text() == "Download"


def test_a_64_gb_mac_is_offered_120b_with_part_of_its_experts_on_disk(open_dialog):
    dialog = open_dialog(64 * GIB, preselect="openai/gpt-oss-120b")
    card = cards(dialog)["gpt-oss-120b"]
    assert card.radio.isEnabled() and dialog.selected() is card
    text = facts(card)
    assert "will not fit" not in text and card.findChildren(QLabel)[-1].objectName() == "ModelFacts"
    assert text.startswith("Download 65.3 GB · gpt-oss-120b fits this Mac's 51.5 GB GPU budget with 78% of its experts")
    assert dialog.primary.text() == "Download" and dialog.primary.isEnabled()


def test_the_offer_follows_the_manual_memory_options_and_context_of_settings(open_dialog):
    published = cards(open_dialog(16 * GIB, manual=LoadOptions()))["gpt-oss-120b"]
    assert not published.radio.isEnabled() and "gpt-oss-120b will not fit" in facts(published)
    long = cards(open_dialog(64 * GIB, context_length=131072))["gpt-oss-120b"]
    assert "with 70% of its experts in memory" in facts(long)


def test_a_128_gb_mac_is_offered_both(open_dialog):
    dialog = open_dialog(128 * GIB, preselect="openai/gpt-oss-120b")
    assert all(card.radio.isEnabled() for card in dialog.cards)
    assert dialog.selected().choice.repo_id == "openai/gpt-oss-120b"


def test_a_downloaded_model_is_used_without_downloading_again(open_dialog, tmp_path):
    mark_downloaded(tmp_path / "models", REPO)
    dialog = open_dialog(32 * GIB)
    assert dialog.primary.text() == "Use This Model"
    dialog.primary.click()
    assert dialog.result() == ModelDialog.DialogCode.Accepted and dialog.chosen == REPO


def test_open_folder_takes_a_model_folder_and_names_what_a_bad_one_lacks(open_dialog, tmp_path, monkeypatch):
    dialog = open_dialog(32 * GIB)
    bad = tmp_path / "not-a-model"
    bad.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(bad))
    dialog.open_folder.click()
    assert "config.json is missing" in dialog.status.text() and dialog.chosen is None

    good = write_model(tmp_path / "tiny-model")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(good))
    dialog.open_folder.click()
    assert dialog.chosen == str(good)


def plan_for(models_dir: Path, *, present: bool, free: int) -> hub.DownloadPlan:
    files = tuple(hub.RemoteFile(name, 16 if name.endswith(".safetensors") else 2, git_blob_id=name)
                  for name in ("config.json", "tokenizer.json", "model.safetensors.index.json",
                               "model-00000-of-00000.safetensors"))
    total = sum(f.size for f in files)
    return hub.DownloadPlan(REPO, "c" * 40, files, hub.downloaded_model_dir(models_dir, REPO),
                            total if present else 0, free)


def test_a_download_that_does_not_fit_is_refused_with_the_sizes(open_dialog, tmp_path, qtbot, monkeypatch):
    monkeypatch.setattr(mlx_model, "plan_download", lambda repo_id, models_dir, **kw: plan_for(models_dir, present=False, free=0))
    dialog = open_dialog(32 * GIB)
    dialog.primary.click()
    qtbot.waitUntil(lambda: "Free some space" in dialog.status.text(), timeout=5000)
    assert dialog.primary.text() == "Download" and dialog.chosen is None


def test_a_finished_download_chooses_the_model(open_dialog, tmp_path, qtbot, monkeypatch):
    """The plan stands in for the Hub's answer; hub.download then finds every file already
    verified on disk, so the real download path finishes without a network."""
    models_dir = tmp_path / "models"
    mark_downloaded(models_dir, REPO)
    manifest = hub.downloaded_model_dir(models_dir, REPO) / hub.MANIFEST_NAME
    manifest.write_text(manifest.read_text().replace('"complete": true', '"complete": false'))
    monkeypatch.setattr(mlx_model, "plan_download",
                        lambda repo_id, models_dir, **kw: plan_for(models_dir, present=True, free=10 * GIB))
    dialog = open_dialog(32 * GIB)
    assert dialog.primary.text() == "Download"
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        dialog.primary.click()
    assert dialog.chosen == REPO
    assert hub.resolve_model(REPO, models_dir=models_dir) == hub.downloaded_model_dir(models_dir, REPO).resolve()


@pytest.mark.parametrize("total_ram", [16 * GIB, 64 * GIB])
def test_the_cards_text_wraps_without_overlapping_or_clipping(open_dialog, styled, tmp_path, total_ram):
    """Rendered as shown (the PNG is kept for a look): every line of each card gets the height
    its wrapped text needs, one below the other, inside its card."""
    dialog = open_dialog(total_ram, first_run=True)
    dialog.show()
    dialog.grab().toImage().save(str(tmp_path / f"model-dialog-{total_ram // GIB}gb.png"))
    for card in dialog.cards:
        labels = [label for label in card.findChildren(QLabel) if label.isVisible()]
        assert len(labels) == 2
        assert all(label.wordWrap() for label in labels)
        for label in labels:
            assert label.height() >= label.heightForWidth(label.width()), f"{label.text()!r} is clipped"
            assert card.rect().contains(label.geometry())
        tops = [card.radio.geometry(), *(label.geometry() for label in labels)]
        assert all(upper.bottom() < lower.top() for upper, lower in zip(tops, tops[1:], strict=False))
