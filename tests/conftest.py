"""Shared test setup: ``gpu`` tests skip themselves when no CUDA device is present."""

from __future__ import annotations

import pytest
import torch


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
