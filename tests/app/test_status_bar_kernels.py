"""The status bar says when the kernel self-check replaced GPU kernels by MLX's own ops."""

from __future__ import annotations

from gpt_oss_desktop.app.status_bar import StatusBar


def test_a_kernel_warning_is_shown_beside_the_model(qapp) -> None:
    bar = StatusBar()
    warning = "kernel self-check failed for moe_decode: running MLX's own ops for them instead"
    bar.show_model("gpt-oss-20b", "", warning)
    assert "gpt-oss-20b" in bar.model.text() and "GPU kernels replaced" in bar.model.text()
    assert bar.model.toolTip() == warning
    bar.show_model("gpt-oss-20b")
    assert "replaced" not in bar.model.text() and bar.model.toolTip() == ""
