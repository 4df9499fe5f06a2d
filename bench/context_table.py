"""The README's long-context memory table, by arithmetic (no model runs): for gpt-oss-20b and
120b on 16-128 GB Macs, what the automatic mode picks at 32k and 128k tokens of context, its
estimate (weights + KV at that length + 0.5 GiB), and the longest context the weights as
picked leave room for. `python bench/context_table.py` prints the Markdown block; a test checks
that README.md shows exactly it."""

from __future__ import annotations

from gpt_oss_desktop.mlx_model import GIB, PUBLISHED, plan_load, usable_memory_bytes

MACS_GB = (16, 24, 32, 64, 128)
CONTEXTS = (32768, 131072)


def _cell(repo: str, context: int, ram: int) -> str:
    plan = plan_load(PUBLISHED[repo], context, name=repo, total_ram=ram)
    picked = plan.summary or "as published"
    verdict = "" if plan.fits else (" — over the GPU budget" if plan.runs else " — does not fit")
    return f"{picked}: {plan.needed_bytes / GIB:.1f} GiB{verdict}"


def render() -> str:
    lines = ["| Mac (GPU budget) | model | at 32k tokens | at 128k tokens | longest automatic context |",
             "|---|---|---|---|---|"]
    for gb in MACS_GB:
        ram = gb * GIB
        for repo in sorted(PUBLISHED):
            plan = plan_load(PUBLISHED[repo], None, name=repo, total_ram=ram)
            longest = plan.engine_context_length if plan.fits else 0
            cells = " | ".join(_cell(repo, context, ram) for context in CONTEXTS)
            budget = usable_memory_bytes(ram) / GIB
            lines.append(f"| {gb} GB ({budget:.1f} GiB) | {repo.split('/')[1]} | {cells} | "
                         f"{f'{longest:,}' if longest else 'none'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
