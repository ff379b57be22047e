"""README code blocks run verbatim, with their own imports, and give the values they claim."""

from __future__ import annotations

from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block_after(marker: str) -> str:
    """The first ```python block after the first line of the README that starts with ``marker``."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(marker))
    opening = next(i for i in range(start, len(lines)) if lines[i].strip() == "```python")
    closing = next(i for i in range(opening + 1, len(lines)) if lines[i].strip() == "```")
    return "\n".join(lines[opening + 1 : closing])


def run_block(marker: str) -> dict:
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(python_block_after(marker), f"README.md ({marker})", "exec"), namespace)
    return namespace


def test_sparse_sequence_example() -> None:
    ns = run_block("`rlsuite/SOR-SparseSequence-v0` solves")
    assert ns["reward"] == -ns["info"]["iterations"] < 0 and ns["info"]["converged"]
    assert ns["info"]["omega"] == pytest.approx(1.5)
    assert ns["env"].unwrapped.core.family.size == 8 and len(ns["env"].unwrapped.core.family) == 3
    assert len(ns["one"].unwrapped.core.family) == 1


def test_three_body_custom_system_example(capsys) -> None:
    ns = run_block("A three-body action `k` plays")
    assert float(ns["info"]["time"]) == pytest.approx(6.3259140, abs=1e-9)
    assert 0 < float(ns["info"]["energy_error"]) < 1e-8
    assert float(ns["info"]["eta"]) == pytest.approx(0.01)
    assert capsys.readouterr().out.startswith("6.3259")


def test_search_model_example(capsys) -> None:
    ns = run_block("Ids marked `model` in `rlsuite list`")
    children = ns["children"]
    assert len(children.rewards) == len(ns["legal"]) >= 2
    assert ns["envs"].unwrapped.episode_step.tolist() == [1, 0]
    assert capsys.readouterr().out.startswith("tensor([")
