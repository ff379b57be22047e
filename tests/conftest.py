"""Shared test setup: ``gpu`` tests skip themselves when no CUDA device is present, and under CI
(the ``CI`` environment variable set) a session fails at once if a package of the ``[test]``
extra cannot be imported - many fast tests ``importorskip`` them, so a broken install would
otherwise turn them into silent skips."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

#: distribution name (canonical: lower case, ``-`` for ``_`` and ``.``) → import name, where
#: they differ; any other distribution is imported under its canonical name with ``_`` for ``-``
IMPORT_NAMES = {
    "pytest-xdist": "xdist",
    "stable-baselines3": "stable_baselines3",
    "sb3-contrib": "sb3_contrib",
}


def imports_of_the_test_extra(pyproject: Path = PYPROJECT) -> dict[str, str]:
    """Distribution → import name for every requirement of pyproject's ``[test]`` extra that
    applies to this Python (environment markers evaluated)."""
    with pyproject.open("rb") as f:
        requirements = tomllib.load(f)["project"]["optional-dependencies"]["test"]
    out = {}
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        out[name] = IMPORT_NAMES.get(name, name.replace("-", "_"))
    return out


def unimportable(modules: dict[str, str]) -> list[str]:
    """``"distribution (import name): error"`` for each module that fails to import."""
    failures = []
    for distribution, module in modules.items():
        try:
            importlib.import_module(module)
        except Exception as err:  # a broken install may raise more than ImportError
            failures.append(f"{distribution} (import {module}): {type(err).__name__}: {err}")
    return failures


def pytest_configure(config: pytest.Config) -> None:
    # once per run: in the controller, not again in each pytest-xdist worker
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    if not ci or hasattr(config, "workerinput"):
        return
    failures = unimportable(imports_of_the_test_extra())
    if failures:
        raise pytest.UsageError(
            "CI is set, but packages of the [test] extra cannot be imported (their tests would "
            "be skipped silently); reinstall with pip install -e '.[test]':\n  "
            + "\n  ".join(failures)
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# One torch thread per test process: pytest-xdist already runs one process per core, and
# oversubscribed BLAS threads make the shared 2-core machines many times slower.
torch.set_num_threads(1)
