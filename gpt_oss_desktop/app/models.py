"""The models the app offers, and whether this Mac can run each before it is downloaded.

A published model is checked before its download as a folder is before its load: with
`mlx_model.plan_load`, from the model's published config (`mlx_model.PUBLISHED`: its tensor
sizes are known exactly), under the context and memory options of Settings, so what the dialog
offers loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpt_oss_desktop.mlx_model import PUBLISHED, LoadOptions, LoadPlan, ModelConfig, plan_load


@dataclass(frozen=True)
class ModelChoice:
    repo_id: str
    """A key of mlx_model.PUBLISHED, whose config sizes the model before download."""
    name: str
    description: str
    download_bytes: int

    @property
    def config(self) -> ModelConfig:
        return PUBLISHED[self.repo_id]


CATALOGUE: tuple[ModelChoice, ...] = (
    ModelChoice(
        repo_id="openai/gpt-oss-20b",
        name="gpt-oss-20b",
        description="21B parameters, 3.6B active. Fast; for Macs with 16 GB or more.",
        download_bytes=13_790_000_000,
    ),
    ModelChoice(
        repo_id="openai/gpt-oss-120b",
        name="gpt-oss-120b",
        description=(
            "117B parameters, 5.1B active. Stronger; runs on Macs with 64 GB with part of its experts "
            "read from disk as needed (slower replies), fully in memory from 96 GB."
        ),
        download_bytes=65_280_000_000,
    ),
)


def offer(
    choice: ModelChoice, total_ram: int, context_length: int | None = None, manual: LoadOptions | None = None
) -> LoadPlan:
    """Whether the model dialog offers `choice` on a Mac with `total_ram` (it does when the plan
    at least runs), and the sentence that explains it."""
    return plan_load(choice.config, context_length, manual, name=choice.name, total_ram=total_ram)
