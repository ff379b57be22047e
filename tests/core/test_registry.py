"""``rlsuite.registry``: an entry's pip extra (``EnvEntry.extra``, ``AgentEntry.extra``), the
error that names it when its package is missing, and how ``rlsuite list`` shows it."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import pickle

import gymnasium as gym
import pytest

from rlsuite.cli import main
from rlsuite.registry import (
    AGENTS,
    ENVS,
    EXTRA_MODULES,
    EntryPointNeedingExtra,
    EnvEntry,
    extra_installed,
    register_envs,
)

FAKE_ID = "rlsuite/NeedsExtra-v0"


class EnvBuiltWithAMissingPackage:
    """Imports an optional package only when constructed (as qcode's exact distance would)."""

    def __init__(self, **kwargs: object) -> None:
        import qldpc_not_installed_anywhere  # noqa: F401


@pytest.fixture
def fake_entries(monkeypatch):
    """Two ids that need the ``qcode`` extra: one whose module is missing, one whose
    constructor imports a missing package."""
    entries = {
        FAKE_ID: EnvEntry(
            FAKE_ID, "qldpc_envs_missing:Env", "qldpc_envs_missing:VectorEnv", "fake", extra="qcode"
        ),
        "rlsuite/NeedsExtraAtInit-v0": EnvEntry(
            "rlsuite/NeedsExtraAtInit-v0",
            f"{__name__}:EnvBuiltWithAMissingPackage",
            f"{__name__}:EnvBuiltWithAMissingPackage",
            "fake, needs its package when constructed",
            extra="qcode",
        ),
    }
    for entry in entries.values():
        monkeypatch.setitem(ENVS, entry.id, entry)
    register_envs()
    yield entries
    for env_id in entries:
        gym.registry.pop(env_id, None)


def test_making_an_env_without_its_extra_names_the_extra(fake_entries) -> None:
    message = r"environment 'rlsuite/NeedsExtra-v0' needs the optional dependency 'qldpc_envs_missing': pip install 'rlsuite\[qcode\]'"
    with pytest.raises(ImportError, match=message):
        gym.make(FAKE_ID)
    with pytest.raises(ImportError, match=message):
        gym.make_vec(FAKE_ID, num_envs=2, vectorization_mode="vector_entry_point")
    at_init = r"'qldpc_not_installed_anywhere': pip install 'rlsuite\[qcode\]'"
    with pytest.raises(ImportError, match=at_init):
        gym.make("rlsuite/NeedsExtraAtInit-v0")
    spec = gym.spec(FAKE_ID)
    assert spec.entry_point == EntryPointNeedingExtra(
        "qldpc_envs_missing:Env", "qcode", f"environment {FAKE_ID!r}"
    )
    assert pickle.loads(pickle.dumps(spec.entry_point)) == spec.entry_point  # for Ray workers


def test_envs_without_an_extra_keep_their_string_entry_points() -> None:
    assert all(entry.extra is None for entry in ENVS.values())  # none needs one today
    spec = gym.spec("rlsuite/SOR-ShiftedLaplacian-v0")
    assert spec.entry_point == ENVS["rlsuite/SOR-ShiftedLaplacian-v0"].entry_point


def test_every_extra_named_in_the_tables_is_known() -> None:
    named = {e.extra for e in [*ENVS.values(), *AGENTS.values()] if e.extra}
    assert named <= set(EXTRA_MODULES) and named >= {"sb3", "ray"}
    with pytest.raises(ValueError, match="unknown pip extra 'nope'; known: bench, mip, qcode"):
        extra_installed("nope")


def _find_spec_without(missing: set[str]):
    """``find_spec`` as if exactly the modules ``missing`` were not installed."""

    def find_spec(name: str, *args: object):
        return None if name in missing else importlib.machinery.ModuleSpec(name, None)

    return find_spec


def test_list_says_needs_only_for_extras_that_are_not_installed(
    fake_entries, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", _find_spec_without({"ray", "qldpc"}))
    assert extra_installed("sb3") and not extra_installed("ray")
    assert main(["list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "needs" not in lines["sb3.PPO"]
    assert lines["rllib.PPO"].endswith("[needs rlsuite[ray]]")
    assert lines[FAKE_ID].split()[1] == "qcode"  # the extra column
    assert lines[FAKE_ID].endswith("[needs rlsuite[qcode]]")
    assert lines["rlsuite/SOR-ShiftedLaplacian-v0"].split()[1] == "-"
    assert "needs" not in lines["rlsuite/SOR-ShiftedLaplacian-v0"]

    monkeypatch.setattr(importlib.util, "find_spec", _find_spec_without({"sb3_contrib"}))
    assert main(["list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["sb3.PPO"].endswith("[needs rlsuite[sb3]]")
    assert "needs" not in lines["rllib.PPO"] and "needs" not in lines[FAKE_ID]
