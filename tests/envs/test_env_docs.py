"""``help(gymnasium.make(ID).unwrapped)`` documents every registered id: its spaces, reward,
episode end and every constructor argument of its batched core."""

from __future__ import annotations

import importlib
import inspect
import pydoc
import re

import gymnasium as gym
import pytest
import scipy.sparse as sp

import rlsuite  # noqa: F401 - registers the ids
from rlsuite.registry import ENVS

# Ids that cannot be made without arguments.
NEEDED_KWARGS = {"rlsuite/SOR-SparseSequence-v0": {"matrices": sp.identity(4, format="csr") * 2.0}}

# The docstrings' section headings (``**Action space.**`` ...), matched case-insensitively.
SECTIONS = {
    "action space": r"\*\*action space\b",
    "observation space": r"\*\*observation space\b",
    "reward": r"\*\*rewards?\b",
    "episode end": r"\*\*episode end\b",
    "arguments": r"\*\*arguments\b",
}
NOT_ARGUMENTS = {"self", "num_envs", "device", "family"}  # family: fixed by the SOR subclasses


def load(target: str) -> type:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def constructor_arguments(cls: type) -> list[str]:
    """Keyword arguments of ``cls``, following ``**kwargs`` into the base classes."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names += [
            p.name
            for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name not in NOT_ARGUMENTS
            and p.name not in names
        ]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names


@pytest.mark.parametrize("env_id", list(ENVS))
def test_help_documents_the_env(env_id: str) -> None:
    entry = ENVS[env_id]
    env = gym.make(env_id, **NEEDED_KWARGS.get(env_id, {}))
    try:
        single = env.unwrapped
        doc = inspect.getdoc(type(single)) or ""
        rendered = pydoc.render_doc(single, renderer=pydoc.plaintext)
    finally:
        env.close()
    assert doc.splitlines()[0] in rendered  # help() shows the class docstring
    missing_sections = [s for s, pattern in SECTIONS.items() if not re.search(pattern, doc, re.I)]
    assert not missing_sections, f"{env_id}: no {missing_sections} section in {type(single)}"
    vector_class = load(entry.vector_entry_point)
    arguments = constructor_arguments(vector_class)
    assert arguments, vector_class
    undocumented = [a for a in arguments if not re.search(rf"\b{a}\b", doc)]
    assert not undocumented, f"{env_id}: {type(single).__name__} does not name {undocumented}"


def test_single_env_doc_is_its_core_doc() -> None:
    for entry in ENVS.values():
        assert load(entry.entry_point).__doc__ == load(entry.vector_entry_point).__doc__
